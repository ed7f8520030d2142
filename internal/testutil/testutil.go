// Package testutil holds what Berth's tests share: a log buffer to assert on
// and a poll-with-deadline wait, so no test sleeps for a fixed time.
package testutil

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

var (
	binMu    sync.Mutex
	binPaths = map[string]string{}
	binDir   string
)

// GoBinary builds the Go package pkg (an import path, or "." for the test's
// own package) once per test process and returns the executable's path, for
// tests that run Berth or a helper as a real process.
func GoBinary(t testing.TB, pkg string) string {
	t.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	if p, ok := binPaths[pkg]; ok {
		return p
	}
	if binDir == "" {
		d, err := os.MkdirTemp("", "berth-test-bin-")
		if err != nil {
			t.Fatal(err)
		}
		binDir = d
	}
	// The executable keeps its package's name (tests look for the process
	// name), in a directory of its own.
	name := filepath.Base(pkg)
	if pkg == "." {
		name = "berth"
	}
	dir := filepath.Join(binDir, fmt.Sprint(len(binPaths)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if out, err := exec.Command("go", "build", "-o", p, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	binPaths[pkg] = p
	return p
}
