package fanout

import (
	"net"
	"sync/atomic"
)

// Parking is a connection's place on a Poller while it waits for its next
// message: what an RTSP or RTMP player holds between requests instead of a
// goroutine blocked in Read. The zero value has no watch yet.
type Parking struct {
	watch atomic.Pointer[Watch] // registered by the first Park; Stop reads it from any goroutine
}

// Park waits for nc on p: ready is called (once) when nc has something to
// read, is closed by its peer, or Stop is called. The first Park registers
// nc with ready; later ones arm the same watch. It reports false where p
// cannot wait for nc (a TLS connection, a system without epoll): the
// caller then waits for nc in a goroutine.
func (k *Parking) Park(p *Poller, nc net.Conn, ready func()) bool {
	w := k.watch.Load()
	if w == nil {
		var ok bool
		if w, ok = p.Watch(nc, ready); !ok {
			return false
		}
		k.watch.Store(w)
	}
	w.Arm()
	return true
}

// Stop ends the watch, if there is one: call it before closing the
// connection. A parked connection's ready runs, and its reader meets the
// close.
func (k *Parking) Stop() {
	if w := k.watch.Load(); w != nil {
		w.Stop()
	}
}
