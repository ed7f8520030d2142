package web

import (
	"strings"
	"time"

	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/ports"
)

// Status is the body of StatusPath's "data": what the page shows besides
// getMediaList's streams. Every list is non-nil, so the JSON has [] and {}
// rather than null.
type Status struct {
	Server    Server     `json:"server"`
	Listeners []Listener `json:"listeners"`
	// Readers counts each stream's players by protocol: "live/cam" ->
	// {"rtsp": 1, "http-flv": 2}. A stream without players is absent.
	Readers map[string]map[string]int `json:"readers"`
	// Warnings are the last WARN and ERROR log records, oldest first;
	// WarningsTotal counts every one since start (the ring keeps the last few).
	Warnings      []logging.Record `json:"warnings"`
	WarningsTotal uint64           `json:"warnings_total"`
	// Pushers are the streams pushed out to other servers (addStreamPusherProxy).
	Pushers []Pusher `json:"pushers"`
	// Proxies are the pull proxies and their states (absent: none).
	Proxies []Proxy `json:"proxies,omitempty"`
	// Cluster is the cluster registry as this node sees it (internal/cluster's
	// Status); absent when the node is not in a cluster.
	Cluster any `json:"cluster,omitempty"`
}

// Pusher is one push-out and its state in words.
type Pusher struct {
	Key    string `json:"key"`
	Path   string `json:"path"`   // the stream pushed, app/stream
	URL    string `json:"url"`    // where to, password hidden
	Status string `json:"status"` // live, connecting, waiting for the stream, retrying N: cause, stopped: cause
	Bytes  uint64 `json:"bytes"`  // media bytes pushed
}

// Proxy is one pull proxy as the page lists it.
type Proxy struct {
	Key     string `json:"key"`
	Path    string `json:"path"`
	URL     string `json:"url"`     // credentials redacted
	State   string `json:"state"`   // idle, connecting, live, retrying, stopped
	Summary string `json:"summary"` // "retrying 3 (401: the camera refused user admin)"
	Retries int    `json:"retries"`
}

// Server says which Berth answered.
type Server struct {
	Version   string    `json:"version"`
	Instance  string    `json:"instance"` // the token the self-probe looks for
	PID       int       `json:"pid"`
	Started   time.Time `json:"started"`
	UptimeSec int64     `json:"uptime_sec"`
	Go        string    `json:"go"` // the Go version it was built with
}

// Listener is one bound socket set and what `berth doctor` would say of it.
type Listener struct {
	ports.Health
	// State is "ok", "self-probe failed" (some loopback address reaches
	// something else), or "shadowed" (another process listens on the port
	// and takes some of Berth's clients).
	State   string   `json:"state"`
	Shadows []string `json:"shadows"` // one human line per shadowing socket
	Notices []string `json:"notices"` // port_fallback moved this listener off its configured port
}

// Listeners joins each listener's health with the shadow lines
// (ports.Shadows) and port_fallback notices (ports.Bound.Notices) that
// name it. Both kinds of line start with "name: "; a UDP shadow names its
// address with "/udp", so a tcp and udp listener of one name (rtp_proxy)
// each get their own.
func Listeners(hs []ports.Health, shadows, notices []string) []Listener {
	out := make([]Listener, 0, len(hs))
	for _, h := range hs {
		l := Listener{Health: h, State: "ok", Shadows: []string{}, Notices: []string{}}
		prefix := h.Name + ": "
		for _, line := range shadows {
			if strings.HasPrefix(line, prefix) && (h.Network == "udp") == strings.Contains(line, "/udp") {
				l.Shadows = append(l.Shadows, line)
			}
		}
		for _, line := range notices {
			if strings.HasPrefix(line, prefix) && strings.Contains(line, "/"+h.Network+" ") {
				l.Notices = append(l.Notices, line)
			}
		}
		for _, p := range h.Probes {
			if !p.OK {
				l.State = "self-probe failed"
			}
		}
		if len(l.Shadows) > 0 {
			l.State = "shadowed"
		}
		out = append(out, l)
	}
	return out
}
