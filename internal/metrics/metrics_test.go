package metrics

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/berthmedia/berth/internal/ports"
)

// scrape GETs /metrics from h as from remote and parses the text format.
func scrape(t *testing.T, h http.Handler, remote string, header http.Header) map[string]*dto.MetricFamily {
	t.Helper()
	rec := get(h, "/metrics", remote, header)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

func get(h http.Handler, target, remote string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", target, nil)
	req.Header.Set("Accept", "text/plain")
	for k, v := range header {
		req.Header[k] = v
	}
	if remote != "" {
		req.RemoteAddr = remote
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// series lists a family's samples as "label=value,...": value, labels sorted.

func series(fams map[string]*dto.MetricFamily, name string) map[string]float64 {
	out := map[string]float64{}
	f := fams[name]
	if f == nil {
		return nil
	}
	for _, m := range f.Metric {
		var ls []string
		for _, l := range m.Label {
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
		sort.Strings(ls)
		var v float64
		switch {
		case m.Counter != nil:
			v = m.Counter.GetValue()
		case m.Gauge != nil:
			v = m.Gauge.GetValue()
		case m.Histogram != nil:
			v = float64(m.Histogram.GetSampleCount())
		}
		out[strings.Join(ls, ",")] = v
	}
	return out
}

func fakeSources() Sources {
	return Sources{
		Version: "1.2.3",
		Hub: func() HubSnapshot {
			return HubSnapshot{
				Streams: map[string]int{"rtsp": 1}, Readers: map[string]int{"rtsp": 2, "http-flv": 1},
				BytesIn:   map[string]uint64{"rtsp": 1000, "rtmp": 10},
				BytesOut:  map[string]uint64{"rtsp": 2000, "http-flv": 900, "rtmp": 5},
				Published: 2, Ended: 1, PublishRefused: 3, NotFound: 4, Skips: 5, Drops: 6,
			}
		},
		Accepted: func() map[string]uint64 { return map[string]uint64{"rtsp": 7, "http": 8} },
		Refusals: func() map[string]uint64 { return map[string]uint64{"publish/credentials": 9, "play/hook": 10} },
		Listeners: func() ports.State {
			return ports.State{
				Sockets: []ports.SocketState{{Name: "rtsp", Network: "tcp", Family: "ipv4", Addr: "0.0.0.0:8554"},
					{Name: "rtsp", Network: "tcp", Family: "ipv6", Addr: "[::]:8554"}, {Name: "rtp_proxy", Network: "udp", Family: "ipv4", Addr: "0.0.0.0:10000"}},
				Probes: []ports.ProbeState{{Name: "rtsp", Addr: "127.0.0.1:8554", Served: true, OK: true},
					{Name: "rtsp", Addr: "[::1]:8554", Served: true, Problem: "rtsp: self-probe of [::1]:8554 reached ..."}},
				Shadows: []ports.Shadow{{Name: "rtsp", Network: "tcp", Addr: "[::1]:8554"}},
			}
		},
	}
}

// Every source shows up under its documented name and labels, with the
// value the source gave; protocols seen before keep a 0 series.
func TestCollectorReportsEverySource(t *testing.T) {
	m := New(fakeSources())
	m.ObserveHook("on_publish", "ok", 20*time.Millisecond)
	m.ObserveHook("on_publish", "ok", 30*time.Millisecond)
	m.ObserveHook("on_play", "timeout", 10*time.Second)
	fams := scrape(t, m.Handler(), "", nil)

	want := map[string]map[string]float64{
		"berth_build_info":                 {"version=1.2.3": 1},
		"berth_streams":                    {"protocol=rtsp": 1, "protocol=rtmp": 0},
		"berth_readers":                    {"protocol=rtsp": 2, "protocol=http-flv": 1, "protocol=rtmp": 0},
		"berth_received_bytes_total":       {"protocol=rtsp": 1000, "protocol=rtmp": 10},
		"berth_sent_bytes_total":           {"protocol=rtsp": 2000, "protocol=http-flv": 900, "protocol=rtmp": 5},
		"berth_streams_published_total":    {"": 2},
		"berth_streams_ended_total":        {"": 1},
		"berth_reader_skips_total":         {"": 5},
		"berth_reader_drops_total":         {"": 6},
		"berth_connections_accepted_total": {"listener=rtsp": 7, "listener=http": 8},
		"berth_refused_total": {"action=publish,reason=busy": 3, "action=play,reason=not_found": 4,
			"action=publish,reason=credentials": 9, "action=play,reason=hook": 10},
		"berth_listener_info": {"address=0.0.0.0:8554,family=ipv4,listener=rtsp,network=tcp": 1,
			"address=[::]:8554,family=ipv6,listener=rtsp,network=tcp": 1, "address=0.0.0.0:10000,family=ipv4,listener=rtp_proxy,network=udp": 1},
		"berth_listener_self_probe_ok": {"address=127.0.0.1:8554,listener=rtsp": 1, "address=[::1]:8554,listener=rtsp": 0},
		"berth_listener_shadows":       {"listener=rtsp,network=tcp": 1, "listener=rtp_proxy,network=udp": 0},
		"berth_hook_duration_seconds":  {"hook=on_publish,result=ok": 2, "hook=on_play,result=timeout": 1},
	}
	check(t, fams, want)
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_start_time_seconds"} {
		if fams[name] == nil && (name != "process_start_time_seconds" || processMetricsExist()) {
			t.Errorf("%s missing: Go runtime and process collectors", name)
		}
	}
	if got := fams["berth_received_bytes_total"].GetType(); got != dto.MetricType_COUNTER {
		t.Errorf("berth_received_bytes_total is a %v, want a counter", got)
	}
}

// processMetricsExist: the process collector reads /proc, which only some OSes have.
func processMetricsExist() bool { return runtime.GOOS == "linux" }

// Nil sources leave their metrics out instead of failing the scrape; no
// shadow scan means no shadow series (0 would claim there are none).
func TestCollectorWithoutSources(t *testing.T) {
	m := New(Sources{Listeners: func() ports.State {
		return ports.State{Sockets: []ports.SocketState{{Name: "http", Network: "tcp", Family: "ipv4", Addr: "127.0.0.1:80"}}}
	}})
	fams := scrape(t, m.Handler(), "", nil)
	for _, name := range []string{"berth_streams", "berth_connections_accepted_total", "berth_refused_total", "berth_listener_shadows", "berth_listener_self_probe_ok"} {
		if fams[name] != nil {
			t.Errorf("%s present without its source: %v", name, series(fams, name))
		}
	}
	if len(series(fams, "berth_listener_info")) != 1 {
		t.Errorf("berth_listener_info = %v", series(fams, "berth_listener_info"))
	}
}

// Access: off answers 404; allow_ip refuses other addresses with 403; a
// secret is accepted as a bearer token, a basic-auth password or ?secret=,
// and anything else is 401 with a challenge.
func TestAccess(t *testing.T) {
	m := New(Sources{})
	h := m.Handler()
	bearer := http.Header{"Authorization": {"Bearer s3"}}
	basic := func(user, pass string) http.Header {
		r := httptest.NewRequest("GET", "/", nil)
		r.SetBasicAuth(user, pass)
		return r.Header
	}
	cases := []struct {
		name   string
		access Access
		target string
		remote string
		header http.Header
		code   int
	}{
		{"open by default", Access{Enable: true}, "/metrics", "203.0.113.9:4000", nil, 200},
		{"off", Access{}, "/metrics", "127.0.0.1:4000", nil, 404},
		{"allow list hit", Access{Enable: true, Allow: prefixes("10.0.0.0/8", "127.0.0.1/32")}, "/metrics", "10.2.3.4:1", nil, 200},
		{"allow list hit, v4-mapped", Access{Enable: true, Allow: prefixes("127.0.0.1/32")}, "/metrics", "[::ffff:127.0.0.1]:1", nil, 200},
		{"allow list miss", Access{Enable: true, Allow: prefixes("10.0.0.0/8")}, "/metrics", "192.0.2.1:1", nil, 403},
		{"secret missing", Access{Enable: true, Secret: "s3"}, "/metrics", "", nil, 401},
		{"secret wrong", Access{Enable: true, Secret: "s3"}, "/metrics?secret=no", "", nil, 401},
		{"secret query", Access{Enable: true, Secret: "s3"}, "/metrics?secret=s3", "", nil, 200},
		{"secret bearer", Access{Enable: true, Secret: "s3"}, "/metrics", "", bearer, 200},
		{"secret basic", Access{Enable: true, Secret: "s3"}, "/metrics", "", basic("prometheus", "s3"), 200},
		{"secret basic wrong", Access{Enable: true, Secret: "s3"}, "/metrics", "", basic("s3", "x"), 401},
		{"allow list before secret", Access{Enable: true, Secret: "s3", Allow: prefixes("10.0.0.0/8")}, "/metrics?secret=s3", "192.0.2.1:1", nil, 403},
	}
	for _, tc := range cases {
		m.SetAccess(tc.access)
		rec := get(h, tc.target, tc.remote, tc.header)
		if rec.Code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, rec.Code, rec.Body, tc.code)
		}
		if tc.code == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: no Bearer challenge", tc.name)
		}
		if tc.code == 403 && !strings.Contains(rec.Body.String(), "[metrics] allow_ip") {
			t.Errorf("%s: the refusal does not name the key: %s", tc.name, rec.Body)
		}
	}
}

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}
