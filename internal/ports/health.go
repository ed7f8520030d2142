package ports

import (
	"net"
	"strconv"
)

// Health is one bound listener as the status page shows it: the sockets it
// holds and what the start-up self-probe found, in the words of doctor.
type Health struct {
	Listener string   `json:"listener"` // "rtsp/tcp"
	Name     string   `json:"name"`     // "rtsp"
	Network  string   `json:"network"`  // "tcp", "udp"
	Port     int      `json:"port"`
	Addrs    []string `json:"addrs"`  // the local addresses of its sockets ("127.0.0.1:8554", "[::]:8554")
	Probes   []Probe  `json:"probes"` // empty when the protocol cannot be probed (RTP) or no probe ran
}

// Probe is one self-probe: the listener reached through one loopback host.
type Probe struct {
	Host string `json:"host"`
	OK   bool   `json:"ok"`             // this Berth answered (or nothing answered a family Berth does not serve)
	Line string `json:"line,omitempty"` // the error line the start logged, when not OK
}

// Health describes every bound listener, with the self-probe's results
// once it has run.
func (b *Bound) Health() []Health {
	var out []Health
	for _, s := range b.Specs {
		h := Health{Listener: s.Name + "/" + s.Network, Name: s.Name, Network: s.Network, Port: s.Port, Addrs: []string{}, Probes: []Probe{}}
		for _, ip := range b.addrs(s) {
			h.Addrs = append(h.Addrs, net.JoinHostPort(ip.String(), strconv.Itoa(s.Port)))
		}
		if s.Network == "tcp" {
			res, _ := b.probeResults(s.Name)
			for _, r := range res {
				h.Probes = append(h.Probes, Probe{Host: r.host, OK: r.line == "", Line: r.line})
			}
		}
		out = append(out, h)
	}
	return out
}
