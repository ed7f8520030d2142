package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/rtpproxy"
	"github.com/berthmedia/berth/internal/testmedia"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testmedia.Cleanup()
	os.Exit(code)
}

const secret = "s3cret"

// An SPS of ffmpeg's 320x240 25 fps test picture (libx264, constrained baseline).
var sps320 = []byte{0x67, 0x42, 0xc0, 0x0d, 0xda, 0x05, 0x07, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x0c, 0x83, 0xc5, 0x0a, 0xa8}

type env struct {
	h   *hub.Hub
	rtp *rtpproxy.Server
	srv *httptest.Server
}

func newEnv(t *testing.T, rng config.PortRange) *env {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	h := hub.New(hub.Options{Log: log, Converters: codec.Converters(log)})
	rtp := &rtpproxy.Server{Hub: h, Log: log, Host: "127.0.0.1", PortRange: rng, TimeoutSec: 5}
	mux := http.NewServeMux()
	mux.Handle(Prefix, &Handler{Hub: h, Secret: secret, RTP: rtp, Log: log})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rtp.Shutdown(ctx)
		h.Close()
	})
	return &env{h: h, rtp: rtp, srv: srv}
}

type reply struct {
	Code int              `json:"code"`
	Msg  string           `json:"msg"`
	Port int              `json:"port"`
	Hit  int              `json:"hit"`
	Data []map[string]any `json:"data"`
}

func (e *env) call(t *testing.T, endpoint string, q url.Values) reply {
	t.Helper()
	resp, err := http.Get(e.srv.URL + Prefix + endpoint + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s: Content-Type %q", endpoint, ct)
	}
	var r reply
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("%s: %v: %s", endpoint, err, body)
	}
	return r
}

func (e *env) callRaw(t *testing.T, endpoint string, q url.Values) map[string]any {
	t.Helper()
	resp, err := http.Get(e.srv.URL + Prefix + endpoint + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func withSecret(kv ...string) url.Values {
	q := url.Values{"secret": {secret}}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return q
}

func TestSecretIsRequiredAndChecked(t *testing.T) {
	e := newEnv(t, config.PortRange{})
	for _, tc := range []struct {
		name string
		q    url.Values
		code int
		msg  string
	}{
		{"missing", url.Values{}, CodeAuthFailed, "missing secret"},
		{"empty", url.Values{"secret": {""}}, CodeAuthFailed, "missing secret"},
		{"wrong", url.Values{"secret": {"nope"}}, CodeAuthFailed, "incorrect secret"},
		{"right", url.Values{"secret": {secret}}, CodeSuccess, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.call(t, "getMediaList", tc.q)
			if r.Code != tc.code || !strings.Contains(r.Msg, tc.msg) {
				t.Fatalf("code %d msg %q, want %d %q", r.Code, r.Msg, tc.code, tc.msg)
			}
		})
	}
}

func TestSecretInAFormOrJSONBodyIsAccepted(t *testing.T) {
	e := newEnv(t, config.PortRange{})
	for _, tc := range []struct{ ct, body string }{
		{"application/x-www-form-urlencoded", "secret=" + secret},
		{"application/json", `{"secret":"` + secret + `"}`},
	} {
		resp, err := http.Post(e.srv.URL+Prefix+"getMediaList", tc.ct, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		var r reply
		json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if r.Code != 0 {
			t.Fatalf("%s: code %d %s", tc.ct, r.Code, r.Msg)
		}
	}
}

func TestUnknownEndpointIsNotFound(t *testing.T) {
	e := newEnv(t, config.PortRange{})
	resp, err := http.Get(e.srv.URL + Prefix + "noSuchThing?secret=" + secret)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func TestOpenRtpServerWithPort0ReturnsAPortFromTheRange(t *testing.T) {
	p := freeUDPPort(t)
	e := newEnv(t, config.PortRange{Lo: p, Hi: p})
	r := e.call(t, "openRtpServer", withSecret("port", "0", "tcp_mode", "1", "stream_id", "cam1"))
	if r.Code != 0 || r.Port != p {
		t.Fatalf("reply %+v, want port %d", r, p)
	}
	if r := e.call(t, "openRtpServer", withSecret("port", "0", "stream_id", "cam1")); r.Code != CodeInvalidArgs {
		t.Fatalf("same stream_id twice: %+v", r)
	}
	if r := e.call(t, "openRtpServer", withSecret("port", "0")); r.Code != CodeInvalidArgs || !strings.Contains(r.Msg, "stream_id") {
		t.Fatalf("no stream_id: %+v", r)
	}
	if r := e.call(t, "openRtpServer", withSecret("port", "0", "stream_id", "cam2")); r.Code != CodeOtherFailed || !strings.Contains(r.Msg, "no free port") {
		t.Fatalf("range exhausted: %+v", r)
	}
	l := e.call(t, "listRtpServer", withSecret())
	if l.Code != 0 || len(l.Data) != 1 || l.Data[0]["stream_id"] != "cam1" || int(l.Data[0]["port"].(float64)) != p {
		t.Fatalf("listRtpServer %+v", l)
	}
	if r := e.call(t, "closeRtpServer", withSecret("stream_id", "cam1")); r.Code != 0 || r.Hit != 1 {
		t.Fatalf("closeRtpServer %+v", r)
	}
	if r := e.call(t, "closeRtpServer", withSecret("stream_id", "cam1")); r.Code != 0 || r.Hit != 0 {
		t.Fatalf("closeRtpServer again %+v", r)
	}
	if l := e.call(t, "listRtpServer", withSecret()); len(l.Data) != 0 {
		t.Fatalf("listRtpServer after close %+v", l)
	}
}

func TestOpenRtpServerWithAnSDPTakesRawRTP(t *testing.T) {
	e := newEnv(t, config.PortRange{})
	sdp := "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=audio 0 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
	r := e.call(t, "openRtpServer", withSecret("stream_id", "pcma", "sdp", sdp))
	if r.Code != 0 || r.Port == 0 {
		t.Fatalf("reply %+v", r)
	}
	// One PCMA packet makes the stream.
	c, err := net.Dial("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(append([]byte{0x80, 8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7}, make([]byte, 160)...))
	deadline := time.Now().Add(5 * time.Second)
	for e.h.Get("rtp/pcma") == nil {
		if time.Now().After(deadline) {
			t.Fatal("rtp/pcma never appeared")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r := e.call(t, "openRtpServer", withSecret("stream_id", "bad", "sdp", "nonsense")); r.Code != CodeInvalidArgs {
		t.Fatalf("bad SDP: %+v", r)
	}
}

func TestOpenRtpServerOnATakenPortReturnsTheFinding(t *testing.T) {
	e := newEnv(t, config.PortRange{})
	other, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	taken := other.LocalAddr().(*net.UDPAddr).Port
	r := e.call(t, "openRtpServer", withSecret("port", strconv.Itoa(taken), "stream_id", "x"))
	want := fmt.Sprintf("rtp_proxy: cannot listen on 127.0.0.1:%d/udp", taken)
	if r.Code != CodeOtherFailed || !strings.Contains(r.Msg, want) {
		t.Fatalf("reply %+v, want code -1 and %q", r, want)
	}
}

func TestGetMediaListDescribesStreams(t *testing.T) {
	e := newEnv(t, config.PortRange{})
	pub, err := e.h.Publish("live/cam", hub.Origin{Proto: "rtsp", Remote: "10.0.0.9:5000", ID: "abc"}, hub.KindAU,
		[]*hub.Track{codec.H264Track(sps320, []byte{0x68, 0xce, 0x0f, 0xc8}), codec.G711Track(true, 8000, 1)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	pub.Write(&hub.Frame{Track: 0, Key: true, AU: [][]byte{{0x65, 1, 2, 3}}})

	r := e.call(t, "getMediaList", withSecret("schema", "rtsp"))
	if r.Code != 0 || len(r.Data) != 1 {
		t.Fatalf("reply %+v", r)
	}
	m := r.Data[0]
	for k, want := range map[string]any{"app": "live", "stream": "cam", "schema": "rtsp", "vhost": DefaultVhost,
		"originType": 2.0, "originTypeStr": "rtsp_push", "readerCount": 0.0, "totalBytes": 4.0} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
	tracks := m["tracks"].([]any)
	v := tracks[0].(map[string]any)
	a := tracks[1].(map[string]any)
	if v["codec_id_name"] != "CodecH264" || v["width"] != 320.0 || v["height"] != 240.0 || v["codec_type"] != 0.0 {
		t.Errorf("video track %v", v)
	}
	if a["codec_id_name"] != "CodecG711A" || a["codec_id"] != 3.0 || a["sample_rate"] != 8000.0 || a["channels"] != 1.0 {
		t.Errorf("audio track %v", a)
	}
	if r := e.call(t, "getMediaList", withSecret()); len(r.Data) != 2 {
		t.Fatalf("without a schema filter: %d entries, want one per schema (2)", len(r.Data))
	}
	if r := e.call(t, "getMediaList", withSecret("app", "other")); len(r.Data) != 0 {
		t.Fatalf("app filter: %d entries", len(r.Data))
	}
}

// The whole flow a GB28181 platform runs: open a port, push to it, find
// the stream in getMediaList, close the port.
func TestRTPPushToAnOpenedPortShowsInGetMediaList(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	src := testmedia.File(t, testmedia.H264AAC)
	e := newEnv(t, config.PortRange{})
	r := e.call(t, "openRtpServer", withSecret("port", "0", "stream_id", "gb1"))
	if r.Code != 0 || r.Port == 0 {
		t.Fatalf("openRtpServer %+v", r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-i", src, "-c", "copy",
		"-f", "rtp_mpegts", fmt.Sprintf("rtp://127.0.0.1:%d", r.Port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	var m reply
	for {
		m = e.call(t, "getMediaList", withSecret("app", "rtp", "stream", "gb1", "schema", "rtsp"))
		if len(m.Data) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("rtp/gb1 never appeared in getMediaList")
		}
		time.Sleep(50 * time.Millisecond)
	}
	info := e.callRaw(t, "getRtpInfo", withSecret("stream_id", "gb1"))
	if info["exist"] != true || info["local_port"] != float64(r.Port) || info["payload"] != "mpegts" {
		t.Fatalf("getRtpInfo %v", info)
	}
	if info := e.callRaw(t, "getRtpInfo", withSecret("stream_id", "nope")); info["exist"] != false {
		t.Fatalf("getRtpInfo of nothing %v", info)
	}
	d := m.Data[0]
	if d["originTypeStr"] != "rtp_push" || !strings.HasPrefix(d["originUrl"].(string), "rtp://127.0.0.1:") {
		t.Fatalf("origin %v %v", d["originTypeStr"], d["originUrl"])
	}
	if sock := d["originSock"].(map[string]any); sock["local_port"] != float64(r.Port) || sock["peer_ip"] != "127.0.0.1" {
		t.Fatalf("originSock %v, want the opened port %d and the sender", sock, r.Port)
	}
	tracks := d["tracks"].([]any)
	v, a := tracks[0].(map[string]any), tracks[1].(map[string]any)
	if v["codec_id_name"] != "CodecH264" || v["width"] != 320.0 || v["height"] != 240.0 {
		t.Fatalf("video %v", v)
	}
	if a["codec_id_name"] != "CodecAAC" || a["sample_rate"] != 48000.0 {
		t.Fatalf("audio %v", a)
	}
	if r := e.call(t, "closeRtpServer", withSecret("stream_id", "gb1")); r.Hit != 1 {
		t.Fatalf("closeRtpServer %+v", r)
	}
	if e.h.Get("rtp/gb1") != nil {
		t.Fatal("stream still live after closeRtpServer")
	}
}
