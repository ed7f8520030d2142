package fmp4

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/berthmedia/berth/internal/httpstream"

	"github.com/gorilla/websocket"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
)

// CodecsHeader is the response header that carries the RFC 6381 codecs of
// the stream's init segment ("avc1.64001f,mp4a.40.2"), so a page builds its
// MediaSource type as `video/mp4; codecs="` + value + `"`. A HEAD request
// answers with it too, which is how a WS-fMP4 page learns it (a browser's
// WebSocket does not show response headers).
const CodecsHeader = "X-Codecs"

// Handler serves HTTP-fMP4 (GET /app/stream.live.mp4, a chunked response:
// the init segment, then fragments as they are made) and WS-fMP4 (the same
// URL with a WebSocket upgrade: one binary message with the init segment,
// then one per fragment), all from the stream's shared muxer.
type Handler struct {
	Hub    *hub.Hub
	Muxers *Muxers
	Log    *slog.Logger
	Auth   *auth.Checker
	// WriteTimeout drops a player whose socket accepts nothing this long; default 10 s.
	WriteTimeout time.Duration
	// InitTimeout is how long a request waits for the stream's first
	// keyframe with parameter sets; default 10 s.
	InitTimeout time.Duration
	// StreamWait is how long a player of a path not yet published waits for
	// it (ZLMediaKit's [general] maxStreamWaitMS); 0 answers 404 at once.
	StreamWait time.Duration

	// Players are the sender goroutines and the poller of event-driven
	// players (httpstream.StartMux), shared with the server's other HTTP
	// players (Shared), or the handler's own. They live as long as it.
	Players httpstream.PlayersRef
}

// StreamPath maps /app/stream.live.mp4 to the hub path app/stream; ok is
// false for other paths.
func StreamPath(urlPath string) (string, bool) {
	p := strings.Trim(urlPath, "/")
	if !strings.HasSuffix(p, ".live.mp4") {
		return "", false
	}
	p = strings.TrimSuffix(p, ".live.mp4")
	if p == "" || strings.Contains(p, "..") {
		return "", false
	}
	return p, true
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return logging.Discard()
	}
	return h.Log
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Access-Control-Expose-Headers", CodecsHeader)
	if httpstream.Preflight(w, r, "GET, HEAD, OPTIONS", "HTTP-fMP4") {
		return
	}
	path, ok := StreamPath(r.URL.Path)
	if !ok {
		http.Error(w, "not an fMP4 stream URL; use /app/stream.live.mp4", http.StatusNotFound)
		return
	}
	ws := websocket.IsWebSocketUpgrade(r)
	proto := "http-fmp4"
	if ws {
		proto = "ws-fmp4"
	}
	log := h.log().With("proto", proto, "remote", r.RemoteAddr, "path", path)
	// Credentials and the on_play web hook, as for every other protocol (a
	// HEAD too: it tells the codecs).
	params, ok := httpstream.CheckPlay(w, r, h.Auth, log, proto, path)
	if !ok {
		return
	}
	st, reg, err := h.register(r, path, proto, params)
	if err != nil {
		httpstream.SubscribeFailed(w, log, proto, path, err)
		return
	}
	handed := false // to an event-driven player, which closes reg and cur itself
	if reg != nil {
		defer func() {
			if !handed {
				reg.Close()
			}
		}()
	}
	cur, err := h.Muxers.Open(st)
	if err != nil {
		status := http.StatusServiceUnavailable
		if errors.Is(err, ErrNoTracks) {
			status = http.StatusUnsupportedMediaType
		}
		log.Info("fmp4 play refused", "err", err)
		http.Error(w, fmt.Sprintf("stream %s: %v", path, err), status)
		return
	}
	defer func() {
		if !handed {
			cur.Close()
		}
	}()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	initCtx, initCancel := context.WithTimeout(ctx, orDefault(h.InitTimeout, 10*time.Second))
	init, codecs, err := cur.Ready(initCtx)
	initCancel()
	if err != nil {
		log.Info("fmp4 play refused: no init segment", "err", err)
		http.Error(w, fmt.Sprintf("stream %s has sent no keyframe with parameter sets yet (%v); retry", path, err), http.StatusGatewayTimeout)
		return
	}
	hdr.Set(CodecsHeader, codecs)
	hdr.Set("Cache-Control", "no-cache")
	if r.Method == http.MethodHead {
		hdr.Set("Content-Type", "video/mp4")
		return
	}
	timeout := orDefault(h.WriteTimeout, 10*time.Second)
	// No goroutine per player where the connection allows, over plain
	// HTTP and over a WebSocket.
	if !ws {
		hdr.Set("Content-Type", "video/mp4")
	}
	start := time.Now()
	handed = httpstream.StartMux(w, r, httpstream.MuxPlay{Cur: cur, Reg: reg, Pool: &h.Players.Get().Senders, First: init, Timeout: timeout, Log: log,
		WebSocket: ws, PerMessage: true, Poller: &h.Players.Get().Poller,
		Started: func() { start = time.Now(); log.Info("fmp4 play started", "codecs", codecs) },
		Ended:   func(err error, sent uint64) { logEnd(log, err, start, sent, timeout) },
	})
	if handed {
		return
	}
	var out httpstream.Sink
	if ws {
		conn, err := httpstream.Upgrader.Upgrade(w, r, hdr.Clone())
		if err != nil {
			log.Info("websocket upgrade failed", "err", err)
			return
		}
		defer conn.Close()
		// One message per segment: a page appends each to its SourceBuffer as is.
		out = &httpstream.WSSink{C: conn, Timeout: timeout, PerBuffer: true}
		httpstream.WatchClose(conn, cancel)
	} else {
		hdr.Set("Content-Type", "video/mp4")
		w.WriteHeader(http.StatusOK)
		out = &httpstream.HTTPSink{W: w, RC: http.NewResponseController(w), Timeout: timeout}
	}
	log.Info("fmp4 play started", "codecs", codecs)
	start = time.Now()
	sent, err := serve(ctx, cur, init, out, reg)
	logEnd(log, err, start, sent, timeout)
}

// register finds the stream of a request. A player (GET) takes its own
// registration: a counted hub reader that never reads, so getMediaList, the
// reader hooks and metrics see one reader per player while the frames flow
// through the muxer's one uncounted reader. A HEAD (a page asking for the
// codecs) is no viewer: it takes none, and reg is nil.
func (h *Handler) register(r *http.Request, path, proto, params string) (*hub.Stream, *hub.Reader, error) {
	if r.Method == http.MethodHead {
		st := h.Hub.Get(path)
		if st == nil {
			return nil, nil, hub.ErrNotFound
		}
		return st, nil, nil
	}
	who := hub.Origin{Proto: proto, Remote: r.RemoteAddr, Params: params, Conn: httpstream.ConnID(r.Context())}
	reg, err := h.Hub.SubscribeWait(r.Context(), path, hub.KindAU, who, h.StreamWait)
	if err != nil {
		return nil, nil, err
	}
	return reg.Stream(), reg, nil
}

// serve sends the init segment, then every fragment from the cursor, and
// counts what it wrote on the player's hub registration.
func serve(ctx context.Context, cur *Cursor, init []byte, out httpstream.Sink, reg *hub.Reader) (uint64, error) {
	n, err := out.Write([][]byte{init})
	sent := uint64(n)
	reg.AddBytes(uint64(n))
	if err != nil {
		return sent, err
	}
	frags := make([]*Fragment, 0, 32)
	bufs := make([][]byte, 0, 32)
	for {
		frags, err = cur.Next(ctx, frags[:0])
		for _, f := range frags {
			bufs = append(bufs, f.Data)
		}
		if len(bufs) > 0 {
			n, werr := out.Write(bufs)
			sent += uint64(n)
			reg.AddBytes(uint64(n))
			if werr != nil {
				return sent, werr
			}
		}
		clear(frags)
		clear(bufs)
		bufs = bufs[:0]
		if err != nil {
			return sent, err
		}
	}
}

func logEnd(log *slog.Logger, err error, start time.Time, sent uint64, timeout time.Duration) {
	d := time.Since(start).Round(time.Millisecond)
	switch {
	case errors.Is(err, hub.ErrEnded):
		log.Info("fmp4 play ended: the stream ended", "duration", d, "bytes_out", sent)
	case errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, ErrStopped):
		log.Info("fmp4 play ended", "duration", d, "bytes_out", sent)
	case errors.Is(err, os.ErrDeadlineExceeded):
		log.Warn("fmp4 play stopped: the player accepted nothing for "+timeout.String()+"; dropped it (the stream and other readers go on)",
			"duration", d, "bytes_out", sent)
	case errors.Is(err, ErrSlowReader):
		log.Warn("fmp4 play stopped: the player fell a whole ring of fragments behind (its network is slower than the stream); dropped it (the stream and other readers go on)",
			"duration", d, "bytes_out", sent)
	default:
		log.Info("fmp4 play ended: "+err.Error(), "duration", d, "bytes_out", sent)
	}
}
