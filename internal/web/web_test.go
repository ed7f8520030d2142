package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/ports"
)

func get(t *testing.T, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	return w
}

func TestPageAndAssetsAreServedAndOtherPathsAre404(t *testing.T) {
	h := &Handler{Secret: "s"}
	for _, c := range []struct {
		path        string
		status      int
		ctype, body string
	}{
		{"/", 200, "text/html", "<title>Berth status</title>"},
		{"/index.html", 200, "text/html", "/berth/web/app.js"},
		{"/berth/web/app.js", 200, "javascript", "getMediaList"},
		{"/berth/web/player.js", 200, "javascript", "addSourceBuffer"},
		{"/berth/web/style.css", 200, "text/css", "prefers-color-scheme"},
		{"/berth/web/", 404, "", ""},
		{"/berth/web/../web.go", 404, "", ""},
		{"/berth/web/nothing.js", 404, "", ""},
		{"/live/cam.live.flv", 404, "", ""},
		{"/favicon.ico", 404, "", ""},
	} {
		w := get(t, h, c.path)
		if w.Code != c.status {
			t.Errorf("%s: %d, want %d", c.path, w.Code, c.status)
			continue
		}
		if c.ctype != "" && !strings.Contains(w.Header().Get("Content-Type"), c.ctype) {
			t.Errorf("%s: Content-Type %q, want %s", c.path, w.Header().Get("Content-Type"), c.ctype)
		}
		if !strings.Contains(w.Body.String(), c.body) {
			t.Errorf("%s: body lacks %q", c.path, c.body)
		}
		if w.Code == 200 && !strings.Contains(w.Header().Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("%s: no Content-Security-Policy", c.path)
		}
	}
}

type reply struct {
	Code int     `json:"code"`
	Msg  string  `json:"msg"`
	Data *Status `json:"data"`
}

func decode(t *testing.T, w *httptest.ResponseRecorder) reply {
	t.Helper()
	var r reply
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
		t.Fatalf("status reply is not JSON: %v\n%s", err, w.Body.String())
	}
	return r
}

func TestStatusAsksForTheAPISecret(t *testing.T) {
	for _, c := range []struct {
		name, secret, query, msg string
	}{
		{"no secret configured", "", "?secret=x", "the API is disabled: set [api] secret"},
		{"no secret passed", "s3cret", "", "missing secret"},
		{"wrong secret", "s3cret", "?secret=nope", "incorrect secret"},
	} {
		h := &Handler{Secret: c.secret, Status: func() any { t.Error(c.name + ": Status called"); return nil }}
		r := decode(t, get(t, h, StatusPath+c.query))
		if r.Code != codeAuthFailed || !strings.Contains(r.Msg, c.msg) || r.Data != nil {
			t.Errorf("%s: %+v, want code -100 and %q", c.name, r, c.msg)
		}
	}
}

func TestStatusServesWhatTheServerFills(t *testing.T) {
	started := time.Date(2026, 12, 4, 21, 0, 0, 0, time.UTC)
	h := &Handler{Secret: "s3cret", Status: func() any {
		return &Status{
			Server:    Server{Version: "1.2.3", Instance: "abc", PID: 42, Started: started, UptimeSec: 7, Go: "go1.26"},
			Listeners: Listeners([]ports.Health{{Listener: "rtsp/tcp", Name: "rtsp", Network: "tcp", Port: 8554, Addrs: []string{"127.0.0.1:8554"}, Probes: []ports.Probe{{Host: "127.0.0.1", OK: true}}}}, nil, nil),
			Readers:   map[string]map[string]int{"live/cam": {"rtsp": 2}},
			Warnings:  []logging.Record{{Time: started, Level: "WARN", Message: "slow reader", Attrs: "proto=rtsp"}},
		}
	}}
	w := get(t, h, StatusPath+"?secret=s3cret")
	r := decode(t, w)
	if r.Code != 0 || r.Data == nil {
		t.Fatalf("%+v", r)
	}
	d := r.Data
	if d.Server.Instance != "abc" || len(d.Listeners) != 1 || d.Listeners[0].Port != 8554 || d.Listeners[0].State != "ok" ||
		d.Readers["live/cam"]["rtsp"] != 2 || len(d.Warnings) != 1 || d.Warnings[0].Message != "slow reader" {
		t.Errorf("status: %+v", d)
	}
	// The page reads these keys; a rename breaks it silently.
	for _, key := range []string{`"listener":"rtsp/tcp"`, `"addrs":["127.0.0.1:8554"]`, `"probes":[{"host":"127.0.0.1","ok":true}]`,
		`"shadows":[]`, `"notices":[]`, `"uptime_sec":7`, `"warnings_total":0`, `"attrs":"proto=rtsp"`} {
		if !strings.Contains(w.Body.String(), key) {
			t.Errorf("status JSON lacks %s:\n%s", key, w.Body.String())
		}
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q: a cached status would show the past", w.Header().Get("Cache-Control"))
	}
}

func TestStatusWithoutAFillerIsEmptyNotNull(t *testing.T) {
	w := get(t, &Handler{Secret: "s"}, StatusPath+"?secret=s")
	if r := decode(t, w); r.Code != 0 || r.Data == nil {
		t.Errorf("%s", w.Body.String())
	}
}

func TestListenersAttributeShadowsAndNoticesToTheirListener(t *testing.T) {
	hs := []ports.Health{
		{Listener: "rtsp/tcp", Name: "rtsp", Network: "tcp", Probes: []ports.Probe{{Host: "127.0.0.1", OK: true}, {Host: "::1", Line: "rtsp: self-probe of [::1]:8554 reached nginx"}}},
		{Listener: "rtp_proxy/tcp", Name: "rtp_proxy", Network: "tcp"},
		{Listener: "rtp_proxy/udp", Name: "rtp_proxy", Network: "udp"},
		{Listener: "rtmp/tcp", Name: "rtmp", Network: "tcp"},
	}
	shadows := []string{
		"rtp_proxy: pid 7 (ffmpeg) listens on 0.0.0.0:10000/udp; clients connecting to addresses Berth does not listen on reach it, not Berth",
		"rtmp: pid 9 (nginx) also listens on 127.0.0.1:1935 beside Berth (SO_REUSEPORT); the kernel splits clients between it and Berth",
	}
	notices := []string{"rtmp: port 1935/tcp cannot be used (in use); listening on port 1936 instead because port_fallback is on: rtmp://127.0.0.1:1936/"}
	got := Listeners(hs, shadows, notices)
	want := []struct {
		state            string
		shadows, notices int
	}{
		{"self-probe failed", 0, 0},
		{"ok", 0, 0},
		{"shadowed", 1, 0},
		{"shadowed", 1, 1},
	}
	for i, w := range want {
		l := got[i]
		if l.State != w.state || len(l.Shadows) != w.shadows || len(l.Notices) != w.notices {
			t.Errorf("%s: state %q, %d shadows, %d notices; want %q, %d, %d", l.Listener, l.State, len(l.Shadows), len(l.Notices), w.state, w.shadows, w.notices)
		}
	}
}
