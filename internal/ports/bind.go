package ports

import (
	"errors"
	"net"
	"strings"
)

// ExitPortFindings is the exit code of a start refused because of ports.
const ExitPortFindings = 3

// Bound holds the sockets bound for one run, by spec name.
type Bound struct {
	Specs []Spec // as bound: Port is the real port, after fallback or port 0
	TCP   map[string]net.Listener
	UDP   map[string]*PacketConn
}

// StartError carries every finding of one start, so all are reported together.
type StartError struct {
	Findings []*Finding
}

func (e *StartError) Error() string {
	var lines []string
	for _, f := range e.Findings {
		lines = append(lines, f.Error())
	}
	return strings.Join(lines, "\n")
}

// BindAll binds every spec. It does not stop at the first failure: every
// finding comes back in one *StartError, and nothing stays bound.
func BindAll(specs []Spec, fallback bool) (*Bound, error) {
	b := &Bound{TCP: map[string]net.Listener{}, UDP: map[string]*PacketConn{}}
	var findings []*Finding
	for _, s := range specs {
		switch s.Network {
		case "tcp":
			l, err := Listen(s)
			if err != nil {
				findings = append(findings, asFinding(s, err))
				continue
			}
			s.Port = l.Addr().(*net.TCPAddr).Port
			b.TCP[s.Name] = l
		case "udp":
			pc, err := ListenPacket(s)
			if err != nil {
				findings = append(findings, asFinding(s, err))
				continue
			}
			s.Port = pc.Port()
			b.UDP[s.Name] = pc
		}
		b.Specs = append(b.Specs, s)
	}
	if len(findings) > 0 {
		b.Close()
		return nil, &StartError{Findings: findings}
	}
	return b, nil
}

func asFinding(s Spec, err error) *Finding {
	var f *Finding
	if errors.As(err, &f) {
		return f
	}
	return &Finding{Spec: s, Network: s.Network, Addr: s.Addr(), Err: err}
}

// Close closes every socket.
func (b *Bound) Close() {
	for _, l := range b.TCP {
		l.Close()
	}
	for _, p := range b.UDP {
		p.Close()
	}
}

// Spec returns the bound spec with name, and whether it exists.
func (b *Bound) Spec(name string) (Spec, bool) {
	for _, s := range b.Specs {
		if s.Name == name {
			return s, true
		}
	}
	return Spec{}, false
}
