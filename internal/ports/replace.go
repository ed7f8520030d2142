package ports

import (
	"io"
	"log/slog"
	"net"
	"time"
)

// A hot reload that changes a port binds the new listener first (Listen,
// with the same Spec shape and the same findings as at start), hands it to
// the protocol server, and only then closes the old one. These record the
// swap in Bound, so Addr, the banner and doctor-style reports name the
// listener that is serving.

// ReplaceTCP records l as the TCP listener of spec.Name, bound as spec
// (the real port), and returns the one it replaces, still open: the caller
// closes it once the new one serves. A nil l removes the listener (its port
// was set to 0).
func (b *Bound) ReplaceTCP(spec Spec, l net.Listener) (old net.Listener) {
	spec.Network = "tcp"
	old = b.TCP[spec.Name]
	if l == nil {
		delete(b.TCP, spec.Name)
	} else {
		b.TCP[spec.Name] = l
	}
	b.replaceSpec(spec, l != nil)
	return old
}

// ReplaceUDP is ReplaceTCP for a UDP socket set.
func (b *Bound) ReplaceUDP(spec Spec, pc *PacketConn) (old *PacketConn) {
	spec.Network = "udp"
	old = b.UDP[spec.Name]
	if pc == nil {
		delete(b.UDP, spec.Name)
	} else {
		b.UDP[spec.Name] = pc
	}
	b.replaceSpec(spec, pc != nil)
	return old
}

func (b *Bound) replaceSpec(spec Spec, keep bool) {
	delete(b.probed, spec.Name) // the old probe results name the old port
	for i, s := range b.Specs {
		if s.Name == spec.Name && s.Network == spec.Network {
			if keep {
				b.Specs[i] = spec
			} else {
				b.Specs = append(b.Specs[:i], b.Specs[i+1:]...)
			}
			return
		}
	}
	if keep {
		b.Specs = append(b.Specs, spec)
	}
}

// only returns a Bound holding just the named listeners' specs and probe
// results, for probing and printing a few after a reload.
func (b *Bound) only(names []string) *Bound {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	sub := &Bound{probed: map[string][]probeResult{}}
	for _, s := range b.Specs {
		if want[s.Name] {
			sub.Specs = append(sub.Specs, s)
		}
	}
	for n, r := range b.probed {
		if want[n] {
			sub.probed[n] = r
		}
	}
	return sub
}

// SelfProbeOnly is SelfProbe of the named listeners only (those a reload
// moved); the others keep their results.
func (b *Bound) SelfProbeOnly(names []string, instance string, timeout time.Duration) []string {
	sub := b.only(names)
	lines := SelfProbe(sub, instance, timeout)
	if b.probed == nil {
		b.probed = map[string][]probeResult{}
	}
	for n, r := range sub.probed {
		b.probed[n] = r
	}
	return lines
}

// BannerOnly writes the banner of the named listeners only: the lines a
// reload that moved them prints.
func BannerOnly(w io.Writer, b *Bound, names []string, log *slog.Logger) {
	Banner(w, b.only(names), log)
}
