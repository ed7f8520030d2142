// Package web is Berth's status page: one HTML page, its script and style,
// embedded in the binary and served on the HTTP port at / (no CDN, no
// third-party script), and the JSON it reads besides ZLMediaKit's
// getMediaList: listeners and their health, readers by protocol, recent
// warnings. The page and its assets are public; the JSON asks for the
// API's secret, as every /index/api/ call does.
package web

import (
	"bytes"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// Paths the Handler answers; the server mounts it on each.
const (
	StatusPath  = "/berth/status.json" // the JSON of Status, guarded by the secret
	AssetPrefix = "/berth/web/"        // the page's script and style
)

// ZLMediaKit's result codes, as internal/api replies them, so the page
// reads one reply shape from both.
const (
	codeSuccess    = 0
	codeAuthFailed = -100
)

//go:embed assets
var assets embed.FS

// startTime is the assets' modification time for conditional requests:
// they change only with the binary.
var startTime = time.Now()

// Handler serves the page at / and /index.html, its assets under
// AssetPrefix and its JSON at StatusPath. Any other path is a 404, so the
// server can keep routing stream paths (/app/stream.live.flv) elsewhere.
type Handler struct {
	// Secret is [api] secret: StatusPath answers only calls that pass it as
	// ?secret=. Empty refuses every call, as the API does.
	Secret string
	// SecretFunc, when set, gives the current secret instead (a reload of
	// [api] secret applies to the page's next call).
	SecretFunc func() string
	// Status returns what StatusPath serves (a *Status, normally); nil
	// serves an empty Status.
	Status func() any
	Log    *slog.Logger
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == "/" || p == "/index.html":
		h.serveAsset(w, r, "index.html")
	case p == StatusPath:
		h.serveStatus(w, r)
	case strings.HasPrefix(p, AssetPrefix) && p != AssetPrefix && path.Clean(p) == p:
		h.serveAsset(w, r, strings.TrimPrefix(p, AssetPrefix))
	default:
		http.NotFound(w, r)
	}
}

func (h *Handler) serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the status page is read with GET", http.StatusMethodNotAllowed)
		return
	}
	b, err := fs.ReadFile(assets, "assets/"+name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	// A new Berth may ship a new page: make the browser ask again each load.
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// The page loads only its own script and style and talks only to this
	// server; a stream name is data, never markup.
	w.Header().Set("Content-Security-Policy", "default-src 'self'; media-src 'self' blob:; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'")
	http.ServeContent(w, r, name, startTime, bytes.NewReader(b))
}

func (h *Handler) serveStatus(w http.ResponseWriter, r *http.Request) {
	// Consoles on other origins read it as they read the API (the secret guards it).
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if msg := h.checkSecret(r.URL.Query().Get("secret")); msg != "" {
		h.log().Warn("status call refused", "remote", r.RemoteAddr, "reason", msg)
		writeJSON(w, map[string]any{"code": codeAuthFailed, "msg": msg})
		return
	}
	var data any = &Status{}
	if h.Status != nil {
		data = h.Status()
	}
	writeJSON(w, map[string]any{"code": codeSuccess, "data": data})
}

// checkSecret says why a call is refused, "" when it is not; the words are
// the API's, so the page shows one explanation for both.
func (h *Handler) checkSecret(got string) string {
	secret := h.Secret
	if h.SecretFunc != nil {
		secret = h.SecretFunc()
	}
	switch {
	case secret == "":
		return "the API is disabled: set [api] secret in the config (or --api-secret) and pass it as secret="
	case got == "":
		return "missing secret: pass secret=<[api] secret> with every call"
	case subtle.ConstantTimeCompare([]byte(got), []byte(secret)) != 1:
		return "incorrect secret: it must equal [api] secret in the server's config"
	}
	return ""
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}

func writeJSON(w http.ResponseWriter, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		buf.Reset()
		buf.WriteString(`{"code":-400,"msg":"status could not be encoded"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}
