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

// TestFallbacksAreTriedInTurnAndATransientPullIsRemoved: two sources that
// refuse are tried one after the other, each failure logged once at WARN
// with its own URL; retry_count stops the pull, which, Transient, leaves
// the list with a line naming every source and the spec's fix.
func TestFallbacksAreTriedInTurnAndATransientPullIsRemoved(t *testing.T) {
	logs := &testutil.LogBuffer{}
	m := &Manager{Hub: hub.New(hub.Options{}), Log: logging.New(logs, slog.LevelDebug),
		BackoffMin: time.Millisecond, BackoffMax: time.Millisecond}
	t.Cleanup(m.Close)
	t.Cleanup(m.Hub.Close)
	a, b := "rtsp://"+testutil.ClosedAddr(t)+"/a", "rtmp://"+testutil.ClosedAddr(t)+"/live/b"
	key, err := m.Add(Spec{Path: "edge/x", URL: a, Fallbacks: []string{b}, RetryCount: 5, Timeout: time.Second,
		Transient: true, Fix: "look at the origins"})
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "the pull to give up and be removed", func() bool {
		_, ok := m.Get(key)
		return !ok
	})
	line := logs.WaitLine(t, "pull stopped", "edge/x")
	for _, want := range []string{"level=WARN", "sources=\"" + a + " " + b + "\"", "fix=\"look at the origins\""} {
		if !strings.Contains(line, want) {
			t.Errorf("the give-up line lacks %s: %s", want, line)
		}
	}
	for _, u := range []string{a, b} {
		if n := strings.Count(logs.String(), "level=WARN msg=\"pull failed; retrying\" key="+key+" url="+u+" "); n != 1 {
			t.Errorf("%s failed at WARN %d times, want once (then DEBUG)\n%s", u, n, logs)
		}
	}
	if n := strings.Count(logs.String(), "msg=\"pull failed; retrying\""); n != 5 {
		t.Errorf("%d retry lines, want 5 (the sixth failure spends retry_count=5)", n)
	}
	if _, err := m.Add(Spec{Path: "edge/x", URL: a}); err != nil {
		t.Errorf("the path is free again after the transient pull: %v", err)
	}
}

// TestGiveUpAfterEndsAPullThatRetriesForever: retry_count -1 with a
// deadline stops once the source stayed away that long.
func TestGiveUpAfterEndsAPullThatRetriesForever(t *testing.T) {
	logs := &testutil.LogBuffer{}
	m := &Manager{Hub: hub.New(hub.Options{}), Log: logging.New(logs, slog.LevelDebug),
		BackoffMin: 10 * time.Millisecond, BackoffMax: 10 * time.Millisecond}
	t.Cleanup(m.Close)
	t.Cleanup(m.Hub.Close)
	key, _ := m.Add(Spec{Path: "edge/y", URL: "rtsp://" + testutil.ClosedAddr(t) + "/y", RetryCount: -1, GiveUpAfter: 300 * time.Millisecond})
	testutil.WaitFor(t, 5*time.Second, "the pull to stop", func() bool {
		in, _ := m.Get(key)
		return in.State == StateStopped
	})
	logs.WaitLine(t, "pull stopped: the source stayed away longer than its readers wait", "edge/y")
}
