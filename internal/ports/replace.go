package ports

import (
	"io"
	"log/slog"
	"net"
	"slices"
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
	b.forget(spec.Name) // the old probe results name the old port
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

// forget drops the self-probe results of the named listeners.
func (b *Bound) forget(names ...string) {
	b.st.mu.Lock()
	defer b.st.mu.Unlock()
	for _, n := range names {
		delete(b.st.probed, n)
	}
	kept := b.st.probes[:0:0]
	for _, p := range b.st.probes {
		if !slices.Contains(names, p.Name) {
			kept = append(kept, p)
		}
	}
	if b.st.probes != nil {
		b.st.probes = kept
	}
}

// only returns a Bound holding just the named listeners' specs and probe
// results, for probing and printing a few after a reload.
func (b *Bound) only(names []string) *Bound {
	sub := &Bound{}
	for _, s := range b.Specs {
		if slices.Contains(names, s.Name) {
			sub.Specs = append(sub.Specs, s)
		}
	}
	b.st.mu.Lock()
	sub.st.probed = map[string][]probeResult{}
	for n, r := range b.st.probed {
		if slices.Contains(names, n) {
			sub.st.probed[n] = r
		}
	}
	b.st.mu.Unlock()
	return sub
}

// SelfProbeOnly is SelfProbe of the named listeners only (those a reload
// moved); the others keep their results.
func (b *Bound) SelfProbeOnly(names []string, instance string, timeout time.Duration) []string {
	sub := b.only(names)
	lines := SelfProbe(sub, instance, timeout)
	b.forget(names...)
	b.st.mu.Lock()
	if b.st.probed == nil {
		b.st.probed = map[string][]probeResult{}
	}
	for n, r := range sub.st.probed {
		b.st.probed[n] = r
	}
	b.st.probes = append(b.st.probes, sub.st.probes...)
	b.st.mu.Unlock()
	return lines
}

// BannerOnly writes the banner of the named listeners only: the lines a
// reload that moved them prints.
func BannerOnly(w io.Writer, b *Bound, names []string, log *slog.Logger) {
	Banner(w, b.only(names), log)
}

// ShadowsOnly is Shadows of the named listeners only: other sockets on the
// ports a reload moved to. The others keep their last scan.
func (b *Bound) ShadowsOnly(names []string) []string {
	found := FindShadows(b.only(names))
	b.st.mu.Lock()
	kept := []Shadow{}
	for _, sh := range b.st.shadows {
		if !slices.Contains(names, sh.Name) {
			kept = append(kept, sh)
		}
	}
	b.st.shadows = append(kept, found...)
	b.st.mu.Unlock()
	var lines []string
	for _, sh := range found {
		lines = append(lines, sh.Line)
	}
	return lines
}
