// Package proxy pulls streams from other servers and cameras into the hub:
// ZLMediaKit's addStreamProxy. A Proxy is just a publisher of the hub fed by
// a source client (RTSP, RTMP, HTTP-FLV, HLS, SRT); it reconnects with a capped
// backoff, keeps its stream registered for readers while it does (within a
// grace time), and, when configured on demand, starts with its first reader
// and stops after its last one.
package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/srtclient"
)

// DefaultVhost is the vhost every key names (Berth has one).
const DefaultVhost = "__defaultVhost__"

// Errors of the Manager; the API maps them to its codes.
var (
	ErrExists     = errors.New("this stream already has a pull proxy")
	ErrBadURL     = errors.New("the source URL is not one Berth can pull")
	ErrNotFound   = errors.New("no pull proxy has this key")
	ErrBadRTPType = errors.New("rtp_type must be 0 (TCP), 1 (UDP) or 2 (multicast)")
)

// Transport is how an RTSP source sends RTP (ZLMediaKit's rtp_type).
type Transport int

const (
	TCP       Transport = iota // interleaved in the RTSP connection
	UDP                        // unicast UDP
	Multicast                  // a group the camera names (RFC 2326 section 12.39)
)

// Spec is one pull: where from, where to, and how to retry.
type Spec struct {
	Path       string // app/stream in the hub
	URL        string // rtsp://, rtmp://, http(s)://...flv, http(s)://...m3u8, srt://
	RetryCount int    // retries after a failure before giving up; -1 = forever
	Transport  Transport
	Timeout    time.Duration // connect and each request; 0 = 10 s
	// OnDemand: the pull starts when a reader asks for Path and stops
	// NoReaderDelay after its last reader leaves; it is not removed.
	OnDemand bool
	// AutoClose: the pull is removed NoReaderDelay after its last reader
	// leaves (ZLMediaKit's auto_close, for pulls a hook server added).
	AutoClose bool
	// Fallbacks are more sources of the same stream (the origins of
	// [cluster] origin_url): after URL fails the next one is tried at once,
	// in turn, and the backoff waits only after a whole round failed; a
	// session that was live is retried at its own URL first. RetryCount
	// never gives up before each URL was tried once.
	Fallbacks []string
	// GiveUpAfter, when set, ends the pull once its source has been away
	// this long (since the start, or since it was last live) whatever
	// RetryCount says: an origin pull exists for readers that wait
	// timeout_sec and are gone after that.
	GiveUpAfter time.Duration
	// Transient pulls are removed when they give up instead of staying
	// listed as stopped: the next reader of the path starts a new one.
	Transient bool
	// Fix is what the line of a pull that gave up tells the operator to
	// do; empty = check the source and add the proxy again.
	Fix string
}

// sources is the pull's URL followed by its fallbacks.
func (s *Spec) sources() []string { return append([]string{s.URL}, s.Fallbacks...) }

// State is where a proxy's life is.
type State int

const (
	StateIdle       State = iota // on demand, waiting for a reader
	StateConnecting              // first attempt under way
	StateLive                    // media flows
	StateRetrying                // the source failed; waiting or trying again
	StateStopped                 // gave up (retry_count spent) or deleted
)

func (s State) String() string {
	switch s {
	case StateIdle:
		return "idle"
	case StateConnecting:
		return "connecting"
	case StateLive:
		return "live"
	case StateRetrying:
		return "retrying"
	case StateStopped:
		return "stopped"
	}
	return "state?"
}

// Info is a proxy's status, for the API and the status page.
type Info struct {
	Key       string
	Path      string
	URL       string // credentials redacted
	State     State
	Retries   int    // failures since the last live session
	Cause     string // why the last session ended or the last attempt failed, in plain words
	Since     time.Time
	LiveSince time.Time // zero when not live
	OnDemand  bool
	Spec      Spec // as added, URL with credentials (never shown)
	Bytes     uint64
}

// Summary is the state as the status page shows it: "live",
// "retrying 3 (401: the camera refused user admin)", "stopped: cause".
func (i Info) Summary() string {
	switch i.State {
	case StateRetrying:
		return fmt.Sprintf("retrying %d (%s)", i.Retries, i.Cause)
	case StateStopped:
		if i.Cause != "" {
			return "stopped: " + i.Cause
		}
	}
	return i.State.String()
}

// Manager holds every pull proxy by key. Set its fields before Add.
type Manager struct {
	Hub *hub.Hub
	Log *slog.Logger
	// Grace is how long a pulled stream stays registered while its source
	// reconnects; readers that stay connected continue on the new session.
	// 0 = 10 s.
	Grace time.Duration
	// NoReaderDelay is how long an on-demand or auto-close pull runs on
	// after its last reader ([general] streamNoneReaderDelayMS); nil = 20 s.
	NoReaderDelay func() time.Duration
	// Backoff bounds the wait between retries; zero = 1 s doubling to 20 s.
	BackoffMin, BackoffMax time.Duration

	mu      sync.Mutex
	proxies map[string]*Proxy
	byPath  map[string]*Proxy
	closed  bool
}

// Key is ZLMediaKit's proxy key for a path: vhost/app/stream.
func Key(path string) string { return DefaultVhost + "/" + path }

func (m *Manager) log() *slog.Logger {
	if m.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.Log
}

func (m *Manager) grace() time.Duration {
	if m.Grace <= 0 {
		return 10 * time.Second
	}
	return m.Grace
}

func (m *Manager) noReaderDelay() time.Duration {
	if m.NoReaderDelay == nil {
		return 20 * time.Second
	}
	return m.NoReaderDelay()
}

// Add registers a pull and starts it (an on-demand one waits for its first
// reader). It returns the key delProxy and getProxyInfo take.
func (m *Manager) Add(spec Spec) (string, error) {
	if err := validate(&spec); err != nil {
		return "", err
	}
	key := Key(spec.Path)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return "", hub.ErrHubClosed
	}
	if m.proxies == nil {
		m.proxies, m.byPath = map[string]*Proxy{}, map[string]*Proxy{}
	}
	if old := m.proxies[key]; old != nil {
		m.mu.Unlock()
		return key, fmt.Errorf("%w: %s pulls %s (delete it with delStreamProxy?key=%s first)", ErrExists, key, Redact(old.spec.URL), key)
	}
	p := newProxy(m, key, spec)
	m.proxies[key] = p
	m.byPath[spec.Path] = p
	m.mu.Unlock()
	m.log().Info("pull proxy added", "key", key, "url", Redact(spec.URL), "on_demand", spec.OnDemand,
		"retry_count", spec.RetryCount)
	if !spec.OnDemand {
		p.start()
	}
	return key, nil
}

// validate fills defaults and refuses what cannot work, saying how to fix it.
func validate(s *Spec) error {
	s.Path = strings.Trim(s.Path, "/")
	app, stream, ok := strings.Cut(s.Path, "/")
	if !ok || app == "" || stream == "" {
		return fmt.Errorf("%w: the stream path %q needs an app and a stream name (app/stream)", ErrBadURL, s.Path)
	}
	if s.Transport < TCP || s.Transport > Multicast {
		return ErrBadRTPType
	}
	for _, u := range s.sources() {
		if _, err := kindOf(u); err != nil {
			return err
		}
		if strings.HasPrefix(strings.ToLower(u), "rtsps:") && s.Transport != TCP {
			return fmt.Errorf("%w: rtsps carries RTP inside its TLS connection; use rtp_type=0 (Berth speaks no SRTP for UDP)", ErrBadRTPType)
		}
	}
	if s.Timeout <= 0 {
		s.Timeout = 10 * time.Second
	}
	if s.RetryCount < -1 {
		s.RetryCount = -1
	}
	return nil
}

// CheckURL reports whether raw is a URL Berth can pull, with the reason
// when not (ErrBadURL): the check Add makes, for config that names URLs.
func CheckURL(raw string) error {
	_, err := kindOf(raw)
	return err
}

// sourceKind is which client pulls a URL.
type sourceKind int

const (
	srcRTSP sourceKind = iota
	srcRTMP
	srcFLV
	srcHLS
	srcSRT
)

func kindOf(raw string) (sourceKind, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return 0, fmt.Errorf("%w: %q does not parse as scheme://host/path", ErrBadURL, Redact(raw))
	}
	p := strings.ToLower(u.Path)
	switch strings.ToLower(u.Scheme) {
	case "rtsp", "rtsps":
		return srcRTSP, nil
	case "rtmp":
		return srcRTMP, nil
	case "srt":
		if _, err := srtclient.ParseURL(raw); err != nil {
			return 0, fmt.Errorf("%w: %w", ErrBadURL, err)
		}
		return srcSRT, nil
	case "http", "https":
		switch {
		case strings.HasSuffix(p, ".flv"):
			return srcFLV, nil
		case strings.HasSuffix(p, ".m3u8"):
			return srcHLS, nil
		}
		return 0, fmt.Errorf("%w: %q is HTTP but neither .flv (HTTP-FLV) nor .m3u8 (HLS)", ErrBadURL, Redact(raw))
	}
	return 0, fmt.Errorf("%w: scheme %q of %q (Berth pulls rtsp, rtsps, rtmp, http(s) .flv and .m3u8, srt)", ErrBadURL, u.Scheme, Redact(raw))
}

// Delete stops and removes the pull; its stream ends.
func (m *Manager) Delete(key string) bool { return m.delete(key, nil) }

// deleteIf is Delete of p only: the timer of a pull that was replaced (a
// Transient pull that gave up, then a new one for the next reader) must
// not delete its successor.
func (m *Manager) deleteIf(p *Proxy) { m.delete(p.key, p) }

func (m *Manager) delete(key string, only *Proxy) bool {
	m.mu.Lock()
	p := m.proxies[key]
	if p != nil && only != nil && p != only {
		p = nil
	}
	if p != nil {
		delete(m.proxies, key)
		if m.byPath[p.spec.Path] == p {
			delete(m.byPath, p.spec.Path)
		}
	}
	m.mu.Unlock()
	if p == nil {
		return false
	}
	p.stop("deleted")
	m.log().Info("pull proxy deleted", "key", key)
	return true
}

// forget removes p, if it is still the proxy of its key, without stopping
// it: its run goroutine calls this as it gives up (Transient).
func (m *Manager) forget(p *Proxy) {
	m.mu.Lock()
	if m.proxies[p.key] == p {
		delete(m.proxies, p.key)
	}
	if m.byPath[p.spec.Path] == p {
		delete(m.byPath, p.spec.Path)
	}
	m.mu.Unlock()
	p.disarm()
}

// Get returns a proxy's status.
func (m *Manager) Get(key string) (Info, bool) {
	m.mu.Lock()
	p := m.proxies[key]
	m.mu.Unlock()
	if p == nil {
		return Info{}, false
	}
	return p.Info(), true
}

// List returns every proxy's status, sorted by key.
func (m *Manager) List() []Info {
	m.mu.Lock()
	all := make([]*Proxy, 0, len(m.proxies))
	for _, p := range m.proxies {
		all = append(all, p)
	}
	m.mu.Unlock()
	out := make([]Info, 0, len(all))
	for _, p := range all {
		out = append(out, p.Info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Close stops every pull (server shutdown).
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	all := m.proxies
	m.proxies, m.byPath = nil, nil
	m.mu.Unlock()
	for _, p := range all {
		p.stop("server shutting down")
	}
}

func (m *Manager) byStreamPath(path string) *Proxy {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.byPath[path]
}

// Redact removes the password from a URL for logs and the API
// ("rtsp://admin:***@cam/..."), keeping the user, which tells an operator
// which account was refused.
func Redact(raw string) string {
	if strings.HasPrefix(strings.ToLower(raw), "srt:") {
		return srtclient.Redact(raw) // its secret is the passphrase= in the query
	}
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "***")
	}
	s := u.String()
	return strings.Replace(s, "%2A%2A%2A@", "***@", 1)
}
