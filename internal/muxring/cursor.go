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
	for {
		dst, wake, err := c.take(dst)
		if wake == nil {
			return dst, err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return dst, ctx.Err()
		}
	}
}

// TryNext is Next without the wait: with nothing new it returns dst as it
// was and a nil error, and the function given to SetReady runs once there
// may be more.
func (c *Cursor) TryNext(dst []*Chunk) ([]*Chunk, error) {
	dst, _, err := c.take(dst)
	return dst, err
}

// take appends what is there; wake is non-nil when there was nothing and
// the muxer goes on (wait on it, or for SetReady's function).
func (c *Cursor) take(dst []*Chunk) (_ []*Chunk, wake chan struct{}, _ error) {
	r := c.r
	size := uint64(len(r.chunks))
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.head-c.next > size {
		if c.started {
			return dst, nil, ErrSlowReader
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
		return dst, nil, nil
	}
	if r.err != nil {
		return dst, nil, r.err
	}
	return dst, r.wake, nil
}

// SetReady makes the cursor event-driven: its owner calls TryNext instead
// of blocking in Next, and ready runs whenever the ring changes (a chunk,
// the header, the muxer's end). It runs on the muxer's goroutine with the
// ring locked, so it must only schedule work (fanout.Runner.Wake). Close
// removes it.
func (c *Cursor) SetReady(ready func()) {
	r := c.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if ready == nil {
		delete(r.ready, c)
		return
	}
	if r.ready == nil {
		r.ready = map[*Cursor]func(){}
	}
	r.ready[c] = ready
}

// Lag is how many chunks the cursor is behind the muxer.
func (c *Cursor) Lag() uint64 {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	return c.r.head - c.next
}

// Close releases the cursor; the muxer's last one starts its stop delay.
func (c *Cursor) Close() {
	c.once.Do(func() {
		c.SetReady(nil)
		c.ms.release(c.r)
	})
}

// Bytes is a cursor as an event-driven player's source
// (httpstream.Source): the data of its chunks, max at a time.
type Bytes struct {
	c   *Cursor
	max int
}

// Bytes makes the cursor's source for an event-driven player.
func (c *Cursor) Bytes(max int) *Bytes { return &Bytes{c: c, max: max} }

// chunkPool lends Next its chunk pointers for a call, so a waiting player
// holds none (issue 14: memory per viewer).
var chunkPool = sync.Pool{New: func() any { s := make([]*Chunk, 0, 64); return &s }}

func (b *Bytes) SetReady(ready func()) { b.c.SetReady(ready) }

// Next appends the data of the chunks waiting to bufs; the muxer's end
// (or ErrSlowReader) comes once the chunks before it are taken.
func (b *Bytes) Next(bufs [][]byte) ([][]byte, error) {
	pooled := chunkPool.Get().(*[]*Chunk)
	dst := (*pooled)[:0]
	if cap(dst) < b.max {
		dst = make([]*Chunk, 0, b.max)
	}
	chunks, err := b.c.TryNext(dst[:0:b.max])
	for _, ch := range chunks {
		bufs = append(bufs, ch.Data)
	}
	clear(chunks)
	if cap(dst) == cap(*pooled) {
		chunkPool.Put(pooled)
	}
	return bufs, err
}
