package limits

import (
	"fmt"
	"net/http"
)

// BodyHandler wraps h: a request whose body is over max bytes is answered
// 413 Content Too Large (RFC 9110 section 15.5.14) and logged (rate-limited)
// when its Content-Length says so, and a body without a length stops at max
// (http.MaxBytesReader: the handler's read fails and net/http closes the
// connection). max <= 0 lets every body through. limit names the setting to
// raise, as "section.key" ("http.maxReqSize").
func BodyHandler(max int64, limit string, w *Warner, h http.Handler) http.Handler {
	key := Key(limit)
	if max <= 0 {
		return h
	}
	return http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		if req.ContentLength > max {
			ip := RequestIP(req)
			w.Warn(limit, "", fmt.Sprintf("HTTP request from %s has a %d-byte body, over %s=%d; answered 413. Raise %s if real clients send bodies that large",
				ip, req.ContentLength, key, max, key), "remote_ip", ip.String(), "path", req.URL.Path)
			rw.Header().Set("Connection", "close")
			http.Error(rw, fmt.Sprintf("request body of %d bytes is over this server's limit of %d", req.ContentLength, max), http.StatusRequestEntityTooLarge)
			return
		}
		if req.Body != nil && req.Body != http.NoBody {
			req.Body = http.MaxBytesReader(rw, req.Body, max)
		}
		h.ServeHTTP(rw, req)
	})
}
