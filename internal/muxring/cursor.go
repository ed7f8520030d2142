package muxring

import (
	"context"
	"sync"
)

// Cursor is one reader's position in a muxer's chunks. One goroutine uses
// it; Close may come from any.
type Cursor struct {
	r       *Ring
	ms      *Muxers
	next    uint64
	started bool
	once    sync.Once
}

// Ring returns the muxer read.
func (c *Cursor) Ring() *Ring { return c.r }

// Ready waits for the muxer's header: for fMP4 the init segment, made from
// the stream's first keyframe with parameter sets after the muxer started;
// for MPEG-TS an empty, non-nil header once the first keyframe is muxed.
// codecs are the tracks' RFC 6381 codecs ("avc1.64001f,mp4a.40.2").
func (c *Cursor) Ready(ctx context.Context) (header []byte, codecs string, err error) {
	r := c.r
	for {
		r.mu.Lock()
		header, codecs, err, wake := r.header, r.codecs, r.err, r.wake
		r.mu.Unlock()
		if header != nil {
			return header, codecs, nil
		}
		if err != nil {
			return nil, "", err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, "", ctx.Err()
		}
	}
}

// Next appends the chunks after the cursor's position to dst, as many as
// fit in its capacity, waiting for at least one. A cursor starts at the
// newest Key chunk when it is opened (or the next one), so a reader never
// starts mid-GOP. Once the muxer stopped it returns what is left, then the
// reason (hub.ErrEnded, ErrStopped); ErrSlowReader when the reader fell
// off the ring.
func (c *Cursor) Next(ctx context.Context, dst []*Chunk) ([]*Chunk, error) {
	r := c.r
	size := uint64(len(r.chunks))
	for {
		r.mu.Lock()
		if r.head-c.next > size {
			if c.started {
				r.mu.Unlock()
				return dst, ErrSlowReader
			}
			c.next = r.startLocked() // still waiting for its first keyframe
		}
		n := len(dst)
		for c.next < r.head && len(dst) < cap(dst) {
			ch := r.chunks[c.next%size]
			c.next++
			if !c.started && !ch.Key {
				continue
			}
			c.started = true
			dst = append(dst, ch)
		}
		if len(dst) > n || cap(dst) == n {
			r.mu.Unlock()
			return dst, nil
		}
		err, wake := r.err, r.wake
		r.mu.Unlock()
		if err != nil {
			return dst, err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return dst, ctx.Err()
		}
	}
}

// Lag is how many chunks the cursor is behind the muxer.
func (c *Cursor) Lag() uint64 {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	return c.r.head - c.next
}

// Close releases the cursor; the muxer's last one starts its stop delay.
func (c *Cursor) Close() {
	c.once.Do(func() { c.ms.release(c.r) })
}
