package server

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/ports"
	"github.com/berthmedia/berth/internal/web"
)

// recentWarnings is how many WARN/ERROR records the status page shows.
const recentWarnings = 50

// shadowsTTL bounds how often the status page looks for shadowing
// sockets: that scans every process's file descriptors, too much to do on
// each refresh of every open page.
const shadowsTTL = 10 * time.Second

// webState is what the status page reports that only Start sees: the
// log's last warnings, the start time, the self-probe results.
type webState struct {
	recent  *logging.Recent
	started time.Time
	health  atomic.Pointer[[]ports.Health] // set once the self-probe has returned

	mu        sync.Mutex // one shadow scan at a time
	shadows   []string
	shadowsAt time.Time
}

// install makes log feed the warnings ring; Start calls it before any
// component takes a child of its logger.
func (w *webState) install(log *slog.Logger) *slog.Logger {
	w.started = time.Now()
	w.recent = logging.NewRecent(recentWarnings)
	return slog.New(w.recent.Wrap(log.Handler()))
}

// probed records the listeners' health after SelfProbe, which writes the
// results the health is read from.
func (w *webState) probed(b *ports.Bound) {
	h := b.Health()
	w.health.Store(&h)
}

func (w *webState) shadowLines(b *ports.Bound) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.shadowsAt.IsZero() || time.Since(w.shadowsAt) > shadowsTTL {
		w.shadows, w.shadowsAt = ports.Shadows(b), time.Now()
	}
	return w.shadows
}

// webHandler serves the status page with the API's secret.
func (s *Server) webHandler() *web.Handler {
	return &web.Handler{SecretFunc: func() string { return s.CurrentConfig().API.Secret }, Status: s.webStatus, Log: s.Log.With("component", "web")}
}

// webStatus is the status page's JSON: this run, its listeners, who reads
// what, the last warnings.
func (s *Server) webStatus() any {
	st := &web.Status{
		Server: web.Server{Version: Version, Instance: s.Instance, PID: os.Getpid(), Started: s.web.started,
			UptimeSec: int64(time.Since(s.web.started).Seconds()), Go: runtime.Version()},
		Listeners: []web.Listener{},
		Readers:   s.readersByProto(),
	}
	if h := s.web.health.Load(); h != nil && s.bound != nil {
		st.Listeners = web.Listeners(*h, s.web.shadowLines(s.bound), s.bound.Notices)
	}
	st.Warnings, st.WarningsTotal = s.web.recent.Records()
	st.Pushers = s.pusherRows() // pusher.go
	if s.proxies != nil {
		for _, in := range s.proxies.List() {
			st.Proxies = append(st.Proxies, web.Proxy{Key: in.Key, Path: in.Path, URL: in.URL, State: in.State.String(),
				Summary: in.Summary(), Retries: in.Retries})
		}
	}
	if c, ok := s.clusterStatus(context.Background()); ok { // bounded by the cluster's lookup deadline
		st.Cluster = c
	}
	return st
}

// readersByProto counts each stream's players by the protocol they read.
func (s *Server) readersByProto() map[string]map[string]int {
	out := map[string]map[string]int{}
	if s.Hub == nil {
		return out
	}
	for _, st := range s.Hub.Streams() {
		for _, r := range st.ReaderList() { // players only: a converter or a muxer is not a reader here
			proto := r.Who().Proto
			if proto == "" {
				proto = "other"
			}
			if out[st.Path] == nil {
				out[st.Path] = map[string]int{}
			}
			out[st.Path][proto]++
		}
	}
	return out
}
