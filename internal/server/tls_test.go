package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/berthmedia/berth/internal/certs"
	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/ports/ident"
	berthprobe "github.com/berthmedia/berth/internal/probe"
	"github.com/berthmedia/berth/internal/server"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// startTLS starts a server with every TLS listener on (ephemeral ports)
// serving the certificate of tc.
func startTLS(t *testing.T, tc *testutil.TestCert, mod func(*config.Config)) (*server.Server, *testutil.LogBuffer) {
	t.Helper()
	cfg := config.Default()
	cfg.General.ListenIP = "127.0.0.1"
	cfg.API.Secret = "s3cret"
	cfg.TLS = config.TLS{HTTPPort: 8443, RTSPPort: 322, RTMPPort: 1936, Cert: tc.File}
	if mod != nil {
		mod(cfg)
	}
	return startServer(t, cfg, logging.NewLevel("debug"))
}

// httpsClient trusts tc's certificate and nothing else.
func httpsClient(tc *testutil.TestCert) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc.ClientConfig()}}
}

func getOK(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", url, res.Status, body)
	}
	return res, string(body)
}

// TestHTTPSServesEveryHTTPURL: with a certificate, the HTTPS port serves
// what the HTTP port does, to a client that verifies the certificate: the
// health path, the API, the status page; and an RTMPS push is played over
// https as HTTP-FLV, HTTP-fMP4, HTTP-TS (event-driven: see
// TestHTTPSPlayersAreEventDriven) and HLS by ffprobe, and over
// wss:// as WS-fMP4 and WS-FLV. The self-probe proved every TLS listener at start.
func TestHTTPSServesEveryHTTPURL(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	tc := testutil.NewTestCert(t, false)
	srv, logs := startTLS(t, tc, nil)
	if line := logs.Line("level=ERROR"); line != "" {
		t.Errorf("start logged an error: %s", line)
	}
	base := "https://" + srv.Addr("https")
	c := httpsClient(tc)

	res, body := getOK(t, c, base+"/berth/health")
	if res.Header.Get("X-Berth-Instance") != srv.Instance || res.TLS == nil {
		t.Errorf("health over https: instance %q TLS %v, want %s", res.Header.Get("X-Berth-Instance"), res.TLS != nil, srv.Instance)
	}
	if _, body = getOK(t, c, base+"/index/api/getServerConfig?secret=s3cret"); !strings.Contains(body, `"http.sslport"`) {
		t.Errorf("getServerConfig over https lacks http.sslport: %.300s", body)
	}
	if res, _ = getOK(t, c, base+"/"); !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Errorf("status page over https: Content-Type %q", res.Header.Get("Content-Type"))
	}
	if _, body = getOK(t, c, base+"/berth/status.json?secret=s3cret"); !strings.Contains(body, `"https/tcp"`) {
		t.Errorf("status.json does not list the https listener: %.400s", body)
	}

	run(t, "-re", "-stream_loop", "-1", "-i", testmedia.File(t, testmedia.H264AAC), "-c", "copy", "-f", "flv",
		"rtmps://"+srv.Addr("rtmps")+"/live/s")
	waitPublished(t, srv, "live/s")
	var wg sync.WaitGroup // one ffprobe per URL at once: HLS waits for its first segments
	for _, u := range []string{"/live/s.live.flv", "/live/s.live.mp4", "/live/s.live.ts", "/live/s/hls.m3u8", "/live/s/hls.fmp4.m3u8"} {
		wg.Go(func() {
			// ffmpeg does not verify certificates by default (-tls_verify 0).
			got, err := probe(base + u)
			if err != nil || !strings.Contains(got, "h264") || !strings.Contains(got, "aac") {
				t.Errorf("ffprobe %s: %q %v, want h264 and aac", base+u, got, err)
			}
		})
	}
	wg.Wait()

	d := websocket.Dialer{TLSClientConfig: tc.ClientConfig(), HandshakeTimeout: 5 * time.Second}
	ws, _, err := d.Dial("wss://"+srv.Addr("https")+"/live/s.live.mp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := ws.ReadMessage()
	if err != nil || len(msg) < 8 || string(msg[4:8]) != "ftyp" {
		t.Fatalf("first wss:// fMP4 message: %d bytes %q, %v; want the init segment (ftyp)", len(msg), msg[:min(len(msg), 8)], err)
	}

	wf, _, err := d.Dial("wss://"+srv.Addr("https")+"/live/s.live.flv", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer wf.Close()
	wf.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, msg, err := wf.ReadMessage(); err != nil || len(msg) < 3 || string(msg[:3]) != "FLV" {
		t.Fatalf("first wss:// FLV message: %d bytes, %v; want the FLV header", len(msg), err)
	}

	// A player over HTTPS is listed as ZLMediaKit lists one: its TLS session.
	players := list(api(t, srv, "getMediaPlayerList", "schema", "fmp4", "vhost", "__defaultVhost__", "app", "live", "stream", "s"))
	if len(players) != 1 || players[0]["typeid"] != "toolkit::SessionWithSSL<mediakit::HttpSession>" || players[0]["local_port"] != port(srv.Addr("https")) {
		t.Errorf("fMP4 players over wss: %v, want one SessionWithSSL<HttpSession> on the https port", players)
	}
	if line := logs.Line("level=ERROR"); line != "" {
		t.Errorf("a TLS player logged an error: %s", line)
	}
}

// TestRTSPSPushAndPlay: ffmpeg pushes over RTSPS (interleaved TCP) and
// ffprobe reads it back over RTSPS and RTMPS; a UDP SETUP over RTSPS is
// refused with 461 and a log line that says to use TCP.
func TestRTSPSPushAndPlay(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	tc := testutil.NewTestCert(t, false)
	srv, logs := startTLS(t, tc, func(c *config.Config) { c.TLS.HTTPPort = 0 })
	if srv.Addr("https") != "" {
		t.Errorf("https listens on %s with [http] sslport=0", srv.Addr("https"))
	}
	run(t, "-re", "-stream_loop", "-1", "-i", testmedia.File(t, testmedia.H264AAC), "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp",
		"rtsps://"+srv.Addr("rtsps")+"/live/r")
	waitPublished(t, srv, "live/r")
	for _, u := range []string{"rtsps://" + srv.Addr("rtsps") + "/live/r", "rtmps://" + srv.Addr("rtmps") + "/live/r"} {
		got, err := probe(u)
		if err != nil || got != "h264,aac" {
			t.Errorf("ffprobe %s: %q %v, want h264,aac", u, got, err)
		}
	}
	// ffmpeg's rtsps:// never asks for UDP: ask as another client might.
	conn, err := tls.Dial("tcp", srv.Addr("rtsps"), tc.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rep, err := ident.RTSPRequest(ctx, conn, "SETUP", "rtsps://"+srv.Addr("rtsps")+"/live/r/trackID=0", 1,
		map[string]string{"Transport": "RTP/AVP;unicast;client_port=40000-40001"})
	if err != nil || rep.Code != 461 {
		t.Errorf("UDP SETUP over RTSPS: %+v %v, want 461 Unsupported Transport", rep, err)
	}
	logs.WaitLine(t, "UDP SETUP over RTSPS", "461", "TCP")
}

// TestTLSListenersNeedACertificate: without one, no TLS listener opens;
// Berth's default port says nothing about it, ZLMediaKit's sslport=443 says
// it in one info line with the fix.
func TestTLSListenersNeedACertificate(t *testing.T) {
	for _, tc := range []struct {
		name string
		ini  string
		line bool
	}{{"Berth's defaults", "", false}, {"ZLMediaKit's config.ini", "[http]\nsslport=443\n", true}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			if err := cfg.Parse(strings.NewReader(tc.ini), "config.ini"); err != nil {
				t.Fatal(err)
			}
			srv, logs := startLive(t, cfg)
			if a := srv.Addr("https"); a != "" {
				t.Errorf("https listens on %s without a certificate", a)
			}
			line := logs.Line("tls:")
			if tc.line != (line != "") || (tc.line && !strings.Contains(line, "-s FILE.pem")) {
				t.Errorf("tls log line %q, want one: %v", line, tc.line)
			}
		})
	}
}

// TestBadCertificateRefusesTheStart: a TLS listener asked for with a
// certificate Berth cannot use is one error naming the file, the cause and
// the fix, and nothing listens.
func TestBadCertificateRefusesTheStart(t *testing.T) {
	good := testutil.NewTestCert(t, false)
	missing := t.TempDir() + "/missing.pem"
	for _, tc := range []struct {
		name, cert string
		want       []string
	}{
		{"missing file", missing, []string{missing, "no such file", "openssl req -x509"}},
		{"certificate without its key", good.Cert, []string{good.Cert, "no private key", "[http] sslKey"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.General.ListenIP = "127.0.0.1"
			cfg.HTTP.Port = freePort(t)
			cfg.TLS.Cert = tc.cert
			srv := server.New(cfg, logging.New(io.Discard, logging.NewLevel("info")))
			err := srv.Start()
			var ce *certs.Error
			if !errors.As(err, &ce) {
				srv.Shutdown(context.Background())
				t.Fatalf("Start: %v, want a *certs.Error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.HTTP.Port)))
			if err != nil {
				t.Fatalf("the HTTP port is bound after a refused start: %v", err)
			}
			l.Close()
		})
	}
}

// TestReloadSwapsTheCertificateAndMovesTheSSLPort: SIGHUP after the file
// was renewed serves the new certificate to new handshakes (a client that
// trusts only it gets in); a certificate that does not load fails the
// reload and the old one stays; setServerConfig of http.sslCert swaps it
// too; a changed sslport moves HTTPS.
func TestReloadSwapsTheCertificateAndMovesTheSSLPort(t *testing.T) {
	first, second := testutil.NewTestCert(t, false), testutil.NewTestCert(t, false)
	file := t.TempDir() + "/berth.pem"
	copyFile(t, first.File, file)
	srv, _ := startTLS(t, &testutil.TestCert{File: file}, func(c *config.Config) { c.TLS.RTSPPort, c.TLS.RTMPPort = 0, 0 })
	handshake := func(addr string, tc *testutil.TestCert) error {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, tc.ClientConfig())
		if err == nil {
			conn.Close()
		}
		return err
	}
	if err := handshake(srv.Addr("https"), second); err == nil {
		t.Fatal("a client trusting only the second certificate got in before the reload")
	}

	copyFile(t, second.File, file)
	rep, err := srv.Reload(srv.CurrentConfig().Clone())
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := rep.Key("http.sslCert"); !ok || !c.Live || !strings.Contains(c.Note, "new certificate") {
		t.Errorf("reload report %+v, want http.sslCert applied live as a new certificate", rep.Changes)
	}
	if err := handshake(srv.Addr("https"), second); err != nil {
		t.Errorf("after the reload, a client trusting the new certificate: %v", err)
	}

	bad := srv.CurrentConfig().Clone()
	bad.TLS.Cert = second.Cert // no key in it
	if _, err := srv.Reload(bad); err == nil || !strings.Contains(err.Error(), "no private key") {
		t.Errorf("reload to a certificate without key: %v, want it refused naming the missing key", err)
	}
	if err := handshake(srv.Addr("https"), second); err != nil {
		t.Errorf("after a refused reload: %v", err)
	}

	// setServerConfig (the API's) goes through the same reload.
	if n, err := srv.SetServerConfig(map[string]string{"http.sslCert": first.File}); err != nil || n != 1 {
		t.Fatalf("setServerConfig http.sslCert: %d changed, %v", n, err)
	}
	if err := handshake(srv.Addr("https"), first); err != nil {
		t.Errorf("after setServerConfig http.sslCert: %v", err)
	}

	moved := srv.CurrentConfig().Clone()
	moved.TLS.HTTPPort = freePort(t)
	rep, err = srv.Reload(moved)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := rep.Key("http.sslport"); !ok || !c.Live || !strings.HasSuffix(srv.Addr("https"), ":"+c.New) {
		t.Fatalf("reload of http.sslport: %+v, https at %s", c, srv.Addr("https"))
	}
	if _, body := getOK(t, httpsClient(first), "https://"+srv.Addr("https")+"/berth/health"); !strings.Contains(body, srv.Instance) {
		t.Errorf("health on the moved HTTPS port: %s", body)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestProbeSpeaksTLS: berth probe shakes hands on rtsps://, rtmps:// and
// https:// URLs, names a certificate verifying clients refuse as that,
// still identifies Berth and the stream behind it, and calls a plain port
// given a TLS scheme what it is.
func TestProbeSpeaksTLS(t *testing.T) {
	tc := testutil.NewTestCert(t, false)
	srv, _ := startTLS(t, tc, nil)
	for _, c := range []struct {
		url  string
		code int
		want []string
	}{
		{"rtsps://" + srv.Addr("rtsps") + "/live/none", berthprobe.ExitNotPlayable, []string{"tls       WARN: clients that verify", "server    Berth", "no stream at /live/none"}},
		{"rtmps://" + srv.Addr("rtmps") + "/live/none", berthprobe.ExitNotPlayable, []string{"tls       WARN", "server    Berth"}},
		{"https://" + srv.Addr("https") + "/live/none.live.flv", berthprobe.ExitNotPlayable, []string{"tls       WARN", "server    Berth", "then play https://"}},
		{"rtsps://" + srv.Addr("rtsp") + "/live/none", berthprobe.ExitNotPlayable, []string{"tls       FAIL: TLS handshake", "does not look like a TLS handshake"}},
	} {
		var out strings.Builder
		code := berthprobe.Run(context.Background(), c.url, &out, berthprobe.Options{StepTimeout: 3 * time.Second})
		for _, w := range c.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("probe %s lacks %q:\n%s", c.url, w, out.String())
			}
		}
		if code != c.code {
			t.Errorf("probe %s: exit %d, want %d", c.url, code, c.code)
		}
	}
}
