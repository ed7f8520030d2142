package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/server"
	"github.com/berthmedia/berth/internal/testutil"
)

// Limits against abuse end to end (docs/reliability.md#limits-against-abuse):
// Berth started from config keys, real sockets, the refusal on the wire and
// its line in the log.

// startLimited starts Berth on ephemeral ports with the keys set as a
// config file would set them.
func startLimited(t *testing.T, keys map[string]string) (*server.Server, *testutil.LogBuffer) {
	t.Helper()
	cfg := config.Default()
	cfg.General.ListenIP = "127.0.0.1"
	cfg.API.Secret = "s3cret"
	cfg.SRT.Port, cfg.RTC.Port = 0, 0
	for k, v := range keys {
		if err := cfg.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	return startServer(t, cfg, logging.LevelTrace)
}

func TestConnectionsPerIPAreCappedOverEveryListener(t *testing.T) {
	srv, logs := startLimited(t, map[string]string{
		"general.max_connections_per_ip": "2",
		"general.limits_exempt_loopback": "0",
	})
	// Two connections from 127.0.0.2 on two protocols fill its share ...
	testutil.DialFrom(t, "127.0.0.2", srv.Addr("rtsp"))
	testutil.DialFrom(t, "127.0.0.2", srv.Addr("http"))
	testutil.WaitFor(t, 3*time.Second, "both connections listed", func() bool {
		n := 0
		for _, s := range srv.Sessions.List() {
			if s.PeerIP == "127.0.0.2" {
				n++
			}
		}
		return n == 2
	})
	// ... so a third, on a third protocol, is closed at once,
	third := testutil.DialFrom(t, "127.0.0.2", srv.Addr("rtmp"))
	if !testutil.ClosedWithin(third, 2*time.Second) {
		t.Fatal("a third connection from 127.0.0.2 stayed open with max_connections_per_ip=2")
	}
	logs.WaitLine(t, "rtmp connection from 127.0.0.2 refused", "raise [general] max_connections_per_ip")
	// while another address still gets in.
	other := testutil.DialFrom(t, "127.0.0.3", srv.Addr("rtmp"))
	if testutil.ClosedWithin(other, 300*time.Millisecond) {
		t.Fatal("a connection from 127.0.0.3 was refused")
	}
}

func TestLoopbackIsExemptFromThePerIPCapByDefault(t *testing.T) {
	srv, _ := startLimited(t, map[string]string{"general.max_connections_per_ip": "1"})
	testutil.DialFrom(t, "127.0.0.1", srv.Addr("rtsp"))
	second := testutil.DialFrom(t, "127.0.0.1", srv.Addr("rtsp"))
	if testutil.ClosedWithin(second, 300*time.Millisecond) {
		t.Fatal("a second loopback connection was refused with limits_exempt_loopback at its default (1)")
	}
}

func TestHTTPSlowHeadIsCutOffAtHeaderTimeout(t *testing.T) {
	srv, logs := startLimited(t, map[string]string{"http.header_timeout_sec": "1"})
	nc := testutil.DialFrom(t, "127.0.0.1", srv.Addr("http"))
	start := time.Now()
	go func() { // slowloris: a request head a byte every 100 ms, never ended
		head := "GET /index/api/getMediaList HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 100)
		for i := range len(head) {
			if _, err := nc.Write([]byte{head[i]}); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond) // the client's pace, not a wait for the server
		}
	}()
	if !testutil.ClosedWithin(nc, 5*time.Second) {
		t.Fatal("a slow HTTP head was not cut off")
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("cut off after %s with header_timeout_sec=1", d)
	}
	logs.WaitLine(t, "http request from 127.0.0.1 did not arrive in time", "Raise [http] header_timeout_sec")
}

func TestHTTPHeadOverMaxHeaderBytesIs431(t *testing.T) {
	srv, logs := startLimited(t, map[string]string{"http.max_header_bytes": "1024"})
	nc := testutil.DialFrom(t, "127.0.0.1", srv.Addr("http"))
	// net/http allows 4 KB over MaxHeaderBytes before it refuses.
	go fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: x\r\nCookie: %s\r\n\r\n", strings.Repeat("c", 8<<10))
	nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	status, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 431") {
		t.Fatalf("status %q (%v), want 431", status, err)
	}
	logs.WaitLine(t, "has a head over [http] max_header_bytes", "answered 431")
}

func TestAPIBodyOverMaxReqSizeIs413(t *testing.T) {
	srv, logs := startLimited(t, map[string]string{"http.maxReqSize": "1024"})
	body := strings.NewReader("secret=s3cret&pad=" + strings.Repeat("p", 2000))
	res, err := http.Post("http://"+srv.Addr("http")+"/index/api/getMediaList", "application/x-www-form-urlencoded", body)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", res.StatusCode)
	}
	logs.WaitLine(t, "over [http] maxReqSize=1024", "answered 413", "limit=http.maxReqSize")
	wantLimitRefusals(t, srv, "limit=http.maxReqSize", 1)
}

// wantLimitRefusals checks berth_limit_refusals_total's series of label.
func wantLimitRefusals(t *testing.T, srv *server.Server, label string, want float64) {
	t.Helper()
	got := seriesOf(scrapeMetrics(t, "http://"+srv.Addr("http")+"/metrics"), "berth_limit_refusals_total")
	if got[label] != want {
		t.Errorf("berth_limit_refusals_total{%s} = %v, want %v (all: %v)", label, got[label], want, got)
	}
}

func TestAPIRateIsLimitedPerIPWith429(t *testing.T) {
	srv, logs := startLimited(t, map[string]string{
		"api.max_requests_per_second":    "1",
		"api.max_request_burst":          "2",
		"general.limits_exempt_loopback": "0",
	})
	url := "http://" + srv.Addr("http") + "/index/api/getMediaList?secret=s3cret"
	var codes []int
	var retry string
	for range 3 {
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		codes = append(codes, res.StatusCode)
		retry = res.Header.Get("Retry-After")
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 || retry == "" {
		t.Fatalf("status codes %v, Retry-After %q; want 200 200 429 with Retry-After", codes, retry)
	}
	logs.WaitLine(t, "api request from 127.0.0.1 over the rate limit", "Raise [api] max_requests_per_second")
	wantLimitRefusals(t, srv, "limit=api.max_requests_per_second", 1)
	// The players on the same port are not rate limited: only the API is.
	for range 3 {
		res, err := http.Get("http://" + srv.Addr("http") + "/berth/health")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("/berth/health answered %d under the API's rate limit", res.StatusCode)
		}
	}
}

func TestRTSPBodyLimitComesFromTheConfig(t *testing.T) {
	srv, logs := startLimited(t, map[string]string{"rtsp.max_body_bytes": "1024"})
	nc := testutil.DialFrom(t, "127.0.0.1", srv.Addr("rtsp"))
	sdp := strings.Repeat("a=x:0123456789\r\n", 100)
	go fmt.Fprintf(nc, "ANNOUNCE rtsp://h/live/a RTSP/1.0\r\nCSeq: 1\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", len(sdp), sdp)
	nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	status, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "RTSP/1.0 413") {
		t.Fatalf("status %q (%v), want 413", status, err)
	}
	logs.WaitLine(t, "over [rtsp] max_body_bytes=1024")
}

func TestReloadChangesTheConnectionCapLive(t *testing.T) {
	srv, logs := startLimited(t, map[string]string{
		"general.max_connections_per_ip": "1",
		"general.limits_exempt_loopback": "0",
	})
	testutil.DialFrom(t, "127.0.0.2", srv.Addr("rtsp"))
	second := testutil.DialFrom(t, "127.0.0.2", srv.Addr("rtsp"))
	if !testutil.ClosedWithin(second, 2*time.Second) {
		t.Fatal("a second connection stayed open with max_connections_per_ip=1")
	}
	logs.WaitLine(t, "rtsp connection from 127.0.0.2 refused")
	next := srv.CurrentConfig().Clone()
	if err := next.Set("general.max_connections_per_ip", "3"); err != nil {
		t.Fatal(err)
	}
	rep, err := srv.Reload(next)
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Restart(); len(r) > 0 {
		t.Fatalf("the reload wants a restart for %v", r)
	}
	third := testutil.DialFrom(t, "127.0.0.2", srv.Addr("rtsp"))
	if testutil.ClosedWithin(third, 300*time.Millisecond) {
		t.Fatal("a second connection was refused after the cap was raised to 3 by a reload")
	}
}

// TestSelfProbePassesTightCaps: the start's self-probe, several
// connections at once from loopback, is not held to the caps, so a tight
// cap with the loopback exemption off still starts without a probe error.
func TestSelfProbePassesTightCaps(t *testing.T) {
	_, logs := startLimited(t, map[string]string{
		"general.max_connections_per_ip": "1",
		"general.max_connections":        "1",
		"general.limits_exempt_loopback": "0",
	})
	if line := logs.Line("level=ERROR"); line != "" {
		t.Fatalf("the start logged an error: %s", line)
	}
	if line := logs.Line("refused"); line != "" {
		t.Fatalf("a self-probe connection was refused: %s", line)
	}
}
