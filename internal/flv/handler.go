package flv

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/berthmedia/berth/internal/httpstream"

	"github.com/gorilla/websocket"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
)

// Handler serves live streams as HTTP-FLV and WebSocket-FLV:
// GET /app/stream.live.flv (ZLMediaKit's scheme) or /app/stream.flv reads
// the hub path app/stream; the same URL with a WebSocket upgrade sends the
// same bytes as binary messages. Credentials come from ?user=&pass=.
type Handler struct {
	Hub  *hub.Hub
	Log  *slog.Logger
	Auth *auth.Checker
	// WriteTimeout drops a reader whose socket accepts nothing this long; default 10 s.
	WriteTimeout time.Duration
	// StreamWait is how long a play of a missing stream waits for it to be
	// published ([general] maxStreamWaitMS; 0 = 404 at once).
	StreamWait time.Duration

	mu      sync.Mutex
	readers map[*hub.Reader]struct{}
	closed  bool
	// Players are the sender goroutines and the poller of event-driven
	// HTTP-FLV and WS-FLV players (events.go), shared with the server's
	// other HTTP players (Shared), or the handler's own. They live as long as it.
	Players httpstream.PlayersRef
}

// Close ends every FLV reader and refuses new ones. http.Server.Shutdown
// waits for handlers to return, and a live stream never does on its own, so
// the composition root registers Close with RegisterOnShutdown.
func (h *Handler) Close() {
	h.mu.Lock()
	h.closed = true
	rs := h.readers
	h.readers = nil
	h.mu.Unlock()
	for r := range rs {
		r.Close()
	}
}

func (h *Handler) track(r *hub.Reader) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	if h.readers == nil {
		h.readers = map[*hub.Reader]struct{}{}
	}
	h.readers[r] = struct{}{}
	return true
}

func (h *Handler) untrack(r *hub.Reader) {
	h.mu.Lock()
	delete(h.readers, r)
	h.mu.Unlock()
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return logging.Discard()
	}
	return h.Log
}

func (h *Handler) writeTimeout() time.Duration {
	if h.WriteTimeout > 0 {
		return h.WriteTimeout
	}
	return 10 * time.Second
}

// StreamPath maps a URL path to a hub path: /app/stream.live.flv and
// /app/stream.flv give app/stream; ok is false for other paths.
func StreamPath(urlPath string) (string, bool) {
	p := strings.Trim(urlPath, "/")
	switch {
	case strings.HasSuffix(p, ".live.flv"):
		p = strings.TrimSuffix(p, ".live.flv")
	case strings.HasSuffix(p, ".flv"):
		p = strings.TrimSuffix(p, ".flv")
	default:
		return "", false
	}
	if p == "" || strings.Contains(p, "..") {
		return "", false
	}
	return p, true
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Access-Control-Allow-Credentials", "true")
	if httpstream.Preflight(w, r, "GET, OPTIONS", "HTTP-FLV") {
		return
	}
	path, ok := StreamPath(r.URL.Path)
	if !ok {
		http.Error(w, "not an FLV stream URL; use /app/stream.live.flv", http.StatusNotFound)
		return
	}
	ws := websocket.IsWebSocketUpgrade(r)
	proto := "http-flv"
	if ws {
		proto = "ws-flv"
	}
	log := h.log().With("proto", proto, "remote", r.RemoteAddr, "path", path)
	params, ok := httpstream.CheckPlay(w, r, h.Auth, log, proto, path)
	if !ok {
		return
	}
	who := hub.Origin{Proto: proto, Remote: r.RemoteAddr, Params: params, Conn: httpstream.ConnID(r.Context())}
	rd, err := h.Hub.SubscribeWait(r.Context(), path, hub.KindAU, who, h.StreamWait)
	if err != nil {
		httpstream.SubscribeFailed(w, log, proto, path, err)
		return
	}
	handed := false // to an event-driven player, which closes and untracks rd itself
	defer func() {
		if !handed {
			rd.Close()
		}
	}()
	if !h.track(rd) {
		http.Error(w, "server is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer func() {
		if !handed {
			h.untrack(rd)
		}
	}()
	m, err := NewMuxer(rd.Stream().Tracks)
	if err != nil {
		log.Info("flv play refused", "err", err)
		http.Error(w, err.Error(), http.StatusUnsupportedMediaType)
		return
	}
	if r.Method == http.MethodHead {
		hdr.Set("Content-Type", "video/x-flv")
		return
	}
	if h.startEvents(w, r, rd, m, ws, log) {
		handed = true
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
		out = &httpstream.WSSink{C: conn, Timeout: h.writeTimeout()}
		httpstream.WatchClose(conn, rd.Close)
	} else {
		hdr.Set("Content-Type", "video/x-flv")
		hdr.Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		rc.Flush() // the player hears 200 now, even if the first keyframe is a while away
		out = &httpstream.HTTPSink{W: w, RC: rc, Timeout: h.writeTimeout()}
		// Close the reader when the client goes away, so a reader waiting
		// for frames of an idle stream does not linger.
		stop := context.AfterFunc(r.Context(), rd.Close)
		defer stop()
	}
	log.Info("flv play started", "video", m.Video.String(), "audio", m.Audio.String())
	start := time.Now()
	sent, err := serve(rd, m, out)
	h.logEnd(log, err, start, sent)
}

func isEnded(err error) bool { return errors.Is(err, hub.ErrEnded) }

// logEnd logs why a play ended.
func (h *Handler) logEnd(log *slog.Logger, err error, start time.Time, sent uint64) {
	switch {
	case isEnded(err):
		log.Info("flv play ended: the stream ended", "duration", time.Since(start).Round(time.Millisecond), "bytes_out", sent)
	case errors.Is(err, hub.ErrReaderClosed) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed):
		log.Info("flv play ended", "duration", time.Since(start).Round(time.Millisecond), "bytes_out", sent)
	case errors.Is(err, os.ErrDeadlineExceeded):
		// A stuck player is dropped by the write deadline; say so at warn,
		// as RTSP and RTMP do, not as a bare "i/o timeout" at info.
		log.Warn("flv play stopped: the player accepted nothing for "+h.writeTimeout().String()+"; dropped it (the stream and other readers go on)",
			"duration", time.Since(start).Round(time.Millisecond), "bytes_out", sent)
	default:
		log.Info("flv play ended: "+err.Error(), "duration", time.Since(start).Round(time.Millisecond), "bytes_out", sent)
	}
}

// serve writes the FLV header, then each batch of frames the reader gets.
func serve(rd *hub.Reader, m *Muxer, out httpstream.Sink) (uint64, error) {
	var sent uint64
	frames := make([]*hub.Frame, 64)
	bufs := make([][]byte, 0, 72)
	bufs = append(bufs, Header(m.VideoTrack >= 0, m.AudioTrack >= 0))
	for {
		n, err := rd.Read(frames)
		if err != nil {
			return sent, err
		}
		bufs = m.appendTags(bufs, frames[:n])
		if len(bufs) == 0 {
			continue
		}
		w, err := out.Write(bufs)
		sent += uint64(w)
		if err != nil {
			return sent, err
		}
		clear(bufs)
		bufs = bufs[:0]
	}
}
