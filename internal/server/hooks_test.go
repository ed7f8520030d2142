package server_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/server"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// hookRecorder is a web hook server: it records every call and answers
// with answer(hook, body), {"code":0} when that returns "".
type hookRecorder struct {
	url    string
	mu     sync.Mutex
	calls  []hookCall
	answer func(hook string, body map[string]any) string
}

type hookCall struct {
	Hook string
	Body map[string]any
}

func newHookRecorder(t *testing.T, answer func(hook string, body map[string]any) string) *hookRecorder {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hr := &hookRecorder{url: "http://" + l.Addr().String() + "/index/hook/", answer: answer}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hook := strings.TrimPrefix(r.URL.Path, "/index/hook/")
		var body map[string]any
		data, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(data, &body); err != nil {
			t.Errorf("%s: body is not JSON: %q", hook, data)
		}
		hr.mu.Lock()
		hr.calls = append(hr.calls, hookCall{hook, body})
		hr.mu.Unlock()
		out := ""
		if hr.answer != nil {
			out = hr.answer(hook, body)
		}
		if out == "" {
			out = `{"code":0,"msg":"success"}`
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, out)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return hr
}

// of returns the calls of hook whose body has every field of match.
func (hr *hookRecorder) of(hook string, match map[string]any) []map[string]any {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	var out []map[string]any
	for _, c := range hr.calls {
		if c.Hook != hook {
			continue
		}
		ok := true
		for k, v := range match {
			if c.Body[k] != v {
				ok = false
			}
		}
		if ok {
			out = append(out, c.Body)
		}
	}
	return out
}

// wait waits for a call of hook matching match and returns its body.
func (hr *hookRecorder) wait(t *testing.T, hook string, match map[string]any) map[string]any {
	t.Helper()
	var got []map[string]any
	testutil.WaitFor(t, 15*time.Second, fmt.Sprintf("%s with %v", hook, match), func() bool {
		got = hr.of(hook, match)
		return len(got) > 0
	})
	return got[0]
}

func (hr *hookRecorder) dump() string {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	var b strings.Builder
	for _, c := range hr.calls {
		if c.Hook == "on_server_keepalive" {
			continue
		}
		data, _ := json.Marshal(c.Body)
		fmt.Fprintf(&b, "%s %s\n", c.Hook, data)
	}
	return b.String()
}

var allHooks = []string{"on_publish", "on_play", "on_flow_report", "on_stream_changed", "on_stream_none_reader",
	"on_stream_not_found", "on_server_started", "on_server_exited", "on_server_keepalive", "on_rtp_server_timeout"}

// startHooked starts a server whose hooks (allHooks, and those named in
// extra) post to base.
func startHooked(t *testing.T, base string, tweak func(c *config.Config), extra ...string) (*server.Server, *testutil.LogBuffer) {
	t.Helper()
	cfg := config.Default()
	cfg.General.ListenIP = "127.0.0.1"
	cfg.General.MediaServerID = "berth-e2e"
	cfg.General.FlowThreshold = 0
	cfg.General.StreamNoneReaderDelayMS = 60000
	cfg.General.MaxStreamWaitMS = 10000
	cfg.Hook.Enable = true
	cfg.Hook.TimeoutSec = 1
	cfg.Hook.AliveInterval = 0.2
	cfg.Hook.RetryDelay = 0.1
	ini := "[hook]\n"
	for _, h := range append(allHooks, extra...) {
		ini += h + "=" + base + h + "\n"
	}
	if err := cfg.Parse(strings.NewReader(ini), "hooks.ini"); err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(cfg)
	}
	return startServer(t, cfg, logging.LevelTrace)
}

// pushLoop starts ffmpeg pushing the test file to url (rtsp:// or rtmp://) in a
// loop; the returned function stops it.
func pushLoop(t *testing.T, url string) (*exec.Cmd, func()) {
	t.Helper()
	format := []string{"-f", "rtsp", "-rtsp_transport", "tcp"}
	if strings.HasPrefix(url, "rtmp://") {
		format = []string{"-f", "flv"}
	}
	args := append([]string{"-hide_banner", "-v", "error", "-re", "-stream_loop", "-1",
		"-i", testmedia.File(t, testmedia.H264AAC), "-c", "copy"}, format...)
	cmd := exec.Command("ffmpeg", append(args, url)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { cmd.Process.Kill(); cmd.Wait() }) }
	t.Cleanup(stop)
	return cmd, stop
}

// probe runs ffprobe on url and returns the codecs it found.
func probe(url string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", url).CombinedOutput()
	return strings.Join(strings.Fields(string(out)), ","), err
}

// urls are the URLs of path (app/stream, with an optional ?query) in each protocol.
func urls(srv *server.Server, path string) map[string]string {
	path, query, _ := strings.Cut(path, "?")
	if query != "" {
		query = "?" + query
	}
	return map[string]string{
		"rtsp":     "rtsp://" + srv.Addr("rtsp") + "/" + path + query,
		"rtmp":     "rtmp://" + srv.Addr("rtmp") + "/" + path + query,
		"http-flv": "http://" + srv.Addr("http") + "/" + path + ".live.flv" + query,
	}
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestHooksHearEveryEvent: ffmpeg pushes over RTSP and RTMP, ffprobe plays
// over RTSP, RTMP and HTTP-FLV, and the hook server receives each hook with
// ZLMediaKit's fields.
func TestHooksHearEveryEvent(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	hr := newHookRecorder(t, nil)
	srv, _ := startHooked(t, hr.url, func(c *config.Config) { c.General.StreamNoneReaderDelayMS = 300 })
	defer func() {
		if t.Failed() {
			t.Logf("hooks:\n%s", hr.dump())
		}
	}()

	started := hr.wait(t, "on_server_started", nil)
	if started["mediaServerId"] != "berth-e2e" || started["general.mediaServerId"] != "berth-e2e" || started["hook.enable"] != "1" {
		t.Errorf("on_server_started does not carry the config: %v", started)
	}
	if ka := hr.wait(t, "on_server_keepalive", nil); ka["data"] == nil {
		t.Errorf("on_server_keepalive without data: %v", ka)
	}

	_, stopRTSP := pushLoop(t, urls(srv, "live/a?token=abc")["rtsp"])
	_, stopRTMP := pushLoop(t, urls(srv, "live/b?token=def")["rtmp"])
	for _, p := range []struct{ stream, schema, params string }{{"a", "rtsp", "token=abc"}, {"b", "rtmp", "token=def"}} {
		b := hr.wait(t, "on_publish", map[string]any{"stream": p.stream})
		want := map[string]any{"mediaServerId": "berth-e2e", "app": "live", "vhost": "__defaultVhost__", "schema": p.schema,
			"params": p.params, "ip": "127.0.0.1"}
		for k, v := range want {
			if b[k] != v {
				t.Errorf("on_publish %s: %s = %v, want %v", p.stream, k, b[k], v)
			}
		}
		if port, _ := b["port"].(float64); port == 0 {
			t.Errorf("on_publish %s: no port: %v", p.stream, b)
		}
		if b["id"] == "" {
			t.Errorf("on_publish %s: no id: %v", p.stream, b)
		}
		for _, schema := range []string{"rtsp", "rtmp"} {
			reg := hr.wait(t, "on_stream_changed", map[string]any{"stream": p.stream, "schema": schema, "regist": true})
			if tracks, _ := reg["tracks"].([]any); len(tracks) != 2 || reg["app"] != "live" || reg["originTypeStr"] != p.schema+"_push" {
				t.Errorf("on_stream_changed regist %s/%s: %v", p.stream, schema, reg)
			}
		}
		// Nobody plays yet: after streamNoneReaderDelayMS the hook hears it (and does not close).
		none := hr.wait(t, "on_stream_none_reader", map[string]any{"stream": p.stream})
		if none["app"] != "live" || none["schema"] != p.schema {
			t.Errorf("on_stream_none_reader: %v", none)
		}
	}

	for proto, u := range urls(srv, "live/a?who=probe") {
		if got, err := probe(u); err != nil || got != "h264,aac" {
			t.Errorf("%s: ffprobe got %q, %v", proto, got, err)
		}
		schema, protocol := proto, proto
		if proto == "http-flv" {
			schema = "rtmp"
		}
		b := hr.wait(t, "on_play", map[string]any{"stream": "a", "protocol": protocol})
		if b["schema"] != schema || b["params"] != "who=probe" || b["app"] != "live" || b["ip"] != "127.0.0.1" {
			t.Errorf("on_play over %s: %v", proto, b)
		}
		fr := hr.wait(t, "on_flow_report", map[string]any{"stream": "a", "protocol": protocol, "player": true})
		if n, _ := fr["totalBytes"].(float64); n <= 0 || fr["params"] != "who=probe" {
			t.Errorf("on_flow_report of the %s player: %v", proto, fr)
		}
	}

	stopRTSP()
	stopRTMP()
	for _, p := range []struct{ stream, schema string }{{"a", "rtsp"}, {"b", "rtmp"}} {
		for _, schema := range []string{"rtsp", "rtmp"} {
			hr.wait(t, "on_stream_changed", map[string]any{"stream": p.stream, "schema": schema, "regist": false})
		}
		fr := hr.wait(t, "on_flow_report", map[string]any{"stream": p.stream, "player": false})
		if n, _ := fr["totalBytes"].(float64); n <= 0 || fr["schema"] != p.schema {
			t.Errorf("on_flow_report of the %s publisher: %v", p.stream, fr)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	hr.wait(t, "on_server_exited", map[string]any{"mediaServerId": "berth-e2e"})
}

// TestHookRefusals: on_publish and on_play replying code -1 refuse ffmpeg's
// RTSP and RTMP pushes and ffprobe's plays, with the hook's msg in the log.
func TestHookRefusals(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	hr := newHookRecorder(t, func(hook string, body map[string]any) string {
		if (hook == "on_publish" && body["stream"] == "denied") || (hook == "on_play" && body["stream"] == "ok") {
			return `{"code":-1,"msg":"not on the list"}`
		}
		return ""
	})
	srv, logs := startHooked(t, hr.url, nil)
	for _, proto := range []string{"rtsp", "rtmp"} {
		cmd, _ := pushLoop(t, urls(srv, "live/denied")[proto])
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s push of a refused stream exited 0", proto)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("%s push of a refused stream still runs", proto)
		}
		if srv.Hub.Get("live/denied") != nil {
			t.Errorf("%s: the refused stream is published", proto)
		}
	}
	logs.WaitLine(t, "level=WARN", "not on the list", "proto=rtsp")
	logs.WaitLine(t, "level=WARN", "not on the list", "proto=rtmp")

	pushLoop(t, urls(srv, "live/ok")["rtsp"])
	testutil.WaitFor(t, 10*time.Second, "live/ok to be published", func() bool { return srv.Hub.Get("live/ok") != nil })
	for proto, u := range urls(srv, "live/ok") {
		if got, err := probe(u); err == nil {
			t.Errorf("%s: ffprobe of a refused play got %q", proto, got)
		}
	}
	if n := srv.Hub.Get("live/ok").Readers(); n != 0 {
		t.Errorf("%d readers after refused plays", n)
	}
	// The refusals and the hook calls are counted in /metrics.
	res, err := http.Get("http://" + srv.Addr("http") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, series := range []string{`berth_refused_total{action="publish",reason="hook"} 2`,
		`berth_refused_total{action="play",reason="hook"} 3`,
		`berth_hook_duration_seconds_count{hook="on_publish",result="refused"} 2`,
		`berth_hook_duration_seconds_count{hook="on_play",result="refused"} 3`} {
		if !strings.Contains(string(text), series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
}

// TestStreamNotFoundWaitsForAPush: a player of a missing stream makes
// on_stream_not_found fire; the hook server starts a push, and the player,
// still waiting (maxStreamWaitMS), plays it.
func TestStreamNotFoundWaitsForAPush(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	var srv *server.Server
	var mu sync.Mutex
	pushed := map[string]bool{}
	hr := newHookRecorder(t, func(hook string, body map[string]any) string {
		stream, _ := body["stream"].(string)
		mu.Lock()
		defer mu.Unlock()
		if hook == "on_stream_not_found" && !pushed[stream] {
			pushed[stream] = true
			pushLoop(t, urls(srv, "live/"+stream)["rtmp"])
		}
		return ""
	})
	started, _ := startHooked(t, hr.url, nil)
	mu.Lock()
	srv = started // the hook handler reads it: the network is no happens-before the race detector sees
	mu.Unlock()
	for _, proto := range []string{"rtsp", "rtmp", "http-flv"} {
		stream := "late-" + proto
		if got, err := probe(urls(srv, "live/"+stream)[proto]); err != nil || got != "h264,aac" {
			t.Errorf("%s: ffprobe of a stream pushed on demand got %q, %v", proto, got, err)
		}
		nf := hr.wait(t, "on_stream_not_found", map[string]any{"stream": stream, "protocol": proto})
		if nf["app"] != "live" || nf["ip"] != "127.0.0.1" || nf["vhost"] != "__defaultVhost__" {
			t.Errorf("on_stream_not_found: %v", nf)
		}
	}
}

// TestDeadHookServerCostsAPublisherAtMostTheTimeout: a hook server on a
// closed port, and one that never answers, refuse a push (ZLMediaKit's
// default when the hook cannot be asked) within timeoutSec, with a warning
// naming the hook and the URL.
func TestDeadHookServerCostsAPublisherAtMostTheTimeout(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String() + "/index/hook/"
	closed.Close()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() { // accepts and never answers
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	silentURL := "http://" + silent.Addr().String() + "/index/hook/"
	for name, base := range map[string]string{"closed port": closedURL, "never answers": silentURL} {
		t.Run(name, func(t *testing.T) {
			srv, logs := startHooked(t, base, nil)
			cmd, _ := pushLoop(t, urls(srv, "live/x")["rtsp"])
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(10 * time.Second): // timeoutSec is 1 s; 10 s is only the test's bound
				t.Fatal("the push is still waiting")
			}
			logs.WaitLine(t, "level=WARN", "hook=on_publish", "url="+base+"on_publish")
			if srv.Hub.Get("live/x") != nil {
				t.Error("published although on_publish could not be asked")
			}
		})
	}
}

// TestNoneReaderCloseEndsTheStream: on_stream_none_reader replying
// close:true ends a stream nobody plays, and its RTMP publisher is
// disconnected.
func TestNoneReaderCloseEndsTheStream(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	hr := newHookRecorder(t, func(hook string, _ map[string]any) string {
		if hook == "on_stream_none_reader" {
			return `{"code":0,"close":true}`
		}
		return ""
	})
	srv, _ := startHooked(t, hr.url, func(c *config.Config) { c.General.StreamNoneReaderDelayMS = 500 })
	cmd, _ := pushLoop(t, urls(srv, "live/idle")["rtmp"])
	testutil.WaitFor(t, 10*time.Second, "live/idle to be published", func() bool { return srv.Hub.Get("live/idle") != nil })
	hr.wait(t, "on_stream_none_reader", map[string]any{"stream": "idle"})
	testutil.WaitFor(t, 10*time.Second, "live/idle to end", func() bool { return srv.Hub.Get("live/idle") == nil })
	hr.wait(t, "on_stream_changed", map[string]any{"stream": "idle", "regist": false})
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Error("the publisher of a closed stream is still connected")
	}
}

// TestRTSPRealmAndAuthHooks: on_rtsp_realm names a realm and on_rtsp_auth
// returns the password; ffprobe with the right password plays, with a
// wrong one it does not. An encrypted (HA1) password works too.
func TestRTSPRealmAndAuthHooks(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	hr := newHookRecorder(t, func(hook string, body map[string]any) string {
		switch hook {
		case "on_rtsp_realm":
			return `{"code":0,"realm":"berth-hooks"}`
		case "on_rtsp_auth":
			if body["user_name"] == "enc" {
				// MD5("enc:berth-hooks:secret")
				return fmt.Sprintf(`{"code":0,"encrypted":true,"passwd":%q}`, md5hex("enc:berth-hooks:secret"))
			}
			return `{"code":0,"encrypted":false,"passwd":"secret"}`
		}
		return ""
	})
	srv, logs := startHooked(t, hr.url, nil, "on_rtsp_realm", "on_rtsp_auth")
	pushLoop(t, urls(srv, "live/locked")["rtmp"])
	testutil.WaitFor(t, 10*time.Second, "live/locked to be published", func() bool { return srv.Hub.Get("live/locked") != nil })
	base := srv.Addr("rtsp") + "/live/locked"
	if got, err := probe("rtsp://viewer:secret@" + base); err != nil || got != "h264,aac" {
		t.Errorf("right password: ffprobe got %q, %v", got, err)
	}
	if got, err := probe("rtsp://enc:secret@" + base); err != nil || got != "h264,aac" {
		t.Errorf("right password against an encrypted one: ffprobe got %q, %v", got, err)
	}
	if got, err := probe("rtsp://viewer:wrong@" + base); err == nil {
		t.Errorf("wrong password: ffprobe got %q", got)
	}
	logs.WaitLine(t, "level=WARN", "on_rtsp_auth", "user=viewer")
	b := hr.wait(t, "on_rtsp_auth", map[string]any{"user_name": "viewer"})
	if b["realm"] != "berth-hooks" || b["stream"] != "locked" || b["must_no_encrypt"] != false {
		t.Errorf("on_rtsp_auth body: %v", b)
	}
}
