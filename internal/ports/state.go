package ports

import (
	"net"
	"strconv"
	"sync"
)

// State is what the ports package knows about one run's listeners, as data
// rather than log lines: for metrics and status pages, read at any time
// while the server runs.
type State struct {
	Sockets []SocketState // every bound socket, one per listener and address family
	Probes  []ProbeState  // the last SelfProbe, nil before it ran
	Shadows []Shadow      // the last FindShadows (or Shadows), nil before it ran
}

// SocketState is one bound socket.
type SocketState struct {
	Name    string // the listener: "rtsp", "rtmp", "http", "rtp_proxy"
	Network string // "tcp" or "udp"
	Family  string // "ipv4" or "ipv6"
	Addr    string // the bound address: "0.0.0.0:8554", "[::]:8554"
}

// ProbeState is one self-probe: a listener reached through one loopback address.
type ProbeState struct {
	Name    string // the listener
	Addr    string // what was dialled: "127.0.0.1:8554"
	Served  bool   // Berth listens on this address's family (false: a knock on a family Berth leaves to others)
	OK      bool   // no problem: this Berth answered, or nothing answered on a family Berth does not serve
	Problem string // the error line SelfProbe returned, "" when OK
}

// Shadow is another process's socket on a bound port that takes some of
// Berth's clients.
type Shadow struct {
	Name    string // the listener it shadows
	Network string // "tcp" or "udp"
	Addr    string // its address
	Holder  string // who holds it: a process description, or that it cannot be seen
	Line    string // the human line, as Shadows returns it
}

// state guards what SelfProbe and FindShadows learn, since a metrics scrape
// may read it while a probe (at start, or after a reload) writes it.
type state struct {
	mu      sync.Mutex
	probed  map[string][]probeResult // SelfProbe results by spec name, for Banner
	probes  []ProbeState
	shadows []Shadow
}

func (b *Bound) setProbed(m map[string][]probeResult, probes []ProbeState) {
	b.st.mu.Lock()
	b.st.probed, b.st.probes = m, probes
	b.st.mu.Unlock()
}

func (b *Bound) probeResults(name string) ([]probeResult, bool) {
	b.st.mu.Lock()
	defer b.st.mu.Unlock()
	r, ok := b.st.probed[name]
	return r, ok
}

func (b *Bound) setShadows(sh []Shadow) {
	b.st.mu.Lock()
	b.st.shadows = sh
	b.st.mu.Unlock()
}

// State returns the bound sockets with the last self-probe and shadow scan.
// It does no I/O: probes and scans happen where the server runs them.
func (b *Bound) State() State {
	var st State
	for _, s := range b.Specs {
		for _, ip := range b.addrs(s) {
			fam := "ipv4"
			if ip.To4() == nil {
				fam = "ipv6"
			}
			st.Sockets = append(st.Sockets, SocketState{Name: s.Name, Network: s.Network, Family: fam,
				Addr: net.JoinHostPort(ip.String(), strconv.Itoa(s.Port))})
		}
	}
	b.st.mu.Lock()
	if b.st.probes != nil {
		st.Probes = append([]ProbeState{}, b.st.probes...)
	}
	if b.st.shadows != nil {
		st.Shadows = append([]Shadow{}, b.st.shadows...)
	}
	b.st.mu.Unlock()
	return st
}
