package ports

import (
	"net"
	"sync"
)

// The self-probe connects to every listener at start. Its connections are
// Berth's own, not clients: the servers log them at debug, not as
// "connection accepted" at info, and metrics do not count them. A probe
// binds its socket before it connects and records the address here, so
// the record is there before the server can accept it (a record made
// after the dial returned would race with the server's accept).
var selfProbes sync.Map // "ip:port" of the probe's end -> struct{}

// IsSelfProbe reports whether c, a connection a server accepted, is one of
// this process's self-probe connections.
func IsSelfProbe(c net.Conn) bool {
	if c == nil || c.RemoteAddr() == nil {
		return false
	}
	_, ok := selfProbes.Load(c.RemoteAddr().String())
	return ok
}

// probeAddrs records the local addresses of one probe's connections and
// forgets them when the probe is done.
type probeAddrs struct {
	mu    sync.Mutex
	addrs []string
}

func (p *probeAddrs) add(addr string) {
	selfProbes.Store(addr, struct{}{})
	p.mu.Lock()
	p.addrs = append(p.addrs, addr)
	p.mu.Unlock()
}

func (p *probeAddrs) forget() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.addrs {
		selfProbes.Delete(a)
	}
	p.addrs = nil
}
