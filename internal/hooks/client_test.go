package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/testutil"
)

// hookServer records every hook call and answers with reply(hook).
type hookServer struct {
	*httptest.Server
	mu    sync.Mutex
	calls []call
	reply func(hook string, n int) (status int, body string)
}

type call struct {
	hook string
	body map[string]any
	ct   string
}

func newHookServer(t *testing.T, reply func(hook string, n int) (int, string)) *hookServer {
	hs := &hookServer{reply: reply}
	hs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hook := strings.TrimPrefix(r.URL.Path, "/index/hook/")
		var body map[string]any
		data, _ := io.ReadAll(r.Body)
		json.Unmarshal(data, &body)
		hs.mu.Lock()
		hs.calls = append(hs.calls, call{hook: hook, body: body, ct: r.Header.Get("Content-Type")})
		n := 0
		for _, c := range hs.calls {
			if c.hook == hook {
				n++
			}
		}
		hs.mu.Unlock()
		status, out := 200, `{"code":0}`
		if hs.reply != nil {
			status, out = hs.reply(hook, n)
		}
		w.WriteHeader(status)
		io.WriteString(w, out)
	}))
	t.Cleanup(hs.Close)
	return hs
}

func (hs *hookServer) of(hook string) []call {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	var out []call
	for _, c := range hs.calls {
		if c.hook == hook {
			out = append(out, c)
		}
	}
	return out
}

func testConfig(base string, hooks ...string) *config.Config {
	cfg := config.Default()
	cfg.General.MediaServerID = "berth-test"
	cfg.Hook.Enable = true
	cfg.Hook.TimeoutSec = 1
	cfg.Hook.RetryDelay = 0
	ini := "[hook]\n"
	for _, h := range hooks {
		ini += h + "=" + base + "/index/hook/" + h + "\n"
	}
	if err := cfg.Parse(strings.NewReader(ini), "test.ini"); err != nil {
		panic(err)
	}
	return cfg
}

func newClient(t *testing.T, cfg *config.Config) (*Client, *testutil.LogBuffer) {
	logs := &testutil.LogBuffer{}
	c := New(cfg, logging.New(logs, slog.LevelDebug))
	t.Cleanup(c.Close)
	return c, logs
}

func TestOnPublishBodyAndOptions(t *testing.T) {
	hs := newHookServer(t, func(string, int) (int, string) { return 200, `{"code":0,"enable_mp4":true,"auto_close":"1"}` })
	c, _ := newClient(t, testConfig(hs.URL, "on_publish"))
	err := c.Authorize(context.Background(), auth.Request{Action: auth.Publish, Proto: "rtmp", App: "live", Stream: "s",
		Params: "token=1", Remote: "10.0.0.1:5000", ID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	calls := hs.of("on_publish")
	if len(calls) != 1 {
		t.Fatalf("%d calls", len(calls))
	}
	b := calls[0].body
	want := map[string]any{"mediaServerId": "berth-test", "app": "live", "stream": "s", "vhost": DefaultVhost,
		"schema": "rtmp", "params": "token=1", "ip": "10.0.0.1", "port": 5000.0, "id": "c1", "originType": 1.0,
		"originTypeStr": "rtmp_push", "hook_index": 0.0}
	for k, v := range want {
		if b[k] != v {
			t.Errorf("body[%s] = %v, want %v (body %v)", k, b[k], v, b)
		}
	}
	if calls[0].ct != "application/json" {
		t.Errorf("content type %q", calls[0].ct)
	}
	v, ok := c.streams.Load(pendingKey("live", "s"))
	if o, _ := v.(PublishOptions); !ok || o.EnableMP4 == nil || !*o.EnableMP4 || o.AutoClose == nil || !*o.AutoClose {
		t.Errorf("options not kept: %+v", v)
	}
}

func TestDecisionHooks(t *testing.T) {
	play := auth.Request{Action: auth.Play, Proto: "http-flv", App: "live", Stream: "s", Remote: "1.2.3.4:9"}
	t.Run("unconfigured allows", func(t *testing.T) {
		c, _ := newClient(t, testConfig("http://127.0.0.1:1"))
		if err := c.Authorize(context.Background(), play); err != nil {
			t.Error(err)
		}
	})
	t.Run("disabled allows", func(t *testing.T) {
		cfg := testConfig("http://127.0.0.1:1", "on_play")
		cfg.Hook.Enable = false
		c, _ := newClient(t, cfg)
		if err := c.Authorize(context.Background(), play); err != nil {
			t.Error(err)
		}
	})
	t.Run("code refuses with msg", func(t *testing.T) {
		hs := newHookServer(t, func(string, int) (int, string) { return 200, `{"code":-1,"msg":"banned"}` })
		c, _ := newClient(t, testConfig(hs.URL, "on_play"))
		var observed []string
		c.Observe = func(hook, result string, _ time.Duration) { observed = append(observed, hook+"/"+result) }
		err := c.Authorize(context.Background(), play)
		var refused *RefusedError
		if !errors.As(err, &refused) || !strings.Contains(err.Error(), "banned") {
			t.Fatalf("err %v, want a refusal naming banned", err)
		}
		if len(hs.of("on_play")) != 1 || hs.of("on_play")[0].body["schema"] != "rtmp" || hs.of("on_play")[0].body["protocol"] != "http-flv" {
			t.Errorf("calls %+v", hs.of("on_play"))
		}
		if strings.Join(observed, ",") != "on_play/refused" {
			t.Errorf("observed %v", observed)
		}
	})
	t.Run("dead server refuses and is logged", func(t *testing.T) {
		hs := newHookServer(t, nil)
		url := hs.URL
		hs.Close()
		c, logs := newClient(t, testConfig(url, "on_play"))
		if err := c.Authorize(context.Background(), play); err == nil || !strings.Contains(err.Error(), "on_play") {
			t.Fatalf("err %v, want a refusal naming on_play", err)
		}
		if logs.Line("level=WARN", "hook=on_play", "url="+url) == "" {
			t.Errorf("no warning naming the hook and URL:\n%s", logs)
		}
	})
	t.Run("silent server times out", func(t *testing.T) {
		release := make(chan struct{})
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
		defer hs.Close()
		defer close(release)
		cfg := testConfig(hs.URL, "on_play")
		cfg.Hook.TimeoutSec = 0.2
		c, _ := newClient(t, cfg)
		var result string
		c.Observe = func(_, r string, _ time.Duration) { result = r }
		if err := c.Authorize(context.Background(), play); err == nil || !strings.Contains(err.Error(), "timeoutSec") {
			t.Fatalf("err %v, want a timeout", err)
		}
		if result != "timeout" {
			t.Errorf("observed %q, want timeout", result)
		}
	})
}

func TestNotifyRetriesAFailureButNotARefusal(t *testing.T) {
	hs := newHookServer(t, func(hook string, n int) (int, string) {
		if hook == "on_server_started" && n == 1 {
			return 500, ""
		}
		if hook == "on_flow_report" {
			return 200, `{"code":1}`
		}
		return 200, `{"code":0}`
	})
	cfg := testConfig(hs.URL, "on_server_started", "on_flow_report")
	cfg.Hook.Retry = 2
	c, _ := newClient(t, cfg)
	c.ServerStarted()
	c.Notify("on_flow_report", map[string]any{}, nil)
	testutil.WaitFor(t, 5*time.Second, "on_server_started to be retried", func() bool { return len(hs.of("on_server_started")) == 2 })
	body := hs.of("on_server_started")[1].body
	if body["hook.enable"] != "1" || body["general.mediaServerId"] != "berth-test" || body["rtsp.port"] != "8554" {
		t.Errorf("on_server_started body lacks the config: %v", body)
	}
	testutil.WaitFor(t, 5*time.Second, "on_flow_report", func() bool { return len(hs.of("on_flow_report")) == 1 })
	c.Notify("on_server_started", map[string]any{}, nil) // behind any retry of on_flow_report
	testutil.WaitFor(t, 5*time.Second, "a third on_server_started", func() bool { return len(hs.of("on_server_started")) == 3 })
	if n := len(hs.of("on_flow_report")); n != 1 {
		t.Errorf("a refusal was retried: %d calls", n)
	}
}

func TestAFullQueueDropsWithAWarning(t *testing.T) {
	release := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hs.Close()
	defer close(release)
	cfg := testConfig(hs.URL, "on_flow_report")
	cfg.Hook.Retry = 0
	c, logs := newClient(t, cfg)
	for range queueSize + workers + 10 {
		c.Notify("on_flow_report", map[string]any{}, nil)
	}
	if c.Dropped() == 0 {
		t.Fatal("nothing dropped")
	}
	if logs.Line("level=WARN", "queue is full", "hook=on_flow_report") == "" {
		t.Errorf("no warning:\n%s", logs)
	}
}

func TestRTSPAuth(t *testing.T) {
	hs := newHookServer(t, func(hook string, _ int) (int, string) {
		if hook == "on_rtsp_realm" {
			return 200, `{"code":0,"realm":"zlm"}`
		}
		return 200, `{"code":0,"encrypted":false,"passwd":"pw"}`
	})
	c, _ := newClient(t, testConfig(hs.URL, "on_rtsp_realm", "on_rtsp_auth"))
	a := RTSPAuth{C: c}
	r := auth.Request{Action: auth.Play, Proto: "rtsp", App: "live", Stream: "s", Remote: "127.0.0.1:1"}
	realm, err := a.Realm(context.Background(), r)
	if err != nil || realm != "zlm" {
		t.Fatalf("realm %q, %v", realm, err)
	}
	pass, enc, err := a.Password(context.Background(), r, realm, "bob", true)
	if err != nil || pass != "pw" || enc {
		t.Fatalf("password %q %v %v", pass, enc, err)
	}
	b := hs.of("on_rtsp_auth")[0].body
	if b["user_name"] != "bob" || b["must_no_encrypt"] != true || b["realm"] != "zlm" || b["stream"] != "s" {
		t.Errorf("on_rtsp_auth body %v", b)
	}
}

func TestRTPServerTimeoutBody(t *testing.T) {
	hs := newHookServer(t, nil)
	c, _ := newClient(t, testConfig(hs.URL, "on_rtp_server_timeout"))
	c.RTPServerTimeout(30002, "cam1", 1, 1234)
	testutil.WaitFor(t, 5*time.Second, "on_rtp_server_timeout", func() bool { return len(hs.of("on_rtp_server_timeout")) == 1 })
	b := hs.of("on_rtp_server_timeout")[0].body
	if b["local_port"] != 30002.0 || b["stream_id"] != "cam1" || b["tcp_mode"] != 1.0 || b["ssrc"] != 1234.0 || b["re_use_port"] != false {
		t.Errorf("body %v", b)
	}
}
