// Package hls serves live HLS on the HTTP port, in ZLMediaKit's URLs:
// /app/stream/hls.m3u8 (MPEG-TS segments, cut from the stream's shared TS
// muxer) and /app/stream/hls.fmp4.m3u8 (fMP4 segments with Low-Latency
// HLS parts, blocking playlist reload and delta updates, from gohlslib's
// muxer). Both are made on demand, one per stream and format, kept in
// memory, and served to every viewer from the same bytes; a viewer is
// known by a session token and counts as a reader of the stream
// (getMediaList, the reader hooks, metrics) while it keeps asking.
package hls

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/httpstream"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
)

// Entry playlists, ZLMediaKit's names.
const (
	TSPlaylist   = "hls.m3u8"
	FMP4Playlist = "hls.fmp4.m3u8"
)

// Session names: a viewer's token travels in the query of every URL a
// playlist gives (players that drop cookies keep it), and in a cookie
// (players that drop a query keep that).
const (
	SessionParam  = "berth_session"
	SessionCookie = "berth_hls"
)

// Protocol names of HLS viewers (hub.Origin.Proto), as ZLMediaKit's schemas.
const (
	ProtoTS   = "hls"
	ProtoFMP4 = "hls.fmp4"
)

// Settings are the [hls] keys; a reload swaps them, and muxers started
// after it use the new values.
type Settings struct {
	Enable     bool          // [protocol] enable_hls
	EnableFMP4 bool          // [protocol] enable_hls_fmp4
	SegDur     time.Duration // a segment lasts at least this (cut on the next keyframe)
	SegNum     int           // segments a playlist lists
	SegRetain  int           // segments kept after they leave the playlist
	PartDur    time.Duration // LL-HLS parts last at least this
	OnDemand   bool          // [protocol] hls_demand: muxers only while someone watches (else Published keeps them)
}

// Handler serves both HLS forms. Set the exported fields before the first
// request; SetSettings may be called at any time.
type Handler struct {
	Hub  *hub.Hub
	Log  *slog.Logger
	Auth *auth.Checker
	// StreamWait is how long a viewer of a path not yet published waits
	// for it ([general] maxStreamWaitMS).
	StreamWait time.Duration
	// StopDelay keeps a muxer this long after its last viewer left.
	StopDelay time.Duration
	// TS opens the stream's shared MPEG-TS muxer; nil turns hls.m3u8 off.
	TS TSOpener

	settings atomic.Pointer[Settings]

	mu      sync.Mutex
	viewers map[string]*viewer // by token, and by fallback key
	ll      map[*hub.Stream]*llMuxer
	ts      map[string]*tsChannel // by path: a publisher's restart continues its playlist
	closed  bool
	sweep   *time.Ticker
	started atomic.Uint64
}

// SetSettings applies [hls] settings (at start and on reload).
func (h *Handler) SetSettings(s Settings) {
	s.SegDur = max(s.SegDur, time.Second)
	s.SegNum = max(s.SegNum, 1)
	if s.PartDur <= 0 {
		s.PartDur = 200 * time.Millisecond
	}
	h.settings.Store(&s)
}

func (h *Handler) cfg() Settings {
	if s := h.settings.Load(); s != nil {
		return *s
	}
	return Settings{Enable: true, EnableFMP4: true, SegDur: 2 * time.Second, SegNum: 3, SegRetain: 5, PartDur: 200 * time.Millisecond, OnDemand: true}
}

// Started counts the muxers (either form) started over the handler's life.
func (h *Handler) Started() uint64 { return h.started.Load() }

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return logging.Discard()
	}
	return h.Log
}

// Match reports whether urlPath is an HLS URL: an entry playlist, or a
// file of one (a media playlist, segment, part or init segment, which
// always sit beside it under /app/stream/).
func Match(urlPath string) bool {
	dir, file := path.Split(strings.Trim(urlPath, "/"))
	if dir == "" {
		return false
	}
	switch {
	case file == TSPlaylist || file == FMP4Playlist, strings.HasSuffix(file, ".m3u8"):
		return true
	case strings.HasSuffix(file, ".ts"):
		return !strings.HasSuffix(file, ".live.ts")
	case strings.HasSuffix(file, ".mp4"):
		return !strings.HasSuffix(file, ".live.mp4")
	}
	return false
}

// split maps /app/stream/FILE to the hub path app/stream and FILE.
func split(urlPath string) (streamPath, file string, ok bool) {
	dir, file := path.Split(strings.Trim(urlPath, "/"))
	streamPath = strings.TrimSuffix(dir, "/")
	if streamPath == "" || file == "" || strings.Contains(streamPath, "..") {
		return "", "", false
	}
	return streamPath, file, true
}

// isTSFile says which form a file belongs to when no session tells.
func isTSFile(file string) bool {
	return file == TSPlaylist || strings.HasPrefix(file, tsSegmentPrefix)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if httpstream.Preflight(w, r, "GET, HEAD, OPTIONS", "HLS") {
		return
	}
	streamPath, file, ok := split(r.URL.Path)
	if !ok {
		http.Error(w, "not an HLS URL; use /app/stream/hls.m3u8 or /app/stream/hls.fmp4.m3u8", http.StatusNotFound)
		return
	}
	proto := ProtoFMP4
	if isTSFile(file) {
		proto = ProtoTS
	}
	set := h.cfg()
	if proto == ProtoTS && (!set.Enable || h.TS == nil) {
		http.Error(w, "HLS with MPEG-TS segments is off here: set [protocol] enable_hls=1", http.StatusNotFound)
		return
	}
	if proto == ProtoFMP4 && !set.EnableFMP4 {
		http.Error(w, "HLS with fMP4 segments (LL-HLS) is off here: set [protocol] enable_hls_fmp4=1", http.StatusNotFound)
		return
	}
	log := h.log().With("proto", proto, "remote", r.RemoteAddr, "path", streamPath)
	entry := file == TSPlaylist || file == FMP4Playlist
	v, err := h.viewerOf(w, r, streamPath, proto, entry, log)
	if err != nil {
		return // answered
	}
	st, err := v.stream(r, h, log)
	if err != nil {
		httpstream.SubscribeFailed(w, log, proto, streamPath, err)
		return
	}
	cw := &countingWriter{ResponseWriter: w}
	if proto == ProtoTS {
		h.serveTS(cw, r, v, st, file, log)
	} else {
		h.serveFMP4(cw, r, v, st, file, log)
	}
	v.reg.Load().AddBytes(cw.n)
}

// countingWriter counts the body bytes a viewer is sent and whether
// anything was answered (gohlslib answers nothing for a file it does not
// have).
type countingWriter struct {
	http.ResponseWriter
	n     uint64
	wrote bool
}

func (c *countingWriter) WriteHeader(code int) {
	c.wrote = true
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.wrote = true
	n, err := c.ResponseWriter.Write(p)
	c.n += uint64(n)
	return n, err
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// errAnswered: the request was answered (refused) while finding its viewer.
var errAnswered = errors.New("answered")

func newToken() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// tokenOf is the session a request names, "" for none. Only tokens of
// newToken's form count: the token is a map key and goes into URLs, logs
// and cookies, so whatever else a client sends is ignored.
func tokenOf(r *http.Request) string {
	if t := r.URL.Query().Get(SessionParam); validToken(t) {
		return t
	}
	if c, err := r.Cookie(SessionCookie); err == nil && validToken(c.Value) {
		return c.Value
	}
	return ""
}

func validToken(t string) bool {
	if len(t) != 32 {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// fallbackKey knows a viewer that sends neither token nor cookie (a
// player reloading the entry playlist by its plain URL) by its connection:
// address and port, path and form, as ZLMediaKit does. Players keep their
// connection open between reloads; one that opens a new connection for
// every reload counts again each time until the older viewers idle out,
// which is better than counting every cookie-less player on a host as one.
func fallbackKey(r *http.Request, streamPath, proto string) string {
	return r.RemoteAddr + "|" + streamPath + "|" + proto
}

// Close ends every viewer and muxer and refuses new viewers (shutdown).
func (h *Handler) Close() {
	h.mu.Lock()
	h.closed = true
	vs := h.viewers
	h.viewers = nil
	if h.sweep != nil {
		h.sweep.Stop()
	}
	h.mu.Unlock()
	seen := map[*viewer]bool{}
	for _, v := range vs {
		if !seen[v] {
			seen[v] = true
			h.endViewer(v)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.ll {
		m.stop()
	}
	clear(h.ll)
	for _, c := range h.ts {
		c.stop()
	}
	clear(h.ts)
}
