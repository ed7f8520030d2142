package proxy

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/testutil"
)

// TestRetryCountStopsThePull: a source that refuses every connection is
// tried 1 + retry_count times, each failure logged with its cause, then
// the pull stops with the cause in its status.
func TestRetryCountStopsThePull(t *testing.T) {
	logs := &testutil.LogBuffer{}
	m := &Manager{Hub: hub.New(hub.Options{}), Log: logging.New(logs, slog.LevelDebug),
		BackoffMin: time.Millisecond, BackoffMax: 4 * time.Millisecond}
	t.Cleanup(m.Close)
	t.Cleanup(m.Hub.Close)
	key, err := m.Add(Spec{Path: "pull/dead", URL: "rtsp://" + testutil.ClosedAddr(t) + "/s", RetryCount: 2, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var in Info
	testutil.WaitFor(t, 5*time.Second, "the pull to stop", func() bool {
		in, _ = m.Get(key)
		return in.State == StateStopped
	})
	if in.Retries != 3 || !strings.Contains(in.Cause, "connection refused") || !strings.HasPrefix(in.Summary(), "stopped: connection refused") {
		t.Errorf("status after retry_count=2: %+v (%s)", in, in.Summary())
	}
	if n := strings.Count(logs.String(), "pull failed; retrying"); n != 2 {
		t.Errorf("%d retry lines, want 2 (the third failure stops it)\n%s", n, logs)
	}
	logs.WaitLine(t, "pull stopped", "retry_count=2", "fix=")
	if _, err := m.Add(Spec{Path: "pull/dead", URL: "rtsp://h/s"}); err == nil {
		t.Errorf("a second pull of the same path was accepted")
	}
	if !m.Delete(key) || m.Delete(key) {
		t.Errorf("Delete did not report the pull once")
	}
}

// TestForeverRetriesQuietDown: past the first attempts a source that keeps
// failing for the same cause logs at DEBUG, every tenth time at WARN.
func TestForeverRetriesQuietDown(t *testing.T) {
	logs := &testutil.LogBuffer{}
	m := &Manager{Hub: hub.New(hub.Options{}), Log: logging.New(logs, slog.LevelDebug),
		BackoffMin: time.Millisecond, BackoffMax: time.Millisecond}
	t.Cleanup(m.Close)
	t.Cleanup(m.Hub.Close)
	key, _ := m.Add(Spec{Path: "pull/dead", URL: "rtsp://" + testutil.ClosedAddr(t) + "/s", RetryCount: -1})
	testutil.WaitFor(t, 5*time.Second, "12 retries", func() bool {
		in, _ := m.Get(key)
		return in.Retries >= 12
	})
	m.Delete(key)
	warn := strings.Count(logs.String(), "level=WARN msg=\"pull failed; retrying\"")
	debug := strings.Count(logs.String(), "level=DEBUG msg=\"pull failed; retrying\"")
	n := warn + debug // attempts 1..n were logged
	if want := min(n, 3) + n/10; n < 12 || warn != want {
		t.Errorf("%d WARN and %d DEBUG retry lines; want WARN for attempts 1-3 and every tenth (%d)", warn, debug, want)
	}
}
