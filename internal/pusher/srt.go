package pusher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/muxring"
	"github.com/berthmedia/berth/internal/srtclient"
)

// TSOpener opens a cursor on a stream's shared MPEG-TS muxer (the one
// HTTP-TS, HLS and SRT players read: internal/mpegts's Muxers.Open).
type TSOpener func(*hub.Stream) (*muxring.Cursor, error)

// ErrNoTSMuxer is an SRT pusher on a server wired without a TS muxer.
var ErrNoTSMuxer = errors.New("this server has no MPEG-TS muxer for SRT pushers (a Berth built with SRT always has one; report this)")

// readyWait bounds the wait for the stream's first keyframe with its
// parameter sets, where the TS muxer starts.
const readyWait = 10 * time.Second

// sessionSRT pushes st to an SRT listener as the caller (its stream id asks
// to publish: m=publish): the stream's shared MPEG-TS muxer, the bytes every
// HTTP-TS, HLS and SRT player of the stream gets, from a keyframe on, in
// 1316-byte payloads. The pusher counts as a reader through a hub
// registration that never reads, as SRT and HTTP-TS players do: the frames
// flow through the muxer's one reader. gosrt's Write never blocks: a target
// that stops taking data fills its send queue and the write fails.
func (p *Pusher) sessionSRT(ctx context.Context, st *hub.Stream) (live time.Duration, err error) {
	if p.ts == nil {
		return 0, ErrNoTSMuxer
	}
	opts, err := srtclient.ParseURL(p.spec.DstURL)
	if err != nil {
		return 0, err
	}
	conn, err := srtclient.Dial(ctx, opts, p.spec.Timeout)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The target hanging up (or timing out) ends the push: a goroutine
	// reads (a target sends only control packets, which gosrt handles)
	// until the connection closes.
	hungUp := make(chan struct{})
	go func() {
		defer close(hungUp)
		defer cancel()
		buf := make([]byte, 1500)
		for {
			if _, err := conn.Read(buf); err != nil {
				return
			}
		}
	}()
	defer func() { conn.Close(); <-hungUp }()
	r, err := st.Subscribe(hub.KindAU, hub.Origin{Proto: "srt", Remote: opts.Addr, ID: p.key})
	if err != nil {
		return 0, err
	}
	defer r.Close()
	cur, err := p.ts(st)
	if err != nil {
		return 0, err
	}
	defer cur.Close()
	rctx, rcancel := context.WithTimeout(ctx, readyWait)
	_, _, err = cur.Ready(rctx)
	rcancel()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return 0, io.EOF // the target hung up (a delete: run sees its own context ended)
		}
		return 0, fmt.Errorf("the stream sent no keyframe with its parameter sets in %s: %w", readyWait, err)
	}
	start := time.Now()
	p.mu.Lock()
	p.info.State, p.info.Attempt, p.info.LiveSince = StateLive, 0, start
	p.cur = r
	p.mu.Unlock()
	p.log.Info("pusher live", "reader_kind", "mpegts")
	defer func() {
		p.mu.Lock()
		p.bytes += r.Bytes()
		p.cur = nil
		p.mu.Unlock()
		live = time.Since(start)
	}()
	out := &srtclient.Packetizer{W: conn}
	chunks := make([]*muxring.Chunk, 0, readBatch)
	for {
		var err error
		chunks, err = cur.Next(ctx, chunks[:0])
		before := out.Sent
		for _, c := range chunks {
			if werr := out.Write(c.Data); werr != nil {
				return 0, werr
			}
		}
		clear(chunks)
		// A batch's end: send the rest (whole TS packets) rather than
		// hold it for the next frame, which would add a frame of delay.
		werr := out.Flush()
		r.AddBytes(out.Sent - before)
		if werr != nil {
			return 0, werr
		}
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return 0, io.EOF // the target hung up (a delete: run sees its own context ended)
			}
			return 0, err // hub.ErrEnded: run sees st.Ended() and waits for the stream again
		}
	}
}
