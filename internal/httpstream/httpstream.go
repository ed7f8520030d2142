// Package httpstream holds what every live stream served on the HTTP port
// shares, whatever its format (HTTP-FLV, HTTP-fMP4, later HTTP-TS): the
// CORS answer browser players need, the play checks (credentials, then the
// on_play gate), the status of a failed subscribe, the connection's session
// id, and the sinks that write a player's batches to a chunked response or
// to a WebSocket. Formats stay in their own packages; this one knows none.
package httpstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/gorilla/websocket"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/sessions"
)

// Preflight sets the CORS headers of a player's response (pages play
// streams from other origins) and answers an OPTIONS preflight, or a method
// other than GET or HEAD with 405 naming how the format is read. It reports
// whether it answered the request; allow is the Allow header ("GET, HEAD,
// OPTIONS") and format the name in the 405 ("HTTP-FLV").
func Preflight(w http.ResponseWriter, r *http.Request, allow, format string) bool {
	hdr := w.Header()
	hdr.Set("Access-Control-Allow-Origin", "*")
	if r.Method == http.MethodOptions {
		hdr.Set("Access-Control-Allow-Methods", allow)
		hdr.Set("Access-Control-Allow-Headers", r.Header.Get("Access-Control-Request-Headers"))
		hdr.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", allow)
		http.Error(w, format+" is read with GET", http.StatusMethodNotAllowed)
		return true
	}
	return false
}

// CheckPlay asks whether the request may play path: the ?user=&pass= of an
// [auth] play user, then the on_play web hook. A refusal is answered (401
// or 403) and logged with its fix; ok is false then. params is the query
// without credentials, for the player's hub.Origin.
func CheckPlay(w http.ResponseWriter, r *http.Request, c *auth.Checker, log *slog.Logger, proto, path string) (params string, ok bool) {
	q := r.URL.Query()
	if !c.Allow(auth.Play, q.Get("user"), q.Get("pass")) {
		log.Warn(proto+" play refused: bad or missing credentials", "user", q.Get("user"),
			"fix", "add ?user=NAME&pass=PASSWORD of an [auth] play user to the URL")
		http.Error(w, "play needs ?user=NAME&pass=PASSWORD of a play user", http.StatusUnauthorized)
		return "", false
	}
	params = auth.CleanParams(r.URL.RawQuery)
	app, stream, _ := strings.Cut(path, "/")
	if err := c.Authorize(r.Context(), auth.Request{Action: auth.Play, Proto: proto, App: app, Stream: stream,
		Params: params, Remote: r.RemoteAddr, User: q.Get("user")}); err != nil {
		log.Warn(proto+" play refused by the web hook; answered 403", "reason", err.Error())
		http.Error(w, "play refused: "+err.Error(), http.StatusForbidden)
		return "", false
	}
	return params, true
}

// SubscribeFailed answers a play whose subscribe failed: 404 for a stream
// that is not there (after any wait), 503 otherwise.
func SubscribeFailed(w http.ResponseWriter, log *slog.Logger, proto, path string, err error) {
	status := http.StatusServiceUnavailable
	if errors.Is(err, hub.ErrNotFound) {
		status = http.StatusNotFound
	}
	log.Info(proto+" play refused", "err", err)
	http.Error(w, fmt.Sprintf("stream %s: %v", path, err), status)
}

type connKey struct{}

// ConnContext is for http.Server.ConnContext: it keeps each request's
// connection in its context, so a player's hub.Origin names the
// connection's session registry id (the API lists players by it).
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// ConnID is the registry id of the request's connection, "" when the
// server did not set ConnContext or the connection is not registered.
func ConnID(ctx context.Context) string {
	nc, _ := ctx.Value(connKey{}).(net.Conn)
	return sessions.IDOf(nc)
}

// Upgrader upgrades a player's request to a WebSocket. Browser players on
// other origins are the point; play auth guards a stream, not the Origin
// header.
var Upgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferSize: 64 << 10,
	CheckOrigin:     func(*http.Request) bool { return true },
}

// WatchClose reads c until it fails, then calls closed: reading is how
// gorilla sees a close or a dead peer, and what a player sends otherwise is
// of no interest.
func WatchClose(c *websocket.Conn, closed func()) {
	go func() {
		for {
			if _, _, err := c.NextReader(); err != nil {
				closed()
				return
			}
		}
	}()
}
