package mpegts

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

	"github.com/gorilla/websocket"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/httpstream"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/muxring"
)

// Handler serves HTTP-TS (GET /app/stream.live.ts, a chunked video/mp2t
// response from the stream's newest keyframe on) and WS-TS (the same URL
// with a WebSocket upgrade: binary messages of TS packets, as mpegts.js
// reads them), all from the stream's shared muxer.
type Handler struct {
	Hub    *hub.Hub
	Muxers *Muxers
	Log    *slog.Logger
	Auth   *auth.Checker
	// WriteTimeout drops a player whose socket accepts nothing this long; default 10 s.
	WriteTimeout time.Duration
	// ReadyTimeout is how long a request waits for the stream's first
	// keyframe with parameter sets; default 10 s.
	ReadyTimeout time.Duration
	// StreamWait is how long a player of a path not yet published waits for
	// it (ZLMediaKit's [general] maxStreamWaitMS); 0 answers 404 at once.
	StreamWait time.Duration

	// Players are the sender goroutines and the poller of event-driven
	// players (httpstream.StartMux), shared with the server's other HTTP
	// players (Shared), or the handler's own. They live as long as it.
	Players httpstream.PlayersRef
}

// Suffix ends the URL path of an MPEG-TS stream, ZLMediaKit's.
const Suffix = ".live.ts"

// StreamPath maps /app/stream.live.ts to the hub path app/stream; ok is
// false for other paths.
func StreamPath(urlPath string) (string, bool) {
	p := strings.Trim(urlPath, "/")
	if !strings.HasSuffix(p, Suffix) {
		return "", false
	}
	p = strings.TrimSuffix(p, Suffix)
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
	if httpstream.Preflight(w, r, "GET, HEAD, OPTIONS", "HTTP-TS") {
		return
	}
	path, ok := StreamPath(r.URL.Path)
	if !ok {
		http.Error(w, "not an MPEG-TS stream URL; use /app/stream"+Suffix, http.StatusNotFound)
		return
	}
	ws := websocket.IsWebSocketUpgrade(r)
	proto := "http-ts"
	if ws {
		proto = "ws-ts"
	}
	log := h.log().With("proto", proto, "remote", r.RemoteAddr, "path", path)
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
		log.Info("ts play refused", "err", err)
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
	readyCtx, readyCancel := context.WithTimeout(ctx, orDefault(h.ReadyTimeout, 10*time.Second))
	_, codecs, err := cur.Ready(readyCtx)
	readyCancel()
	if err != nil {
		log.Info("ts play refused: no keyframe yet", "err", err)
		http.Error(w, fmt.Sprintf("stream %s has sent no keyframe with parameter sets yet (%v); retry", path, err), http.StatusGatewayTimeout)
		return
	}
	hdr.Set("Cache-Control", "no-cache")
	if r.Method == http.MethodHead {
		hdr.Set("Content-Type", "video/mp2t")
		return
	}
	timeout := orDefault(h.WriteTimeout, 10*time.Second)
	// No goroutine per player where the connection allows, over plain
	// HTTP and over a WebSocket.
	if !ws {
		hdr.Set("Content-Type", "video/mp2t")
	}
	start := time.Now()
	handed = httpstream.StartMux(w, r, httpstream.MuxPlay{Cur: cur, Reg: reg, Pool: &h.Players.Get().Senders, First: nil, Timeout: timeout, Log: log,
		WebSocket: ws, PerMessage: false, Poller: &h.Players.Get().Poller,
		Started: func() { start = time.Now(); log.Info("ts play started", "codecs", codecs) },
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
		// A batch per message: TS is a byte stream, which a page's demuxer
		// (mpegts.js) takes in any split; fewer, larger messages cost less.
		out = &httpstream.WSSink{C: conn, Timeout: timeout}
		httpstream.WatchClose(conn, cancel)
	} else {
		hdr.Set("Content-Type", "video/mp2t")
		w.WriteHeader(http.StatusOK)
		out = &httpstream.HTTPSink{W: w, RC: http.NewResponseController(w), Timeout: timeout}
	}
	log.Info("ts play started", "codecs", codecs)
	start = time.Now()
	sent, err := serve(ctx, cur, out, reg)
	logEnd(log, err, start, sent, timeout)
}

// register finds the stream of a request. A player (GET) takes its own
// registration: a counted hub reader that never reads, so getMediaList, the
// reader hooks and metrics see one reader per player while the frames flow
// through the muxer's one uncounted reader. A HEAD is no viewer: it takes
// none, and reg is nil.
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

// serve sends every chunk from the cursor, a batch per write, and counts
// what it wrote on the player's hub registration.
func serve(ctx context.Context, cur *muxring.Cursor, out httpstream.Sink, reg *hub.Reader) (uint64, error) {
	var sent uint64
	chunks := make([]*muxring.Chunk, 0, 64)
	bufs := make([][]byte, 0, 64)
	for {
		var err error
		chunks, err = cur.Next(ctx, chunks[:0])
		for _, c := range chunks {
			bufs = append(bufs, c.Data)
		}
		if len(bufs) > 0 {
			n, werr := out.Write(bufs)
			sent += uint64(n)
			reg.AddBytes(uint64(n))
			if werr != nil {
				return sent, werr
			}
		}
		clear(chunks)
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
		log.Info("ts play ended: the stream ended", "duration", d, "bytes_out", sent)
	case errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, muxring.ErrStopped):
		log.Info("ts play ended", "duration", d, "bytes_out", sent)
	case errors.Is(err, os.ErrDeadlineExceeded):
		log.Warn("ts play stopped: the player accepted nothing for "+timeout.String()+"; dropped it (the stream and other readers go on)",
			"duration", d, "bytes_out", sent)
	case errors.Is(err, muxring.ErrSlowReader):
		log.Warn("ts play stopped: the player fell a whole ring of TS chunks behind (its network is slower than the stream); dropped it (the stream and other readers go on)",
			"duration", d, "bytes_out", sent)
	default:
		log.Info("ts play ended: "+err.Error(), "duration", d, "bytes_out", sent)
	}
}
