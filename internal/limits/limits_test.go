package limits_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/limits"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/testutil"
)

func newWarner() (*limits.Warner, *testutil.LogBuffer) {
	lb := &testutil.LogBuffer{}
	return &limits.Warner{Log: logging.New(lb, logging.LevelTrace)}, lb
}

// listen wraps a real listener on 127.0.0.1 with c and serves every
// accepted connection by holding it open until the peer closes it.
func listen(t *testing.T, c *limits.Conns, name string) string {
	t.Helper()
	raw, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := c.Listener(raw, name)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(io.Discard, nc)
				nc.Close()
			}()
		}
	}()
	return raw.Addr().String()
}

// closedByServer reports whether the server closed nc (a read gets EOF or
// a reset) within a second.
func closedByServer(nc net.Conn) bool {
	nc.SetReadDeadline(time.Now().Add(time.Second))
	_, err := nc.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err != nil
}

func TestConnsPerIPCapRefusesTheConnectionOverItAndLogsTheKey(t *testing.T) {
	w, lb := newWarner()
	c := &limits.Conns{Warn: w}
	c.Set(0, 2, false) // loopback held to the cap: the test's clients are on 127.0.0.x
	addr := listen(t, c, "rtsp")

	a := testutil.DialFrom(t, "127.0.0.2", addr)
	b := testutil.DialFrom(t, "127.0.0.2", addr)
	testutil.WaitFor(t, 2*time.Second, "two connections counted", func() bool {
		return c.OpenFrom(netip.MustParseAddr("127.0.0.2")) == 2
	})
	third := testutil.DialFrom(t, "127.0.0.2", addr)
	if !closedByServer(third) {
		t.Fatal("a third connection from 127.0.0.2 stayed open over max_connections_per_ip=2")
	}
	line := lb.WaitLine(t, "rtsp connection from 127.0.0.2 refused", "max_connections_per_ip")
	if !strings.Contains(line, "raise [general] max_connections_per_ip") {
		t.Errorf("the line does not say which key to raise: %s", line)
	}
	// Another address is not affected.
	other := testutil.DialFrom(t, "127.0.0.3", addr)
	if closedByServer(other) {
		t.Fatal("a connection from 127.0.0.3 was refused by 127.0.0.2's cap")
	}
	// A closed connection frees its place.
	a.Close()
	testutil.WaitFor(t, 2*time.Second, "the closed connection released", func() bool {
		return c.OpenFrom(netip.MustParseAddr("127.0.0.2")) == 1
	})
	again := testutil.DialFrom(t, "127.0.0.2", addr)
	if closedByServer(again) {
		t.Fatal("a connection after one closed was refused")
	}
	_ = b
}

func TestConnsTotalCapCountsEveryListener(t *testing.T) {
	w, lb := newWarner()
	c := &limits.Conns{Warn: w}
	c.Set(2, 0, true)
	rtsp := listen(t, c, "rtsp")
	http := listen(t, c, "http")
	testutil.DialFrom(t, "127.0.0.1", rtsp)
	testutil.DialFrom(t, "127.0.0.1", http)
	testutil.WaitFor(t, 2*time.Second, "two connections counted", func() bool { return c.Open() == 2 })
	third := testutil.DialFrom(t, "127.0.0.1", rtsp)
	if !closedByServer(third) {
		t.Fatal("a third connection stayed open over max_connections=2")
	}
	lb.WaitLine(t, "refused", "raise [general] max_connections ")
}

func TestConnsLoopbackExemptFromPerIPCap(t *testing.T) {
	c := &limits.Conns{}
	c.Set(0, 1, true)
	addr := listen(t, c, "rtmp")
	testutil.DialFrom(t, "127.0.0.1", addr)
	second := testutil.DialFrom(t, "127.0.0.1", addr)
	if closedByServer(second) {
		t.Fatal("a loopback client was held to max_connections_per_ip with limits_exempt_loopback=1")
	}
}

func TestWarnerHoldsBackRepeatsAndCountsThem(t *testing.T) {
	w, lb := newWarner()
	w.Every = time.Hour
	if !w.Warn("rtsp.a", "", "first") {
		t.Fatal("the first warning was not logged")
	}
	for range 5 {
		if w.Warn("rtsp.a", "", "again") {
			t.Fatal("a repeat within Every was logged")
		}
	}
	if !w.Warn("rtsp.a", "8554", "other scope") {
		t.Fatal("a warning of another scope was held back")
	}
	if !w.Warn("rtsp.b", "", "other limit") {
		t.Fatal("a warning of another limit was held back")
	}
	if n := strings.Count(lb.String(), "\n"); n != 3 {
		t.Fatalf("%d lines logged, want 3:\n%s", n, lb.String())
	}
	if !strings.Contains(lb.String(), "limit=rtsp.a") {
		t.Errorf("the line does not name its limit:\n%s", lb.String())
	}
	// Every refusal counts, logged or held back.
	if got := w.Counts(); got["rtsp.a"] != 7 || got["rtsp.b"] != 1 || len(got) != 2 {
		t.Errorf("counts %v, want rtsp.a 7, rtsp.b 1", got)
	}
	var quiet limits.Warner // no Log: counts only
	quiet.Warn("rtsp.a", "", "x")
	if quiet.Counts()["rtsp.a"] != 1 {
		t.Error("a Warner without a logger did not count")
	}
}

func TestRateTokenBucket(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.1")
	for _, tc := range []struct {
		name          string
		perSec        float64
		burst         int
		exempt        bool
		ip            netip.Addr
		calls         int
		allowed       int
		wantRetryOver time.Duration
	}{
		{"burst then refused", 1, 3, false, ip, 5, 3, 0},
		{"off", 0, 1, false, ip, 50, 50, 0},
		{"loopback exempt", 1, 1, true, netip.MustParseAddr("127.0.0.1"), 10, 10, 0},
		{"loopback held when not exempt", 1, 1, false, netip.MustParseAddr("::1"), 3, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &limits.Rate{}
			r.Set(tc.perSec, tc.burst, tc.exempt)
			got := 0
			var wait time.Duration
			for range tc.calls {
				ok, w := r.Allow(tc.ip)
				if ok {
					got++
				} else {
					wait = w
				}
			}
			if got != tc.allowed {
				t.Fatalf("%d of %d calls allowed, want %d", got, tc.calls, tc.allowed)
			}
			if got < tc.calls && (wait <= 0 || wait > time.Second) {
				t.Fatalf("retry after %s, want within (0, 1s] at 1/s", wait)
			}
		})
	}
}

func TestRateHandlerAnswers429WithRetryAfterAndLogs(t *testing.T) {
	w, lb := newWarner()
	r := &limits.Rate{Warn: w}
	r.Set(1, 2, false)
	h := r.Handler("api", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	srv := httptest.NewServer(h)
	defer srv.Close()
	var codes []int
	var retry string
	for range 3 {
		res, err := http.Get(srv.URL + "/index/api/getMediaList")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		codes = append(codes, res.StatusCode)
		retry = res.Header.Get("Retry-After")
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Fatalf("status codes %v, want 200 200 429", codes)
	}
	if retry != "1" {
		t.Fatalf("Retry-After %q, want 1", retry)
	}
	lb.WaitLine(t, "api request from 127.0.0.1 over the rate limit", "max_requests_per_second")
}

func TestBodyHandlerAnswers413OverTheCap(t *testing.T) {
	w, lb := newWarner()
	h := limits.BodyHandler(16, "http.maxReqSize", w, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
		}
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tc := range []struct {
		body string
		want int
	}{{"small", 200}, {strings.Repeat("x", 17), 413}} {
		res, err := http.Post(srv.URL, "text/plain", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("%d-byte body: status %d, want %d", len(tc.body), res.StatusCode, tc.want)
		}
	}
	lb.WaitLine(t, "17-byte body, over [http] maxReqSize=16", "answered 413")
}

// serveHTTP runs a net/http server with the given head limits on an HTTP
// listener of c.
func serveHTTP(t *testing.T, c *limits.Conns, w *limits.Warner, maxHeader int, headerTimeout time.Duration) string {
	t.Helper()
	raw, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }),
		MaxHeaderBytes: maxHeader, ReadHeaderTimeout: headerTimeout, IdleTimeout: headerTimeout}
	go srv.Serve(c.HTTPListener(raw, "http", w))
	t.Cleanup(func() { srv.Close() })
	return raw.Addr().String()
}

func TestHTTPSlowHeadIsCutOffAndLogged(t *testing.T) {
	w, lb := newWarner()
	addr := serveHTTP(t, &limits.Conns{}, w, 4096, 500*time.Millisecond)
	nc := testutil.DialFrom(t, "127.0.0.1", addr)
	// A slowloris client: the head, one byte at a time, never finished.
	start := time.Now()
	head := "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		for i := 0; ; i++ {
			if _, err := nc.Write([]byte{head[i%len(head)]}); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
			if time.Since(start) > 5*time.Second {
				return
			}
		}
	}()
	line := lb.WaitLine(t, "http request from 127.0.0.1 did not arrive in time", "header_timeout_sec")
	if !strings.Contains(line, "Raise [http] header_timeout_sec") {
		t.Errorf("the line does not name the key: %s", line)
	}
	<-closed
	if time.Since(start) > 4*time.Second {
		t.Fatalf("the slow client was kept %s with a 500 ms head timeout", time.Since(start))
	}
}

func TestHTTPIdleKeepAliveTimeoutIsNotLoggedAsSlow(t *testing.T) {
	w, lb := newWarner()
	addr := serveHTTP(t, &limits.Conns{}, w, 4096, 200*time.Millisecond)
	nc := testutil.DialFrom(t, "127.0.0.1", addr)
	nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	br := bufio.NewReader(nc)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if !testutil.ClosedWithin(nc, 3*time.Second) { // idle: IdleTimeout closes it
		t.Fatal("the idle connection was not closed")
	}
	if strings.Contains(lb.String(), "did not arrive in time") {
		t.Fatalf("an idle keep-alive connection was logged as a slow head:\n%s", lb.String())
	}
}

func TestHTTPHeadOverMaxHeaderBytesIs431AndLogged(t *testing.T) {
	w, lb := newWarner()
	addr := serveHTTP(t, &limits.Conns{}, w, 1024, 5*time.Second)
	nc := testutil.DialFrom(t, "127.0.0.1", addr)
	go nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nCookie: " + strings.Repeat("a", 8192) + "\r\n\r\n"))
	nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	status, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(status, "HTTP/1.1 431") {
		t.Fatalf("status line %q, want 431", status)
	}
	lb.WaitLine(t, "has a head over [http] max_header_bytes", "answered 431")
}
