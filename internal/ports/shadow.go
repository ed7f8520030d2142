package ports

import (
	"fmt"
	"net"
)

// Shadows lists other sockets that listen on the bound ports and would take
// some of Berth's clients, one human line each: a socket on a more specific
// address (clients of that address reach it), on a family Berth does not
// serve, or on the same address beside Berth (SO_REUSEPORT splits clients).
func Shadows(b *Bound) []string {
	var lines []string
	for _, sh := range FindShadows(b) {
		lines = append(lines, sh.Line)
	}
	return lines
}

// FindShadows is Shadows as data; b.State() reports the last scan.
func FindShadows(b *Bound) []Shadow {
	out := []Shadow{} // not nil: the scan ran
	for _, s := range b.Specs {
		hs, err := Holders(s.Network, s.Port)
		if err != nil {
			continue
		}
		mine := b.addrs(s)
		for _, h := range hs {
			if h.Proc.Self() || isMine(h, mine) {
				continue
			}
			out = append(out, shadowOf(s, h, mine))
		}
	}
	b.setShadows(out)
	return out
}

func shadowOf(s Spec, h Socket, mine []net.IP) Shadow {
	who := "a process this user cannot see"
	if h.Proc != nil {
		who = h.Proc.Describe(s.Port)
	}
	where := net.JoinHostPort(h.IP.String(), fmt.Sprint(h.Port))
	return Shadow{Name: s.Name, Network: s.Network, Addr: where, Holder: who, Line: shadowLine(s, who, where, h, mine)}
}

func shadowLine(s Spec, who, where string, h Socket, mine []net.IP) string {
	if s.Network == "udp" {
		where += "/udp"
	}
	for _, m := range mine {
		if m.Equal(h.IP) {
			return fmt.Sprintf("%s: %s also listens on %s beside Berth (SO_REUSEPORT); the kernel splits clients between it and Berth", s.Name, who, where)
		}
	}
	switch {
	case h.IP.IsUnspecified() && h.V6():
		return fmt.Sprintf("%s: %s listens on %s; clients connecting over IPv6 (::1, and localhost where it resolves to ::1) reach it, not Berth", s.Name, who, where)
	case h.IP.IsUnspecified():
		return fmt.Sprintf("%s: %s listens on %s; clients connecting to addresses Berth does not listen on reach it, not Berth", s.Name, who, where)
	}
	return fmt.Sprintf("%s: %s listens on %s; clients connecting to %s reach it, not Berth", s.Name, who, where, h.IP)
}

// addrs lists the local IPs a bound spec's sockets have.
func (b *Bound) addrs(s Spec) []net.IP {
	var out []net.IP
	if s.Network == "tcp" {
		if l := b.TCP[s.Name]; l != nil {
			for _, a := range Addrs(l) {
				out = append(out, a.(*net.TCPAddr).IP)
			}
		}
	} else if p := b.UDP[s.Name]; p != nil {
		for _, c := range p.Conns() {
			out = append(out, c.LocalAddr().(*net.UDPAddr).IP)
		}
	}
	return out
}

// isMine reports a socket of ours whose owner lookup failed: same address
// as one we bound. Only used when Proc is nil (another user without root
// cannot be us, but a failed fd scan could be).
func isMine(h Socket, mine []net.IP) bool {
	if h.Proc != nil {
		return false
	}
	for _, m := range mine {
		if m.Equal(h.IP) && h.UID == selfUID() {
			return true
		}
	}
	return false
}
