package api

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/sessions"
)

type fakeConfig struct {
	kv      map[string]string
	set     map[string]string
	restart int
}

func (f *fakeConfig) ServerConfig() map[string]string { return f.kv }
func (f *fakeConfig) SetServerConfig(kv map[string]string) (int, error) {
	if kv["rtsp.port"] == "bad" {
		return 0, errors.New("rtsp.port=bad is not a port number")
	}
	f.set = kv
	return len(kv), nil
}
func (f *fakeConfig) RestartServer() error { f.restart++; return nil }

// newCallEnv is newEnv with a configurer, a session registry and one live
// stream, live/cam (H.264 and G.711 over RTSP).
func newCallEnv(t *testing.T) (*env, *fakeConfig, *hub.Publisher) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	h := hub.New(hub.Options{Log: log, Converters: codec.Converters(log)})
	cfg := &fakeConfig{kv: map[string]string{"rtsp.port": "554", "api.secret": secret}}
	mux := http.NewServeMux()
	mux.Handle(Prefix, &Handler{Hub: h, Secret: secret, Log: log, Config: cfg, Sessions: &sessions.Registry{}, Version: "9.9.9"})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.Close(); h.Close() })
	pub, err := h.Publish("live/cam", hub.Origin{Proto: "rtsp", Remote: "10.0.0.9:5000", ID: "abc", Params: "token=1"}, hub.KindAU,
		[]*hub.Track{codec.H264Track(sps320, []byte{0x68, 0xce, 0x0f, 0xc8}), codec.G711Track(true, 8000, 1)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	pub.Write(&hub.Frame{Track: 0, Key: true, AU: [][]byte{{0x65, 1, 2, 3}}})
	return &env{h: h, srv: srv}, cfg, pub
}

var stream = []string{"schema", "rtsp", "vhost", DefaultVhost, "app", "live", "stream", "cam"}

func kv(pairs ...[]string) []string {
	var out []string
	for _, p := range pairs {
		out = append(out, p...)
	}
	return out
}

// Every call answers {"code":...} with ZLMediaKit's fields for it.
func TestEveryCallAnswersWithZLMediaKitsShape(t *testing.T) {
	e, _, _ := newCallEnv(t)
	for _, tc := range []struct {
		call string
		args []string
		code int
		keys []string // top-level fields besides code
	}{
		{"getApiList", nil, 0, []string{"data"}},
		{"version", nil, 0, []string{"data"}},
		{"getServerConfig", nil, 0, []string{"data"}},
		{"setServerConfig", []string{"rtsp.port", "8554"}, 0, []string{"changed"}},
		{"setServerConfig", []string{"rtsp.port", "bad"}, CodeOtherFailed, []string{"msg"}},
		{"restartServer", nil, 0, []string{"msg"}},
		{"getStatistic", nil, 0, []string{"data"}},
		{"getThreadsLoad", nil, 0, []string{"data"}},
		{"getWorkThreadsLoad", nil, 0, []string{"data"}},
		{"getMediaList", nil, 0, []string{"data"}},
		{"getMediaInfo", stream, 0, []string{"online", "schema", "app", "stream", "vhost", "tracks", "originSock", "bytesSpeed", "aliveSecond", "readerCount", "totalReaderCount", "originType", "originTypeStr", "originUrl"}},
		{"getMediaInfo", kv(stream[:6], []string{"stream", "nope"}), CodeNotFound, []string{"msg"}},
		{"getMediaInfo", []string{"app", "live"}, CodeInvalidArgs, []string{"msg"}},
		{"isMediaOnline", stream, 0, []string{"online"}},
		{"getMediaPlayerList", stream, 0, []string{"data"}},
		{"getMediaPlayerList", kv([]string{"schema", "hls"}, stream[2:]), CodeNotFound, []string{"msg"}},
		{"getAllSession", nil, 0, []string{"data"}},
		{"getAllSession", []string{"local_port", "x"}, CodeInvalidArgs, []string{"msg"}},
		{"kick_session", []string{"id", "42"}, CodeOtherFailed, []string{"msg"}},
		{"kick_session", nil, CodeInvalidArgs, []string{"msg"}},
		{"kick_sessions", nil, 0, []string{"count_hit"}},
		{"close_streams", []string{"app", "none"}, 0, []string{"count_hit", "count_closed"}},
		{"close_stream", kv(stream[:6], []string{"stream", "nope"}), CodeNotFound, []string{"msg"}},
	} {
		t.Run(tc.call+"/"+strings.Join(tc.args, ","), func(t *testing.T) {
			r := e.callRaw(t, tc.call, withSecret(tc.args...))
			if code := int(r["code"].(float64)); code != tc.code {
				t.Fatalf("code %d, want %d: %v", code, tc.code, r)
			}
			for _, k := range tc.keys {
				if _, ok := r[k]; !ok {
					t.Errorf("no %q in %v", k, r)
				}
			}
		})
	}
}

func TestGetApiListListsEveryCallOnce(t *testing.T) {
	e, _, _ := newCallEnv(t)
	r := e.callRaw(t, "getApiList", withSecret())
	got := map[string]bool{}
	for _, p := range r["data"].([]any) {
		got[p.(string)] = true
	}
	for name := range endpoints {
		if !got[Prefix+name] {
			t.Errorf("getApiList lacks %s", Prefix+name)
		}
	}
	if len(got) != len(endpoints) {
		t.Errorf("getApiList has %d paths, there are %d calls", len(got), len(endpoints))
	}
}

func TestVersionHasZLMediaKitsFieldsAndBerths(t *testing.T) {
	e, _, _ := newCallEnv(t)
	d := e.callRaw(t, "version", withSecret())["data"].(map[string]any)
	for _, k := range []string{"buildTime", "branchName", "commitHash"} {
		if _, ok := d[k].(string); !ok {
			t.Errorf("version data has no string %s: %v", k, d)
		}
	}
	if d["version"] != "9.9.9" || d["server"] != "berth" {
		t.Errorf("version data %v, want Berth's version 9.9.9", d)
	}
}

func TestServerConfigGoesThroughTheConfigurer(t *testing.T) {
	e, cfg, _ := newCallEnv(t)
	r := e.callRaw(t, "getServerConfig", withSecret())
	data := r["data"].([]any)
	if len(data) != 1 || data[0].(map[string]any)["rtsp.port"] != "554" {
		t.Fatalf("getServerConfig data %v, want one object with rtsp.port", data)
	}
	r = e.callRaw(t, "setServerConfig", withSecret("rtsp.port", "8554", "general.mediaServerId", "x"))
	if r["changed"] != 2.0 || cfg.set["rtsp.port"] != "8554" || cfg.set["secret"] != "" {
		t.Fatalf("setServerConfig %v, configurer got %v (the secret is not a key)", r, cfg.set)
	}
	if e.callRaw(t, "restartServer", withSecret()); cfg.restart != 1 {
		t.Fatal("restartServer did not reach the configurer")
	}
}

func TestWithoutAConfigurerConfigCallsSaySo(t *testing.T) {
	e := newEnv(t, config.PortRange{})
	for _, call := range []string{"getServerConfig", "setServerConfig", "restartServer"} {
		r := e.call(t, call, withSecret())
		if r.Code != CodeOtherFailed || !strings.Contains(r.Msg, "configurer") {
			t.Errorf("%s without a configurer: %+v", call, r)
		}
	}
}

// A stream is listed once per schema; each schema's readerCount counts its
// own players (HTTP-FLV and WS-FLV under rtmp), totalReaderCount all.
func TestReaderCountIsPerSchema(t *testing.T) {
	e, _, pub := newCallEnv(t)
	for _, proto := range []string{"rtsp", "http-flv", "ws-flv", "rtmp"} {
		rd, err := pub.Stream().Subscribe(hub.KindAU, hub.Origin{Proto: proto, Remote: "10.0.0.1:1"})
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
	}
	r := e.call(t, "getMediaList", withSecret())
	if len(r.Data) != 2 {
		t.Fatalf("%d entries, want 2 (rtsp, rtmp)", len(r.Data))
	}
	want := map[string]float64{"rtsp": 1, "rtmp": 3}
	for _, d := range r.Data {
		schema := d["schema"].(string)
		if d["readerCount"] != want[schema] || d["totalReaderCount"] != 4.0 {
			t.Errorf("%s: readerCount %v totalReaderCount %v, want %v and 4", schema, d["readerCount"], d["totalReaderCount"], want[schema])
		}
	}
	list := e.callRaw(t, "getMediaPlayerList", withSecret(kv([]string{"schema", "rtmp"}, stream[2:])...))["data"].([]any)
	if len(list) != 3 {
		t.Fatalf("getMediaPlayerList rtmp: %v, want the 3 FLV and RTMP players", list)
	}
	types := map[string]int{}
	for _, p := range list {
		types[p.(map[string]any)["typeid"].(string)]++
	}
	if types["mediakit::HttpSession"] != 2 || types["mediakit::RtmpSession"] != 1 {
		t.Errorf("typeids %v", types)
	}
}

// Without force, a stream that has players stays (ZLMediaKit's close(false));
// with force it ends and its path is free.
func TestCloseStreamWithoutForceLeavesAStreamWithPlayers(t *testing.T) {
	e, _, pub := newCallEnv(t)
	rd, err := pub.Stream().Subscribe(hub.KindAU, hub.Origin{Proto: "rtsp", Remote: "10.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	r := e.callRaw(t, "close_stream", withSecret(stream...))
	if r["code"] != -1.0 || r["result"] != -1.0 || e.h.Get("live/cam") == nil {
		t.Fatalf("close_stream without force: %v; the stream must stay", r)
	}
	cs := e.callRaw(t, "close_streams", withSecret("app", "live"))
	if cs["count_hit"] != 2.0 || cs["count_closed"] != 0.0 {
		t.Fatalf("close_streams without force: %v, want 2 hits (rtsp, rtmp) and none closed", cs)
	}
	r = e.callRaw(t, "close_stream", withSecret(kv(stream, []string{"force", "1"})...))
	if r["code"] != 0.0 || r["result"] != 0.0 {
		t.Fatalf("close_stream force=1: %v", r)
	}
	select {
	case <-pub.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the publisher's Done did not close after close_stream")
	}
	if e.h.Get("live/cam") != nil {
		t.Fatal("live/cam still live after close_stream force=1")
	}
}

func TestCloseStreamsClosesOnlyWhatTheFiltersSelect(t *testing.T) {
	e, _, _ := newCallEnv(t)
	other, err := e.h.Publish("other/x", hub.Origin{Proto: "rtmp", Remote: "10.0.0.2:7"}, hub.KindAU,
		[]*hub.Track{codec.G711Track(true, 8000, 1)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	r := e.callRaw(t, "close_streams", withSecret("app", "live", "schema", "rtsp"))
	if r["count_hit"] != 1.0 || r["count_closed"] != 1.0 {
		t.Fatalf("close_streams app=live schema=rtsp: %v", r)
	}
	if e.h.Get("live/cam") != nil || e.h.Get("other/x") == nil {
		t.Fatal("close_streams app=live ended the wrong streams")
	}
}

func TestUnknownPathIsZLMediaKits404Page(t *testing.T) {
	e, _, _ := newCallEnv(t)
	res, err := http.Get(e.srv.URL + Prefix + "noSuchThing?secret=" + secret)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(body), "<title>404 Not Found</title>") || !strings.Contains(string(body), "Berth/9.9.9") {
		t.Fatalf("unknown path: %d %s %q", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	// Known names match whatever their case, as in ZLMediaKit.
	if r := e.call(t, "GETMEDIALIST", withSecret()); r.Code != 0 || len(r.Data) != 2 {
		t.Fatalf("GETMEDIALIST: %+v", r)
	}
}

func TestThreadsLoadHasOneEntryPerGOMAXPROCS(t *testing.T) {
	e, _, _ := newCallEnv(t)
	data := e.callRaw(t, "getThreadsLoad", withSecret())["data"].([]any)
	if len(data) != runtime.GOMAXPROCS(0) {
		t.Fatalf("%d entries, GOMAXPROCS is %d", len(data), runtime.GOMAXPROCS(0))
	}
	for _, d := range data {
		m := d.(map[string]any)
		load, lok := m["load"].(float64)
		_, dok := m["delay"].(float64)
		if !lok || !dok || load < 0 || load > 100 {
			t.Fatalf("entry %v, want load 0-100 and delay", m)
		}
	}
}

func TestBytesSpeedIsTheRateSinceTheOldestSample(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	h := hub.New(hub.Options{Log: log})
	defer h.Close()
	pub, err := h.Publish("a/b", hub.Origin{Proto: "rtmp"}, hub.KindAU, []*hub.Track{codec.G711Track(true, 8000, 1)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	s := pub.Stream()
	now := time.Now()
	var sm sampler
	// No samples yet: the average since publish.
	s.BytesIn.Store(9000)
	if got, want := sm.bytesSpeed(s, s.Since.Add(3*time.Second)), uint64(3000); got != want {
		t.Errorf("without samples: %d B/s, want the average since publish %d", got, want)
	}
	// 1,000 bytes 4 s ago, 5,000 now: 1,000 B/s, whatever the life average.
	ring := &speedRing{}
	ring.push(speedSample{now.Add(-4 * time.Second), 1000})
	ring.push(speedSample{now.Add(-time.Second), 4000})
	sm.streams = map[*hub.Stream]*speedRing{s: ring}
	s.BytesIn.Store(5000)
	if got := sm.bytesSpeed(s, now); got != 1000 {
		t.Errorf("bytesSpeed %d B/s, want 1000 over the last 4 s", got)
	}
	// The ring keeps the last speedSamples: the oldest is the one after those dropped.
	for i := range speedSamples + 2 {
		ring.push(speedSample{now.Add(time.Duration(i) * time.Second), uint64(i)})
	}
	if o := ring.oldest(); o.bytes != 2 {
		t.Errorf("oldest after %d pushes: %+v, want the third", speedSamples+2, o)
	}
}

func TestMeanLatencyCountsOnlyTheNewWaits(t *testing.T) {
	h := &metrics.Float64Histogram{Buckets: []float64{0, 0.001, 0.003, 0.005}, Counts: []uint64{10, 2, 2}}
	for _, tc := range []struct {
		prev []uint64
		want int
	}{
		{nil, 1},                // (10*0.5 + 2*2 + 2*4)/14 ms = 1.2 ms
		{[]uint64{10, 2, 0}, 4}, // only the two in the 3-5 ms bucket are new
		{[]uint64{10, 2, 2}, 0}, // nothing new
		{[]uint64{10, 0, 0}, 3}, // (2*2 + 2*4)/4 ms = 3 ms
	} {
		if got := meanLatencyMS(h, tc.prev); got != tc.want {
			t.Errorf("prev %v: %d ms, want %d", tc.prev, got, tc.want)
		}
	}
	if got := cpuPercent(time.Duration(runtime.GOMAXPROCS(0))*time.Second, 2*time.Second); got != 50 {
		t.Errorf("cpuPercent of half the CPUs: %d", got)
	}
}

// The vhost of a lookup names the one Berth has, whatever its value (as
// ZLMediaKit with enableVhost=0); a filter must be __defaultVhost__.
func TestAnyVhostFindsButOnlyTheDefaultFilters(t *testing.T) {
	e, _, _ := newCallEnv(t)
	r := e.callRaw(t, "isMediaOnline", withSecret("schema", "rtmp", "vhost", "example.com", "app", "live", "stream", "cam"))
	if r["online"] != true {
		t.Errorf("isMediaOnline vhost=example.com: %v", r)
	}
	if l := e.call(t, "getMediaList", withSecret("vhost", "example.com")); len(l.Data) != 0 {
		t.Errorf("getMediaList vhost=example.com: %d entries", len(l.Data))
	}
	q := url.Values{"secret": {secret}, "schema": {"rtsp"}, "vhost": {DefaultVhost}, "app": {"live"}, "stream": {"nope"}}
	if r := e.callRaw(t, "isMediaOnline", q); r["online"] != false || r["code"] != 0.0 {
		t.Errorf("isMediaOnline of nothing: %v", r)
	}
}

// A query parameter wins over the body's of the same name, as in
// ZLMediaKit's getAllArgs.
func TestTheQueryWinsOverTheBody(t *testing.T) {
	e, _, _ := newCallEnv(t)
	res, err := http.Post(e.srv.URL+Prefix+"isMediaOnline?secret="+secret+"&stream=cam", "application/json",
		strings.NewReader(`{"secret":"wrong","schema":"rtsp","vhost":"`+DefaultVhost+`","app":"live","stream":"nope"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var r map[string]any
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if r["code"] != 0.0 || r["online"] != true {
		t.Fatalf("reply %v: the query's secret and stream must win over the body's", r)
	}
}

func TestSetSecretAppliesToTheNextCall(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	h := &Handler{Secret: "old", Log: log}
	srv := httptest.NewServer(h)
	defer srv.Close()
	e := &env{srv: srv}
	call := func(secret string) int {
		return int(e.callRaw(t, "getStatistic", url.Values{"secret": {secret}})["code"].(float64))
	}
	if call("old") != 0 {
		t.Fatal("the configured secret is refused")
	}
	h.SetSecret("new")
	if call("old") != CodeAuthFailed || call("new") != 0 {
		t.Fatal("after SetSecret the old secret still works or the new one does not")
	}
}
