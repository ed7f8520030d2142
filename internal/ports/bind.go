package ports

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// ExitPortFindings is the exit code of a start refused because of ports.
const ExitPortFindings = 3

// Bound holds the sockets bound for one run, by spec name.
type Bound struct {
	Specs []Spec // as bound: Port is the real port, after fallback or port 0
	TCP   map[string]net.Listener
	UDP   map[string]*PacketConn
	// Notices are the loud lines of port_fallback: each listener moved off a
	// taken port, with where it went and its new URL. The server logs them
	// at WARN; Banner repeats them.
	Notices []string

	st state // what SelfProbe and FindShadows learned (state.go)
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
// finding comes back in one *StartError, and nothing stays bound. With
// fallback, a listener whose port is taken (or forbidden) moves to the
// nearest free port instead, and Bound.Notices says so.
func BindAll(specs []Spec, fallback bool) (*Bound, error) {
	b := &Bound{TCP: map[string]net.Listener{}, UDP: map[string]*PacketConn{}}
	avoid := map[int]bool{}
	nets := map[string][]string{} // a name bound on tcp and udp (rtp_proxy) moves both together
	for _, s := range specs {
		avoid[s.Port] = true
		nets[s.Name] = append(nets[s.Name], s.Network)
	}
	findings := Duplicates(specs)
	dup := map[string]bool{}
	for _, f := range findings {
		dup[f.Spec.Name+"/"+f.Spec.Network] = true
		f.FreePort = NearestFree(f.Spec, nets[f.Spec.Name], avoid)
		avoid[f.FreePort] = true
	}
	moved := map[string]int{}
	for _, s := range specs {
		if dup[s.Name+"/"+s.Network] {
			continue // reported as a duplicate; binding would only name ourselves
		}
		if p, ok := moved[s.Name]; ok {
			s.Port = p
		}
		err := b.bind(&s)
		if err == nil {
			b.Specs = append(b.Specs, s)
			continue
		}
		f := asFinding(s, err)
		f.FreePort = NearestFree(s, nets[s.Name], avoid)
		if fallback && f.FreePort > 0 && f.Cause != CauseAddrNotAvail {
			orig := s.Port
			s.Port = f.FreePort
			if err2 := b.bind(&s); err2 == nil {
				avoid[s.Port] = true
				moved[s.Name] = s.Port
				b.Specs = append(b.Specs, s)
				b.Notices = append(b.Notices, fallbackNotice(f, orig, s))
				continue
			}
			s.Port = orig
		}
		findings = append(findings, f)
	}
	if len(findings) > 0 {
		b.Close()
		return nil, &StartError{Findings: findings}
	}
	return b, nil
}

func (b *Bound) bind(s *Spec) error {
	switch s.Network {
	case "tcp":
		l, err := Listen(*s)
		if err != nil {
			return err
		}
		s.Port = l.Addr().(*net.TCPAddr).Port
		b.TCP[s.Name] = l
	case "udp":
		pc, err := ListenPacket(*s)
		if err != nil {
			return err
		}
		s.Port = pc.Port()
		b.UDP[s.Name] = pc
	default:
		return fmt.Errorf("network %q is neither tcp nor udp", s.Network)
	}
	return nil
}

func fallbackNotice(f *Finding, orig int, s Spec) string {
	return fmt.Sprintf("%s: port %d/%s cannot be used (%s); listening on port %d instead because port_fallback is on: %s",
		s.Name, orig, s.Network, f.Why(), s.Port, strings.Join(URLs(s), " "))
}

// Duplicates reports listeners of one config that want the same port and
// network on overlapping addresses: the second would fail against the
// first, and the message should say so rather than name Berth as the holder.
func Duplicates(specs []Spec) []*Finding {
	var out []*Finding
	for i, a := range specs {
		for j := 0; j < i; j++ {
			o := specs[j]
			if a.Port == 0 || a.Port != o.Port || a.Network != o.Network || a.Name == o.Name {
				continue
			}
			if !a.Wildcard() && !o.Wildcard() && a.Host != o.Host {
				continue
			}
			other := o
			out = append(out, &Finding{Spec: a, Network: a.Network, Addr: a.Addr(), Cause: CauseDuplicate, Other: &other,
				Err: fmt.Errorf("%s and %s both use port %d", o.Name, a.Name, a.Port)})
			break
		}
	}
	return out
}

// NearestFree returns the port nearest to s.Port that binds now on every
// network in nets (all of s.Host's families), skipping ports in avoid; 0 when
// none within reach. A privileged port maps to its customary unprivileged
// twin first (554 -> 8554, 80 -> 8080), the port users expect.
func NearestFree(s Spec, nets []string, avoid map[int]bool) int {
	if len(nets) == 0 {
		nets = []string{s.Network}
	}
	base := s.Port
	if base < 1024 {
		base += 8000
	}
	for d := 0; d <= 200; d++ {
		for _, p := range []int{base + d, base - d} {
			if d == 0 && p != base || p < 1024 || p > 65535 || p == s.Port || avoid[p] {
				continue
			}
			if canBind(s, nets, p) {
				return p
			}
		}
	}
	return 0
}

func canBind(s Spec, nets []string, port int) bool {
	s.Port = port
	var closers []func() error
	ok := true
	for _, n := range nets {
		s.Network = n
		if n == "tcp" {
			l, err := Listen(s)
			if err != nil {
				ok = false
				break
			}
			closers = append(closers, l.Close)
		} else {
			pc, err := ListenPacket(s)
			if err != nil {
				ok = false
				break
			}
			closers = append(closers, pc.Close)
		}
	}
	for _, c := range closers {
		c()
	}
	return ok
}

func asFinding(s Spec, err error) *Finding {
	var f *Finding
	if errors.As(err, &f) {
		return f
	}
	return &Finding{Spec: s, Network: s.Network, Addr: s.Addr(), Err: err, Cause: classify(err)}
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

// URLs lists how a client reaches a spec through loopback (and the
// configured address when it is a specific one): "rtsp://127.0.0.1:8554/".
func URLs(s Spec) []string {
	var out []string
	for _, h := range clientHosts(s) {
		out = append(out, scheme(s)+"://"+net.JoinHostPort(h, strconv.Itoa(s.Port))+"/")
	}
	return out
}

func scheme(s Spec) string {
	switch s.Name {
	case "rtsp", "rtmp", "http", "rtsps", "rtmps", "https", "srt":
		return s.Name
	case "rtp_proxy":
		if s.Network == "udp" {
			return "rtp"
		}
		return "tcp"
	}
	return s.Network
}

// clientHosts are the addresses a local client uses to reach a spec: the
// loopback of each family it serves, or its own address when specific.
func clientHosts(s Spec) []string {
	switch {
	case s.Host == "0.0.0.0":
		return []string{"127.0.0.1"}
	case s.Wildcard():
		if hasIPv6Loopback() {
			return []string{"127.0.0.1", "::1"}
		}
		return []string{"127.0.0.1"}
	}
	return []string{s.Host}
}

func hasIPv6Loopback() bool {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}
