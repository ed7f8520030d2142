//go:build unix

package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/testutil"
)

func accepts(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

// TestSIGHUPReloadsTheFileWithTheFlagsOnTop: Berth runs on a ZLMediaKit
// style file (its own keys quiet: one info line), SIGHUP after the file's
// RTSP port changed moves RTSP there while the command-line flags still
// win over the file, and a file that no longer loads is reported while the
// running config stays.
func TestSIGHUPReloadsTheFileWithTheFlagsOnTop(t *testing.T) {
	bin := berthBinary(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "config.ini")
	p1, p2, rtmpPort := freePort(t), freePort(t), freePort(t)
	ini := "# ZLMediaKit's file, trimmed\n[general]\nlisten_ip=127.0.0.1\nmediaServerId=abc\n[hls]\nsegDur=2\n" +
		"[rtsp]\nport=" + strconv.Itoa(p1) + "\ndirectProxy=1\n[rtmp]\nport=" + strconv.Itoa(rtmpPort) + "\n[http]\nport=0\n[rtp_proxy]\nport=0\n[srt]\nport=0\n[rtc]\nport=0\n"
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path, "--rtmp-port", "0")
	var logs testutil.LogBuffer
	cmd.Stderr, cmd.Stdout = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	defer func() {
		if t.Failed() {
			t.Logf("berth's output:\n%s", logs.String())
		}
	}()
	a1, a2 := "127.0.0.1:"+strconv.Itoa(p1), "127.0.0.1:"+strconv.Itoa(p2)
	logs.WaitLine(t, "Berth is listening")
	if !accepts(a1) {
		t.Fatalf("RTSP does not accept on %s", a1)
	}
	if logs.Line("level=INFO", "ZLMediaKit keys are not used by Berth (yet)") == "" {
		t.Error("no info line counts the ZLMediaKit keys Berth does not use")
	}
	if line := logs.Line("level=WARN", "config:"); line != "" {
		t.Errorf("a ZLMediaKit key was warned about: %s", line)
	}

	if err := config.SetKeys(path, map[string]string{"rtsp.port": strconv.Itoa(p2)}); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	testutil.WaitFor(t, 10*time.Second, "RTSP to move to "+a2, func() bool { return accepts(a2) && !accepts(a1) })
	logs.WaitLine(t, "reload: [rtsp] port "+strconv.Itoa(p1)+" -> "+strconv.Itoa(p2)+": applied live")
	if strings.Contains(logs.String(), "[rtmp] port") || accepts("127.0.0.1:"+strconv.Itoa(rtmpPort)) {
		t.Error("the reload let the file's [rtmp] port win over --rtmp-port 0")
	}

	if err := os.WriteFile(path, []byte("[rtsp]\nport=abc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	logs.WaitLine(t, "level=ERROR", "the config does not load; the running config stays", "is not a number")
	if !accepts(a2) {
		t.Error("RTSP stopped after a bad reload")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("berth exited with %v after SIGTERM", err)
	}
}
