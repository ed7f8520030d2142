package proxy

import (
	"time"

	"github.com/berthmedia/berth/internal/hub"
)

// The Manager is a hub.Observer: a reader of a missing path starts its
// on-demand pull (the reader waits maxStreamWaitMS for it), and a pull on
// demand or with auto_close stops NoReaderDelay after its last reader.
var _ hub.Observer = (*Manager)(nil)

// StreamNotFound starts the on-demand pull of path, if there is one.
func (m *Manager) StreamNotFound(path string, _ hub.Origin) {
	p := m.byStreamPath(path)
	if p == nil || !p.spec.OnDemand {
		return
	}
	p.disarm()
	p.mu.Lock()
	idle := p.done == nil
	p.mu.Unlock()
	if idle {
		m.log().Info("pull on demand: a reader asked; starting", "key", p.key, "url", Redact(p.spec.URL))
		go p.start() // never on the reader's goroutine under a lock it holds
	}
}

// StreamPublished arms the no-reader stop of a pull nobody reads yet.
func (m *Manager) StreamPublished(s *hub.Stream) {
	if p := m.byStreamPath(s.Path); p != nil && p.owns(s) && s.Readers() == 0 {
		p.arm(s)
	}
}

// StreamEnded is not needed: a pull's session sees its stream end.
func (m *Manager) StreamEnded(*hub.Stream) {}

// ReaderAdded keeps a pull that was about to stop.
func (m *Manager) ReaderAdded(r *hub.Reader) {
	if p := m.byStreamPath(r.Stream().Path); p != nil {
		p.disarm()
	}
}

// ReaderRemoved arms the stop after the last reader.
func (m *Manager) ReaderRemoved(r *hub.Reader) {
	s := r.Stream()
	if s.Readers() != 0 || s.Ended() {
		return
	}
	if p := m.byStreamPath(s.Path); p != nil && p.owns(s) {
		p.arm(s)
	}
}

// arm starts the no-reader delay of an on-demand or auto-close pull.
func (p *Proxy) arm(s *hub.Stream) {
	if !p.spec.OnDemand && !p.spec.AutoClose {
		return
	}
	delay := p.m.noReaderDelay()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopTimer != nil {
		p.stopTimer.Stop()
	}
	p.stopTimer = time.AfterFunc(delay, func() {
		if cur := p.m.Hub.Get(p.spec.Path); cur != nil && cur.Readers() > 0 {
			return
		}
		p.m.log().Info("pull: no reader for the delay; stopping", "key", p.key, "delay", delay,
			"on_demand", p.spec.OnDemand, "auto_close", p.spec.AutoClose)
		if p.spec.AutoClose && !p.spec.OnDemand {
			p.m.deleteIf(p) // not a newer pull of the same key
			return
		}
		p.stop("no reader")
	})
}

func (p *Proxy) disarm() {
	p.mu.Lock()
	if p.stopTimer != nil {
		p.stopTimer.Stop()
		p.stopTimer = nil
	}
	p.mu.Unlock()
}

// owns reports whether s is this pull's stream (not a push to the same
// path): published by a pull from one of its sources.
func (p *Proxy) owns(s *hub.Stream) bool {
	if s.Origin.Proto != "pull" {
		return false
	}
	for _, u := range p.spec.sources() {
		if s.Origin.ID == Redact(u) {
			return true
		}
	}
	return false
}
