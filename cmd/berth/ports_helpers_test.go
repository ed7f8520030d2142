package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/testutil"
)

// portHolderBinary builds the test helper that holds ports in a separate
// process (internal/ports/internal/portholder), once per test process.
func portHolderBinary(t *testing.T) string {
	t.Helper()
	return testutil.GoBinary(t, "github.com/berthmedia/berth/internal/ports/internal/portholder")
}

// startPortHolder runs portholder with args until the test ends and returns its pid.
func startPortHolder(t *testing.T, args ...string) int {
	t.Helper()
	cmd := exec.Command(portHolderBinary(t), args...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- l
		io.Copy(io.Discard, stdout)
	}()
	select {
	case l := <-line:
		if !strings.HasPrefix(l, "ready") {
			t.Fatalf("portholder %v: %q", args, l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("portholder did not start")
	}
	return cmd.Process.Pid
}

// berthConfig writes a config with the given ports (0 = off); SRT is off.
func berthConfig(t *testing.T, listenIP string, rtsp, rtmp, http, rtp int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "berth.ini")
	text := fmt.Sprintf("[general]\nlisten_ip=%s\n[rtsp]\nport=%d\n[rtmp]\nport=%d\n[http]\nport=%d\n[rtp_proxy]\nport=%d\n[srt]\nport=0\n[rtc]\nport=0\n", listenIP, rtsp, rtmp, http, rtp)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runBerth runs the binary to completion (10 s at most) and returns its
// exit code, combined output and how long it ran.
func runBerth(t *testing.T, args ...string) (int, string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, berthBinary(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), d
}

// servingBerth is a berth process running until the test ends.
type servingBerth struct {
	pid  int
	logs *testutil.LogBuffer
}

// startBerth runs berth with args and waits until the banner is printed.
func startBerth(t *testing.T, args ...string) *servingBerth {
	t.Helper()
	cmd := exec.Command(berthBinary(t), args...)
	logs := &testutil.LogBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(logs.String(), "Berth is listening") {
		select {
		case <-done:
			t.Fatalf("berth exited:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("berth did not print its banner:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &servingBerth{pid: cmd.Process.Pid, logs: logs}
}

func hasIPv6Loopback() bool {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}
