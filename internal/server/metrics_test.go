package server_test

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"os/exec"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/rtspclient"
	"github.com/berthmedia/berth/internal/server"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// TestMetricsMatchAKnownPushAndPlay: ffmpeg pushes one stream over RTSP,
// one RTSP and one HTTP-FLV player read it, one player asks for a missing
// stream; /metrics, parsed by Prometheus's own text parser, counts exactly
// that, and names every bound listener with a passing self-probe.
func TestMetricsMatchAKnownPushAndPlay(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	url := "rtsp://" + srv.Addr("rtsp") + "/live/m"
	pub := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-re", "-stream_loop", "-1",
		"-i", testmedia.File(t, testmedia.H264AAC), "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", url)
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Process.Kill(); pub.Wait() })
	testutil.WaitFor(t, 10*time.Second, "the stream to be published", func() bool {
		st := srv.Hub.Get("live/m")
		return st != nil && st.FramesIn.Load() > 20
	})
	st := srv.Hub.Get("live/m")

	// An RTSP player, over Berth's own client.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rc, err := rtspclient.Dial(ctx, url, rtspclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	desc, _, err := rc.Describe()
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.SetupAll(desc); err != nil {
		t.Fatal(err)
	}
	var rtspPackets atomic.Int64
	rc.OnPacket = func(int, []byte) { rtspPackets.Add(1) }
	if _, err := rc.Play(); err != nil {
		t.Fatal(err)
	}

	// An HTTP-FLV player that keeps reading until the test ends.
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+srv.Addr("http")+"/live/m.live.flv", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var flvBytes atomic.Int64
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := res.Body.Read(buf)
			flvBytes.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()

	// A player of a stream that is not there.
	if res, err := http.Get("http://" + srv.Addr("http") + "/live/none.live.flv"); err != nil || res.StatusCode != http.StatusNotFound {
		t.Fatalf("play of a missing stream: %v %v, want 404", res, err)
	} else {
		res.Body.Close()
	}

	testutil.WaitFor(t, 10*time.Second, "both players to receive media", func() bool {
		return st.Readers() == 2 && rtspPackets.Load() > 10 && flvBytes.Load() > 1000
	})

	before := st.BytesIn.Load()
	fams := scrapeMetrics(t, "http://"+srv.Addr("http")+"/metrics")
	after := st.BytesIn.Load()

	exact := map[string]map[string]float64{
		"berth_streams":                 {"protocol=rtsp": 1},
		"berth_readers":                 {"protocol=rtsp": 1, "protocol=http-flv": 1},
		"berth_streams_published_total": {"": 1},
		"berth_streams_ended_total":     {"": 0},
		"berth_build_info":              {"version=" + server.Version: 1},
	}
	for name, want := range exact {
		if got := seriesOf(fams, name); !sameSeries(got, want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	// Two RTSP connections (ffmpeg's push, the player), none over RTMP: the
	// self-probe's connections at start are not clients.
	if acc := seriesOf(fams, "berth_connections_accepted_total"); acc["listener=rtsp"] != 2 || acc["listener=rtmp"] != 0 || acc["listener=http"] < 2 {
		t.Errorf("berth_connections_accepted_total = %v, want rtsp 2, rtmp 0, http >= 2 (the FLV players)", acc)
	}
	if got := seriesOf(fams, "berth_refused_total")["action=play,reason=not_found"]; got != 1 {
		t.Errorf(`berth_refused_total{action="play",reason="not_found"} = %v, want 1`, got)
	}
	// One stream: the RTSP bytes in are that stream's, counted between the two reads.
	if in := seriesOf(fams, "berth_received_bytes_total")["protocol=rtsp"]; in < float64(before) || in > float64(after) || in == 0 {
		t.Errorf("berth_received_bytes_total{protocol=rtsp} = %v, want within the stream's BytesIn %d..%d", in, before, after)
	}
	out := seriesOf(fams, "berth_sent_bytes_total")
	for _, p := range []string{"rtsp", "http-flv"} {
		if out["protocol="+p] <= 0 {
			t.Errorf("berth_sent_bytes_total{protocol=%s} = %v, want > 0 (all: %v)", p, out["protocol="+p], out)
		}
	}

	// Every bound listener: its socket, its self-probe (where it has one), no shadows.
	info := seriesOf(fams, "berth_listener_info")
	probes := seriesOf(fams, "berth_listener_self_probe_ok")
	shadows := seriesOf(fams, "berth_listener_shadows")
	if len(info) != 8 {
		t.Errorf("berth_listener_info has %d sockets, want 8 (rtsp, rtmp, http, rtp_proxy tcp and udp, srt, rtc udp and tcp): %v", len(info), info)
	}
	for _, l := range []struct{ name, network string }{{"rtsp", "tcp"}, {"rtmp", "tcp"}, {"http", "tcp"}, {"rtp_proxy", "tcp"}, {"rtp_proxy", "udp"}, {"srt", "udp"}, {"rtc", "udp"}, {"rtc", "tcp"}} {
		addr := srv.Addr(l.name) // 127.0.0.1:PORT: the tests listen on 127.0.0.1
		want := "address=" + addr + ",family=ipv4,listener=" + l.name + ",network=" + l.network
		if l.network == "udp" || l.name == "rtc" {
			// Ephemeral ports: the UDP side of rtp_proxy (and either side of rtc) has a port of its own, that Addr does not tell.
			want = findSeries(info, "address=127.0.0.1:", ",family=ipv4,listener="+l.name+",network="+l.network)
		}
		if info[want] != 1 {
			t.Errorf("berth_listener_info for %s/%s on %s missing; have %v", l.name, l.network, addr, info)
		}
		if v, ok := shadows["listener="+l.name+",network="+l.network]; ok && v != 0 {
			t.Errorf("berth_listener_shadows{%s/%s} = %v, want 0", l.name, l.network, v)
		}
		if l.name == "rtp_proxy" || l.name == "srt" || l.name == "rtc" {
			continue // the self-probe identifies RTSP, RTMP and HTTP
		}
		if v, ok := probes["address="+addr+",listener="+l.name]; !ok || v != 1 {
			t.Errorf("berth_listener_self_probe_ok{%s %s} = %v (present %v), want 1; have %v", l.name, addr, v, ok, probes)
		}
	}
	if fams["go_goroutines"] == nil {
		t.Error("go_goroutines missing: no Go runtime metrics")
	}
}

// TestMetricsAccessFromConfig: [metrics] enable=0 leaves /metrics
// unserved, allow_ip refuses other addresses, secret asks for itself.
func TestMetricsAccessFromConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mod    func(c *config.Config)
		target string
		code   int
	}{
		{"off", func(c *config.Config) { c.Metrics.Enable = false }, "/metrics", http.StatusNotFound},
		{"not in allow_ip", func(c *config.Config) { c.Metrics.AllowIP = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} }, "/metrics", http.StatusForbidden},
		{"in allow_ip", func(c *config.Config) { c.Metrics.AllowIP = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} }, "/metrics", http.StatusOK},
		{"no secret", func(c *config.Config) { c.Metrics.Secret = "m" }, "/metrics", http.StatusUnauthorized},
		{"secret", func(c *config.Config) { c.Metrics.Secret = "m" }, "/metrics?secret=m", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startWith(t, tc.mod)
			res, err := http.Get("http://" + srv.Addr("http") + tc.target)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.code {
				t.Errorf("GET %s: %d, want %d", tc.target, res.StatusCode, tc.code)
			}
		})
	}
}

// startWith starts a server on ephemeral ports with mod applied to the test config.
func startWith(t *testing.T, mod func(c *config.Config)) *server.Server {
	t.Helper()
	cfg := config.Default()
	cfg.General.ListenIP = "127.0.0.1"
	mod(cfg)
	srv, _ := startServer(t, cfg, logging.LevelTrace)
	return srv
}

func scrapeMetrics(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("GET %s: %s %s", url, res.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

// seriesOf maps a family's samples by their labels ("a=x,b=y", sorted) to values.
func seriesOf(fams map[string]*dto.MetricFamily, name string) map[string]float64 {
	out := map[string]float64{}
	f := fams[name]
	if f == nil {
		return out
	}
	for _, m := range f.Metric {
		var ls []string
		for _, l := range m.Label {
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
		sort.Strings(ls)
		v := m.GetGauge().GetValue() + m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
		out[strings.Join(ls, ",")] = v
	}
	return out
}

// findSeries returns the key of series that starts with prefix and ends with suffix, "" if none.
func findSeries(series map[string]float64, prefix, suffix string) string {
	for k := range series {
		if strings.HasPrefix(k, prefix) && strings.HasSuffix(k, suffix) {
			return k
		}
	}
	return ""
}

func sameSeries(got, want map[string]float64) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			return false
		}
	}
	return true
}
