package httpstream

import (
	"net"
	"net/http"

	"github.com/berthmedia/berth/internal/fanout"
)

// sealable reports whether r came over TLS on a fanout.SealConn, which
// only the server's own TLS listeners make (and ConnContext keeps): such a
// player is written event-driven, its TLS layer sealing each batch into
// memory (see fanout.SealConn). A handler used alone (its package's
// tests, httptest's TLS server) serves TLS players the plain way.
func sealable(r *http.Request) bool {
	nc, ok := r.Context().Value(connKey{}).(net.Conn)
	return ok && fanout.Sealed(nc)
}
