package httpstream

import (
	"crypto/tls"
	"net/http"

	"github.com/berthmedia/berth/internal/fanout"
)

// An event-driven player over TLS (HTTPS-FLV, -TS, -fMP4): the TLS layer
// seals each batch into memory through the fanout.SealConn the server put
// under it, and the player writes the sealed bytes as it writes a plain
// batch. The TLS layer is only written from the player's turn, so its
// record sequence stays in order.

// tlsSealer is a TLS player's sealing state.
type tlsSealer struct {
	tc      *tls.Conn
	sc      *fanout.SealConn
	pending fanout.Sealed // a batch the socket has not taken whole
	plain   int           // its size before the seal
}

// sealable reports whether r came over TLS on a SealConn, which only the
// server's own TLS listeners make (and ConnContext keeps): a handler used
// alone (its package's tests, httptest's TLS server) serves TLS players
// the plain way.
func sealable(r *http.Request) bool {
	tc, ok := r.Context().Value(connKey{}).(*tls.Conn)
	if !ok {
		return false
	}
	_, ok = tc.NetConn().(*fanout.SealConn)
	return ok
}

// sendSealed seals bufs and writes them without waiting; see send.
func (p *player) sendSealed(bufs [][]byte) bool {
	plain := 0
	for _, b := range bufs {
		plain += len(b)
	}
	sealed, err := p.seal.sc.Seal(p.seal.tc, bufs)
	if err != nil {
		p.over = true
		go p.end(err)
		return false
	}
	w, ok := p.w.TryWrite([][]byte{sealed.Bytes})
	if ok {
		sealed.Release()
		p.wrote(plain)
		return true
	}
	rest := sealed.Bytes[w:]
	p.seal.pending, p.seal.plain = sealed, plain
	go p.finishWrite([][]byte{rest}, true)
	return false
}

// done releases the batch finishWrite wrote and returns its plain size.
func (s *tlsSealer) done() int {
	n := s.plain
	s.pending.Release()
	s.plain = 0
	return n
}
