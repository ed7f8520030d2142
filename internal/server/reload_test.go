package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/ports"
	"github.com/berthmedia/berth/internal/rtmp"
	"github.com/berthmedia/berth/internal/rtspclient"
	"github.com/berthmedia/berth/internal/server"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// startLive starts a server on ephemeral ports whose logger's level can
// change (as the CLI builds it).
func startLive(t *testing.T, cfg *config.Config) (*server.Server, *testutil.LogBuffer) {
	t.Helper()
	if cfg == nil {
		cfg = config.Default()
	}
	cfg.General.ListenIP = "127.0.0.1"
	cfg.API.Secret = "s3cret"
	return startServer(t, cfg, logging.NewLevel("info"))
}

// freePort is a TCP port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// rtmpReader plays path over RTMP and records every video timestamp.
type rtmpReader struct {
	c   *rtmp.Client
	mu  sync.Mutex
	ts  []uint32
	err error
}

func readRTMP(t *testing.T, addr, path string) *rtmpReader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := rtmp.Dial(ctx, addr, false)
	if err != nil {
		t.Fatal(err)
	}
	app, stream, _ := strings.Cut(path, "/")
	if err := c.Connect(app, "rtmp://"+addr+"/"+app); err != nil {
		t.Fatal(err)
	}
	if code, err := c.Play(stream); err != nil || code != "NetStream.Play.Start" {
		t.Fatalf("play: %s %v", code, err)
	}
	r := &rtmpReader{c: c}
	go func() {
		for {
			m, err := c.ReadMessage()
			r.mu.Lock()
			if err != nil {
				r.err = err
				r.mu.Unlock()
				return
			}
			if m.Type == 9 && len(m.Body) > 1 && m.Body[1] == 1 { // video, a coded frame (not the sequence header)
				r.ts = append(r.ts, m.Timestamp)
			}
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close() })
	return r
}

// readFLV plays url over HTTP-FLV and counts the bytes it reads.
func readFLV(t *testing.T, url string) *atomic.Int64 {
	t.Helper()
	res, err := http.Get(url)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("HTTP-FLV play of %s: %v", url, err)
	}
	var n atomic.Int64
	go func() {
		buf := make([]byte, 32<<10)
		for {
			k, err := res.Body.Read(buf)
			n.Add(int64(k))
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { res.Body.Close() })
	testutil.WaitFor(t, 10*time.Second, "HTTP-FLV bytes", func() bool { return n.Load() > 0 })
	return &n
}

func (r *rtmpReader) frames() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ts), r.err
}

// describe DESCRIBEs url and returns the number of medias.
func describe(url string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := rtspclient.Dial(ctx, url, rtspclient.Options{Timeout: 5 * time.Second})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	desc, _, err := c.Describe()
	if err != nil {
		return 0, err
	}
	return len(desc.Medias), nil
}

// TestReloadMovesRTSPWhileRTMPReadersPlayOn is the hot-reload
// specification: an RTMP push is read over RTMP and HTTP-FLV while a
// reload moves RTSP and HTTP to new ports and turns the log level to
// debug. RTSP then answers DESCRIBE of the stream on the new port, the old
// ports refuse, the RTMP reader's frames run on without a gap or a
// reconnect, the HTTP-FLV player accepted on the old HTTP port reads on,
// and a key that cannot change live is named.
func TestReloadMovesRTSPWhileRTMPReadersPlayOn(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, logs := startLive(t, nil)
	push := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-re", "-stream_loop", "-1",
		"-i", testmedia.File(t, testmedia.H264AAC), "-c", "copy", "-f", "flv", "rtmp://"+srv.Addr("rtmp")+"/live/r")
	if err := push.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { push.Process.Kill(); push.Wait() })
	testutil.WaitFor(t, 10*time.Second, "the RTMP push", func() bool {
		st := srv.Hub.Get("live/r")
		return st != nil && st.FramesIn.Load() > 10
	})
	oldRTSP := srv.Addr("rtsp")
	if n, err := describe("rtsp://" + oldRTSP + "/live/r"); err != nil || n != 2 {
		t.Fatalf("DESCRIBE before the reload: %d medias, %v", n, err)
	}
	reader := readRTMP(t, srv.Addr("rtmp"), "live/r")
	oldHTTP := srv.Addr("http")
	flv := readFLV(t, "http://"+oldHTTP+"/live/r.live.flv")
	testutil.WaitFor(t, 10*time.Second, "25 frames at the RTMP reader", func() bool { n, _ := reader.frames(); return n >= 25 })
	if srv.Log.Enabled(context.Background(), slog.LevelDebug) {
		t.Fatal("debug is on before the reload")
	}

	next := srv.CurrentConfig().Clone()
	port := freePort(t)
	next.RTSP.Port = port
	next.Log.Level = "debug"
	next.General.AllowTakeover = true
	next.RTSP.KeepAliveSecond = 30
	next.Hub.RingSize = 8192
	httpPort := freePort(t)
	next.HTTP.Port = httpPort
	rep, err := srv.Reload(next)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := reader.frames()
	flvBefore := flv.Load()

	newRTSP := "127.0.0.1:" + strconv.Itoa(port)
	if got := srv.Addr("rtsp"); got != newRTSP {
		t.Errorf("Addr(rtsp) = %s, want %s", got, newRTSP)
	}
	if c, ok := rep.Key("rtsp.port"); !ok || !c.Live || !strings.Contains(c.Note, newRTSP) {
		t.Errorf("report of rtsp.port: %+v", c)
	}
	if n, err := describe("rtsp://" + newRTSP + "/live/r"); err != nil || n != 2 {
		t.Errorf("DESCRIBE on the new port: %d medias, %v", n, err)
	}
	if listensHere(t, oldRTSP) {
		t.Errorf("the old RTSP port %s still listens", oldRTSP)
	}
	if !srv.Log.Enabled(context.Background(), slog.LevelDebug) {
		t.Error("log level debug did not apply live")
	}
	for _, k := range []string{"log.level", "rtsp.keepAliveSecond", "hub.ring_size"} {
		if c, ok := rep.Key(k); !ok || !c.Live {
			t.Errorf("%s was not applied live: %+v", k, c)
		}
	}
	if r := rep.Restart(); len(r) != 1 || r[0] != "general.allow_takeover" {
		t.Errorf("keys that need a restart: %v, want general.allow_takeover", r)
	}
	if logs.Line("level=WARN", "reload: [general] allow_takeover 0 -> 1: needs a restart") == "" {
		t.Error("no warning names the key that needs a restart")
	}
	if len(rep.Listeners) == 0 || !strings.Contains(strings.Join(rep.Listeners, "\n"), "rtsp://"+newRTSP+"/") {
		t.Errorf("banner lines of the moved listener: %q", rep.Listeners)
	}

	newHTTP := "127.0.0.1:" + strconv.Itoa(httpPort)
	if res, err := http.Get("http://" + newHTTP + "/berth/health"); err != nil || res.StatusCode != 200 {
		t.Errorf("HTTP on the new port: %v", err)
	} else {
		res.Body.Close()
	}
	if listensHere(t, oldHTTP) {
		t.Errorf("the old HTTP port %s still listens", oldHTTP)
	}
	testutil.WaitFor(t, 10*time.Second, "the HTTP-FLV player on the old port to read on", func() bool { return flv.Load() > flvBefore+20000 })
	testutil.WaitFor(t, 10*time.Second, "25 more frames at the RTMP reader", func() bool { n, _ := reader.frames(); return n >= before+25 })
	reader.mu.Lock()
	defer reader.mu.Unlock()
	if reader.err != nil {
		t.Fatalf("the RTMP reader stopped: %v", reader.err)
	}
	for i := 1; i < len(reader.ts); i++ {
		if d := int64(reader.ts[i]) - int64(reader.ts[i-1]); d <= 0 || d > 200 {
			t.Fatalf("RTMP video timestamps jump %d ms at frame %d (%d -> %d): a gap", d, i, reader.ts[i-1], reader.ts[i])
		}
	}
}

// TestReloadToATakenPortChangesNothing: a reload whose new RTSP port
// another socket holds fails with the port finding (listener, address,
// fix), and nothing changes: RTSP stays where it was, the log level and
// the API secret too.
func TestReloadToATakenPortChangesNothing(t *testing.T) {
	srv, _ := startLive(t, nil)
	holder, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	taken := holder.Addr().(*net.TCPAddr).Port
	oldRTSP := srv.Addr("rtsp")

	next := srv.CurrentConfig().Clone()
	next.RTSP.Port = taken
	next.Log.Level = "debug"
	next.API.Secret = "other"
	_, err = srv.Reload(next)
	var se *ports.StartError
	if !errors.As(err, &se) || len(se.Findings) != 1 {
		t.Fatalf("reload error %v, want a *ports.StartError with one finding", err)
	}
	f := se.Findings[0]
	msg := f.Error()
	addr := "127.0.0.1:" + strconv.Itoa(taken)
	if f.Spec.Name != "rtsp" || f.Cause != ports.CauseInUse || !strings.Contains(msg, addr) || !strings.Contains(msg, "--rtsp-port") {
		t.Errorf("finding %q (cause %v): want rtsp, %s, in use, and the fix", msg, f.Cause, addr)
	}
	if srv.Addr("rtsp") != oldRTSP {
		t.Errorf("RTSP moved to %s", srv.Addr("rtsp"))
	}
	if _, err := ports.Identify(context.Background(), "rtsp", oldRTSP); err != nil {
		t.Errorf("RTSP no longer answers on %s: %v", oldRTSP, err)
	}
	if srv.Log.Enabled(context.Background(), slog.LevelDebug) {
		t.Error("the log level changed although the reload failed")
	}
	if code := apiCode(t, srv, "s3cret"); code != `"code":0` {
		t.Errorf("the API secret changed although the reload failed: %s", code)
	}

	// The port of another listener of this config: refused naming both.
	_, rtmpPort, _ := net.SplitHostPort(srv.Addr("rtmp"))
	next.RTSP.Port, _ = strconv.Atoi(rtmpPort)
	_, err = srv.Reload(next)
	if !errors.As(err, &se) || len(se.Findings) != 1 || se.Findings[0].Cause != ports.CauseDuplicate ||
		se.Findings[0].Spec.Name != "rtsp" || !strings.Contains(se.Findings[0].Error(), "rtmp") {
		t.Errorf("a reload onto RTMP's port: %v, want a duplicate finding for rtsp naming rtmp", err)
	}
	if srv.Addr("rtsp") != oldRTSP {
		t.Errorf("RTSP moved to %s", srv.Addr("rtsp"))
	}
}

// apiCode calls getMediaList with secret and returns its "code":N.
func apiCode(t *testing.T, srv *server.Server, secret string) string {
	t.Helper()
	res, err := http.Get("http://" + srv.Addr("http") + "/index/api/getMediaList?secret=" + secret)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	i := strings.Index(string(b), `"code":`)
	if i < 0 {
		return string(b)
	}
	return strings.TrimRight(strings.SplitN(string(b[i:]), ",", 2)[0], "}\n")
}

// TestSetServerConfig: setServerConfig applies live, saves the change in
// the config file with its comments kept, ignores ZLMediaKit keys Berth
// does not use, refuses keys nobody has (changing nothing), and without a
// file applies but says it is not saved.
func TestSetServerConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.ini")
	src := "; my ZLMediaKit config\n" + string(config.ZLMediaKitDefaultINI())
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := startLive(t, cfg)
	if v := srv.ServerConfig(); v["rtsp.keepAliveSecond"] != "15" || v["api.secret"] != "s3cret" {
		t.Errorf("getServerConfig: %v", v)
	}
	n, err := srv.SetServerConfig(map[string]string{"rtsp.keepAliveSecond": "30", "api.secret": "n3w", "hls.segDelay": "4", "rtsp.authBasic": "0"})
	if err != nil || n != 2 {
		t.Fatalf("setServerConfig: %d changed, %v; want 2", n, err)
	}
	if code := apiCode(t, srv, "n3w"); code != `"code":0` {
		t.Errorf("the new secret is refused: %s", code)
	}
	if code := apiCode(t, srv, "s3cret"); code == `"code":0` {
		t.Error("the old secret still works")
	}
	out, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(out), "; my ZLMediaKit config\n[api]\n") || !strings.Contains(string(out), "\nsecret=n3w\n") ||
		!strings.Contains(string(out), "\nkeepAliveSecond=30\nport=554\n") || !strings.Contains(string(out), "\nsegDelay=0\n") {
		t.Errorf("saved file:\n%s", out)
	}
	if _, err := srv.SetServerConfig(map[string]string{"rtsp.keepAliveSecond": "60", "rtsp.bogus": "1"}); !errors.Is(err, server.ErrUnknownKeys) || !strings.Contains(err.Error(), "rtsp.bogus") {
		t.Errorf("an unknown key: %v", err)
	}
	if srv.ServerConfig()["rtsp.keepAliveSecond"] != "30" {
		t.Error("a refused setServerConfig changed a key")
	}
	if _, err := srv.SetServerConfig(map[string]string{"rtsp.keepAliveSecond": "0"}); err == nil || !strings.Contains(err.Error(), "[rtsp] keepAliveSecond") {
		t.Errorf("an invalid value: %v", err)
	}

	bare, logs := startLive(t, nil)
	if n, err := bare.SetServerConfig(map[string]string{"rtp_proxy.timeoutSec": "20"}); err != nil || n != 1 {
		t.Fatalf("without a file: %d, %v", n, err)
	}
	if logs.Line("level=WARN", "applied live but not saved") == "" {
		t.Error("no line says the change is not saved")
	}
	metricsStatus := func() int {
		res, err := http.Get("http://" + bare.Addr("http") + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := metricsStatus(); code != 200 {
		t.Fatalf("/metrics answers %d before the change", code)
	}
	if _, err := bare.SetServerConfig(map[string]string{"metrics.enable": "0"}); err != nil {
		t.Fatal(err)
	}
	if code := metricsStatus(); code != 404 {
		t.Errorf("/metrics answers %d after metrics.enable=0, want 404 (applied live through OnReload)", code)
	}
}

// TestRestartServerShutsDownThenExecs: restartServer answers, then the
// server shuts down (its listeners refuse) before Berth executes itself
// again with the same arguments.
func TestRestartServerShutsDownThenExecs(t *testing.T) {
	srv, _ := startLive(t, nil)
	if runtime.GOOS == "windows" {
		if err := srv.RestartServer(); !errors.Is(err, server.ErrRestartUnsupported) {
			t.Errorf("windows: %v", err)
		}
		return
	}
	httpAddr := srv.Addr("http")
	type call struct {
		args     []string
		accepted bool
	}
	calls := make(chan call, 1)
	server.SetRestartExec(srv, time.Millisecond, func(exe string, args, env []string) error {
		c, err := net.DialTimeout("tcp", httpAddr, time.Second)
		if err == nil {
			c.Close()
		}
		calls <- call{args: args, accepted: err == nil}
		return nil
	})
	if err := srv.RestartServer(); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-calls:
		if strings.Join(c.args, " ") != strings.Join(os.Args, " ") {
			t.Errorf("exec args %q, want %q", c.args, os.Args)
		}
		if c.accepted {
			t.Error("the HTTP listener still accepted when Berth executed itself again")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RestartServer never executed Berth again")
	}
}

// listensHere reports whether this process still listens on addr's port.
func listensHere(t *testing.T, addr string) bool {
	p, err := strconv.Atoi(portOf(addr))
	if err != nil {
		t.Fatalf("port of %s: %v", addr, err)
	}
	return testutil.ListensHere(t, p)
}
