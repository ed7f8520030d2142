// Package testutil holds what Berth's tests share: a log buffer to assert on
// and a poll-with-deadline wait, so no test sleeps for a fixed time.
package testutil

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// LogBuffer collects log output for assertions, safely across goroutines.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything logged so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Line returns the first line holding every part, or "".
func (l *LogBuffer) Line(parts ...string) string {
	for _, ln := range strings.Split(l.String(), "\n") {
		ok := true
		for _, p := range parts {
			if !strings.Contains(ln, p) {
				ok = false
				break
			}
		}
		if ok {
			return ln
		}
	}
	return ""
}

// WaitLine waits up to 5 s for a line holding every part and returns it.
func (l *LogBuffer) WaitLine(t testing.TB, parts ...string) string {
	t.Helper()
	var line string
	WaitFor(t, 5*time.Second, "a log line with "+strings.Join(parts, ", "), func() bool {
		line = l.Line(parts...)
		return line != ""
	})
	return line
}

// WaitFor polls cond every 10 ms until it holds, failing the test after d.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
