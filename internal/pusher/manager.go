package pusher

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/srtclient"
)

// ErrClosed is what Add returns once the server is shutting down.
var ErrClosed = errors.New("the server is shutting down; no pusher can be added")

// Manager holds the pushers by key. Its fields are set before the first
// call; the zero value of the rest works.
type Manager struct {
	Hub *hub.Hub
	Log *slog.Logger
	// TS opens the shared MPEG-TS muxer SRT pushers send; nil refuses
	// them when they start.
	TS TSOpener

	mu      sync.Mutex
	pushers map[string]*Pusher
	closed  bool
}

// Add starts a pusher for spec and returns its key. A pusher of the same
// key (same stream, schema and destination) that is running is kept, and
// its key returned, as ZLMediaKit answers a repeated call; one that had
// given up is replaced by the new one. The stream need not be live: the
// pusher waits for it.
func (m *Manager) Add(spec Spec) (key string, err error) {
	if err := spec.Validate(); err != nil {
		return "", err
	}
	key = spec.Key()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", ErrClosed
	}
	if m.pushers == nil {
		m.pushers = map[string]*Pusher{}
	}
	if old := m.pushers[key]; old != nil {
		select {
		case <-old.done: // it gave up: start afresh
		default:
			return key, nil
		}
	}
	log := m.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := newPusher(m.Hub, log, spec)
	p.ts = m.TS
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	m.pushers[key] = p
	p.log.Info("pusher added", "schema", spec.Schema, "retry_count", spec.Retries, "rtp_type", spec.RTPType)
	go p.run(ctx)
	return key, nil
}

// Del stops and removes the pusher of key, and reports whether there was
// one. It returns once the pusher has hung up.
func (m *Manager) Del(key string) bool {
	m.mu.Lock()
	p := m.pushers[key]
	delete(m.pushers, key)
	m.mu.Unlock()
	if p == nil {
		return false
	}
	p.cancel()
	<-p.done
	p.log.Info("pusher deleted")
	return true
}

// List returns every pusher's state, sorted by key.
func (m *Manager) List() []Info {
	m.mu.Lock()
	ps := make([]*Pusher, 0, len(m.pushers))
	for _, p := range m.pushers {
		ps = append(ps, p)
	}
	m.mu.Unlock()
	out := make([]Info, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Close stops every pusher (server shutdown) and refuses new ones.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	ps := m.pushers
	m.pushers = nil
	m.mu.Unlock()
	for _, p := range ps {
		p.cancel()
	}
	for _, p := range ps {
		<-p.done
	}
}

// Redact drops a URL's password for logs and lists.
func Redact(raw string) string {
	if strings.HasPrefix(strings.ToLower(raw), "srt:") {
		return srtclient.Redact(raw) // its secret is the passphrase= in the query
	}
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
