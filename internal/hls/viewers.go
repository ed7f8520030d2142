package hls

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthmedia/berth/internal/httpstream"
	"github.com/berthmedia/berth/internal/hub"
)

// viewer is one HLS player: HTTP requests that carry its token (or match
// its fallback key), one counted hub registration while it keeps asking,
// and a hold on the muxer it reads. It ends IdleAfter its last request.
type viewer struct {
	token, fallback string
	path, proto     string
	who             hub.Origin
	reg             atomic.Pointer[hub.Reader]
	last            atomic.Int64 // UnixNano of its last request

	mu sync.Mutex // one (re)subscribe at a time

	// Guarded by the Handler's mu.
	ll    *llMuxer
	ts    *tsChannel
	ended bool
}

func (v *viewer) touch() { v.last.Store(time.Now().UnixNano()) }

// idleAfter is how long a viewer may go without a request: a player asks
// for a playlist every target duration (far more often with LL-HLS).
func (h *Handler) idleAfter() time.Duration { return max(10*time.Second, 3*h.cfg().SegDur) }

// viewerOf finds the request's viewer, or makes one after the play checks
// (credentials, then the on_play hook: once per viewer, as ZLMediaKit
// does for a cookie). A refusal is answered and errAnswered returned.
func (h *Handler) viewerOf(w http.ResponseWriter, r *http.Request, streamPath, proto string, entry bool, log *slog.Logger) (*viewer, error) {
	token := tokenOf(r)
	fb := fallbackKey(r, streamPath, proto)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		http.Error(w, "the server is shutting down", http.StatusServiceUnavailable)
		return nil, errAnswered
	}
	v := h.viewers[token]
	if token == "" || v == nil {
		v = h.viewers[fb]
	}
	if v != nil && v.path == streamPath && v.proto == proto {
		h.mu.Unlock()
		v.touch()
		if entry {
			setCookie(w, v)
		}
		return v, nil
	}
	h.mu.Unlock()
	params, ok := httpstream.CheckPlay(w, r, h.Auth, log, proto, streamPath)
	if !ok {
		return nil, errAnswered
	}
	if token == "" {
		token = newToken() // an unknown token (a viewer that idled out) is kept: its URLs still carry it
	}
	v = &viewer{token: token, fallback: fb, path: streamPath, proto: proto,
		who: hub.Origin{Proto: proto, Remote: r.RemoteAddr, Params: params, Conn: httpstream.ConnID(r.Context())}}
	v.touch()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		http.Error(w, "the server is shutting down", http.StatusServiceUnavailable)
		return nil, errAnswered
	}
	if h.viewers == nil {
		h.viewers = map[string]*viewer{}
	}
	h.viewers[v.token] = v
	h.viewers[v.fallback] = v
	if h.sweep == nil {
		h.sweep = time.NewTicker(time.Second)
		go h.sweepLoop(h.sweep)
	}
	h.mu.Unlock()
	setCookie(w, v)
	log.Info("hls viewer started", "session", v.token[:8])
	return v, nil
}

func setCookie(w http.ResponseWriter, v *viewer) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: v.token, Path: "/" + v.path + "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// stream is the stream the viewer reads now, subscribing (and waiting up
// to StreamWait) when it has none or its stream ended: a publisher's
// restart moves its viewers to the new stream on their next request.
func (v *viewer) stream(r *http.Request, h *Handler, log *slog.Logger) (*hub.Stream, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	reg := v.reg.Load()
	if reg != nil {
		select {
		case <-reg.Stream().Done():
		default:
			return reg.Stream(), nil
		}
	}
	nreg, err := h.Hub.SubscribeWait(r.Context(), v.path, hub.KindAU, v.who, h.StreamWait)
	if err != nil {
		if reg == nil {
			h.endViewer(v) // never played: forget it
		}
		return nil, err
	}
	v.reg.Store(nreg)
	if reg != nil {
		reg.Close()
	}
	st := nreg.Stream()
	h.mu.Lock()
	defer h.mu.Unlock()
	if v.ended || h.closed {
		nreg.Close()
		return nil, hub.ErrReaderClosed
	}
	if v.proto == ProtoTS {
		if v.ts == nil {
			v.ts = h.tsChannelLocked(v.path)
		}
		v.ts.attach(st, h, log)
	} else {
		if v.ll != nil && v.ll.s != st {
			h.releaseLocked(&v.ll.linger, v.ll.stopLocked(h))
			v.ll = nil
		}
		if v.ll == nil {
			v.ll = h.llMuxerLocked(st)
		}
	}
	return st, nil
}

// endViewer closes v's registration and lets go of its muxer.
func (h *Handler) endViewer(v *viewer) {
	h.mu.Lock()
	if v.ended {
		h.mu.Unlock()
		return
	}
	v.ended = true
	if h.viewers[v.token] == v {
		delete(h.viewers, v.token)
	}
	if h.viewers[v.fallback] == v {
		delete(h.viewers, v.fallback)
	}
	if v.ll != nil {
		h.releaseLocked(&v.ll.linger, v.ll.stopLocked(h))
		v.ll = nil
	}
	if v.ts != nil {
		h.releaseLocked(&v.ts.linger, v.ts.stopLocked(h))
		v.ts = nil
	}
	h.mu.Unlock()
	if reg := v.reg.Load(); reg != nil {
		reg.Close()
	}
}

// sweepLoop ends the viewers that stopped asking.
func (h *Handler) sweepLoop(t *time.Ticker) {
	for range t.C {
		cut := time.Now().Add(-h.idleAfter()).UnixNano()
		var idle []*viewer
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return
		}
		for k, v := range h.viewers {
			if k == v.token && v.last.Load() < cut {
				idle = append(idle, v)
			}
		}
		h.mu.Unlock()
		for _, v := range idle {
			h.endViewer(v)
			h.log().Info("hls viewer ended: no request for "+h.idleAfter().String(), "proto", v.proto, "path", v.path,
				"remote", v.who.Remote, "session", v.token[:8])
		}
	}
}

// Viewers is how many HLS viewers there are now (tests, the status page).
func (h *Handler) Viewers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for k, v := range h.viewers {
		if k == v.token {
			n++
		}
	}
	return n
}

// linger is a muxer's hold count and its stop timer: the last viewer's
// release starts StopDelay, a new hold cancels it. Guarded by the
// Handler's mu.
type linger struct {
	holds int
	timer *time.Timer
}

func (h *Handler) holdLocked(l *linger) {
	l.holds++
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
}

// releaseLocked drops one hold; stop (called with mu held) ends the muxer
// once StopDelay passed without a new hold.
func (h *Handler) releaseLocked(l *linger, stop func()) {
	l.holds--
	if l.holds > 0 {
		return
	}
	if h.StopDelay <= 0 || h.closed {
		stop()
		return
	}
	var tm *time.Timer
	tm = time.AfterFunc(h.StopDelay, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if l.holds == 0 && l.timer == tm {
			l.timer = nil
			stop()
		}
	})
	l.timer = tm
}

// waitReady waits for ready (a muxer's first keyframe) at most d.
func waitReady(ctx context.Context, ready, done <-chan struct{}, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ready:
		return nil
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return context.DeadlineExceeded
	}
}
