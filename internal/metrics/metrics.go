// Package metrics serves Berth's Prometheus metrics. Its collectors read
// snapshots when Prometheus scrapes (the hub's cumulative counters, the live
// streams and readers, the listeners' state), so the packet path carries no
// counter beyond the atomics the hub keeps anyway. It imports no protocol
// package: everything it reads comes through Sources.
package metrics

import (
	"crypto/subtle"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berthmedia/berth/internal/ports"
)

// Sources are what the metrics read at scrape time. A nil field leaves its
// metrics out. Each func must be safe to call from any goroutine and cheap:
// a scrape calls each once.
type Sources struct {
	// Hub snapshots the streams, readers and the hub's counters (FromHub).
	Hub func() HubSnapshot
	// Accepted counts accepted TCP connections by listener, cumulative
	// (sessions.Registry.Accepted).
	Accepted func() map[string]uint64
	// Refusals counts publish/play refusals by "action/reason", cumulative:
	// "publish/credentials", "play/hook" (auth.Checker.Refusals).
	Refusals func() map[string]uint64
	// Limits counts refusals by the limits against abuse, by the limit's
	// "section.key", cumulative (limits.Warner.Counts).
	Limits func() map[string]uint64
	// Listeners is the ports package's view of the bound listeners.
	Listeners func() ports.State
	// Version is Berth's version, for berth_build_info.
	Version string
	// Log hears refused scrapes, at debug (a scraper retries every few seconds).
	Log *slog.Logger
}

// HubSnapshot is the hub as the metrics see it: gauges of what is live now
// and the hub's cumulative counters.
type HubSnapshot struct {
	Streams map[string]int // live streams by the publisher's protocol
	Readers map[string]int // live players by their protocol

	BytesIn  map[string]uint64 // media bytes received, by the publisher's protocol
	BytesOut map[string]uint64 // media bytes handed to players, by the player's protocol
	Published, Ended,
	PublishRefused, // a publish of a busy path
	NotFound, // a play of a missing path
	Skips, // a slow reader jumped to a newer keyframe
	Drops uint64 // a slow reader was closed (slow_reader=close)
}

// Access says who may scrape /metrics. It can change while the server runs
// (SetAccess), for hot reload.
type Access struct {
	Enable bool           // false: /metrics answers 404, as if not there
	Secret string         // "" = none; else a bearer token, a basic-auth password or ?secret=
	Allow  []netip.Prefix // empty = any address
}

// Metrics is Berth's registry: its own collectors, Go's runtime and the process.
type Metrics struct {
	src    Sources
	log    *slog.Logger
	reg    *prometheus.Registry
	hooks  *prometheus.HistogramVec
	access atomic.Pointer[Access]
	http   http.Handler
}

// New builds the registry over src. /metrics starts enabled and open;
// SetAccess applies the configuration.
func New(src Sources) *Metrics {
	m := &Metrics{src: src, log: src.Log, reg: prometheus.NewRegistry()}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.hooks = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "berth_hook_duration_seconds",
		Help: "Web hook calls by hook and result (ok, refused, error, timeout), with their duration; _count is the calls.",
		// A hook's timeout is [hook] timeoutSec, 10 s by default: the last
		// buckets tell a slow hook server from one that times out.
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"hook", "result"})
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.hooks,
		&collector{src: src},
	)
	m.SetAccess(Access{Enable: true})
	m.http = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return m
}

// Registry is the registry behind Handler, for tests and for packages that
// register collectors of their own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveHook records one web hook call; it is hooks.Client.Observe.
func (m *Metrics) ObserveHook(hook, result string, d time.Duration) {
	m.hooks.WithLabelValues(hook, result).Observe(d.Seconds())
}

// SetAccess replaces who may scrape; safe while scrapes run.
func (m *Metrics) SetAccess(a Access) {
	a.Allow = append([]netip.Prefix(nil), a.Allow...)
	m.access.Store(&a)
}

// Handler serves the metrics in Prometheus's text format (or OpenMetrics
// and protobuf, as the scraper asks), behind Access.
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := m.access.Load()
		if !a.Enable {
			http.NotFound(w, r)
			return
		}
		if len(a.Allow) > 0 {
			ip := remoteIP(r)
			if !allowed(a.Allow, ip) {
				m.log.Debug("metrics scrape refused: address not in [metrics] allow_ip", "remote", r.RemoteAddr)
				http.Error(w, "berth: "+ip.String()+" may not read /metrics: it is not in [metrics] allow_ip", http.StatusForbidden)
				return
			}
		}
		if a.Secret != "" && !secretOK(r, a.Secret) {
			m.log.Debug("metrics scrape refused: missing or wrong [metrics] secret", "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="berth metrics"`)
			http.Error(w, "berth: /metrics needs [metrics] secret: send it as a bearer token (Prometheus: authorization.credentials), a basic-auth password or ?secret=", http.StatusUnauthorized)
			return
		}
		m.http.ServeHTTP(w, r)
	})
}

// remoteIP is the TCP peer's address. X-Forwarded-For is not trusted: a
// client could claim any address with it.
func remoteIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, _ := netip.ParseAddr(host)
	return ip.Unmap()
}

func allowed(allow []netip.Prefix, ip netip.Addr) bool {
	for _, p := range allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func secretOK(r *http.Request, secret string) bool {
	var got string
	if auth := r.Header.Get("Authorization"); auth != "" {
		if tok, ok := strings.CutPrefix(auth, "Bearer "); ok {
			got = strings.TrimSpace(tok)
		} else if _, pass, ok := r.BasicAuth(); ok {
			got = pass
		}
	} else {
		got = r.URL.Query().Get("secret")
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(secret)) == 1
}
