package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/srtclient"
	"github.com/berthmedia/berth/internal/tsdemux"
)

// pullSRT plays an srt:// source as the caller (its stream id asks for a
// stream: m=request) and demuxes the MPEG-TS it sends into a KindAU stream
// with internal/tsdemux, the demuxer Berth's own SRT publishers go through.
// A source that sends nothing for the timeout fails the session.
func (p *Proxy) pullSRT(ctx context.Context) error {
	opts, err := srtclient.ParseURL(p.src)
	if err != nil {
		return err
	}
	conn, err := srtclient.Dial(ctx, opts, p.spec.Timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The connection closes when the pull stops, the stream is closed here,
	// or the source goes silent: each ends the blocked read.
	var silent, closedHere atomic.Bool
	idle := time.AfterFunc(p.spec.Timeout, func() { silent.Store(true); conn.Close() })
	defer idle.Stop()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var done <-chan struct{}
	d := &tsdemux.Demuxer{
		Log: p.m.log().With("key", p.key),
		Begin: func(tracks []*hub.Track, names []string) error {
			dn, err := p.out.begin(hub.KindAU, tracks, nil)
			if err != nil {
				return err
			}
			done = dn
			go func() {
				select {
				case <-dn:
					closedHere.Store(true)
					conn.Close()
				case <-ctx.Done():
				}
			}()
			p.m.log().Debug("pull: SRT source's tracks", "key", p.key, "tracks", names)
			return nil
		},
		Write: func(f *hub.Frame) error {
			p.out.writeAU(f.Track, f, time.Now())
			return nil
		},
	}
	err = d.Run(&idleReader{r: conn, idle: idle, timeout: p.spec.Timeout})
	p.m.log().Debug("pull: SRT session ended", "key", p.key, "err", err)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case closedHere.Load() || (done != nil && isClosed(done)):
		return errStreamClosed
	case silent.Load():
		return fmt.Errorf("the SRT source sent nothing for %s", p.spec.Timeout)
	case srtclient.PeerGone(err):
		return errSRTEnded
	}
	return err
}

// errSRTEnded is an SRT source that hung up (gosrt reports a peer's
// shutdown and its idle timeout as EOF).
var errSRTEnded = errors.New("the SRT source closed the connection (its stream ended, or it timed out)")

// idleReader pushes the silence timer back at each read that brings bytes.
type idleReader struct {
	r       io.Reader
	idle    *time.Timer
	timeout time.Duration
}

func (r *idleReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	if n > 0 {
		r.idle.Reset(r.timeout)
	}
	return n, err
}
