package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

func TestCLIExitCodes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := write("bad.ini", "[rtsp]\nport=70000\n")
	abc := write("abc.ini", "[http]\nport=abc\n")
	cases := []struct {
		name   string
		args   []string
		code   int
		output string // substring of stdout+stderr
	}{
		{"print config", []string{"--print-config"}, 0, "[rtsp]\n"},
		{"help", []string{"--help"}, 0, "Exit codes"},
		{"version", []string{"version"}, 0, "berth "},
		{"port out of range in file", []string{"-c", bad}, 2, "bad.ini:2: [rtsp] port: 70000 is out of range"},
		{"port not a number in file", []string{"-c", abc}, 2, "abc.ini:2: [http] port: \"abc\" is not a number"},
		{"missing file", []string{"-c", filepath.Join(dir, "none.ini")}, 2, "cannot read config"},
		{"bad flag value", []string{"--rtsp-port", "abc"}, 2, "--rtsp-port"},
		{"unknown flag", []string{"--nope"}, 2, "flag provided but not defined"},
		{"stray argument", []string{"stray"}, 2, "unexpected argument"},
		// A certificate is checked before any port binds, so these never listen.
		{"missing certificate", []string{"-s", filepath.Join(dir, "none.pem")}, 2, "tls: cannot use the certificate " + filepath.Join(dir, "none.pem") + ": no such file"},
		{"doctor, missing certificate", []string{"doctor", "-s", filepath.Join(dir, "none.pem")}, 2, "openssl req -x509"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(c.args, &out, &errb)
			all := out.String() + errb.String()
			if code != c.code || !strings.Contains(all, c.output) {
				t.Errorf("exit %d, want %d; output should contain %q:\n%s", code, c.code, c.output, all)
			}
		})
	}
}

// berthBinary builds cmd/berth once per test process.
func berthBinary(t *testing.T) string {
	t.Helper()
	return testutil.GoBinary(t, ".")
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestBinaryServesThePushAndStopsOnSIGTERM runs berth as users do, pushes
// with the README's ffmpeg command, plays it back, then stops it with
// SIGTERM: exit 0, and the port is free again.
func TestBinaryServesThePushAndStopsOnSIGTERM(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	bin := berthBinary(t)
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "--listen-ip", "127.0.0.1", "--rtsp-port", strconv.Itoa(port),
		"--rtmp-port", "0", "--http-port", "0", "--rtp-port", "0", "--srt-port", "0", "--rtc-port", "0")
	var logs testutil.LogBuffer
	cmd.Stderr = &logs
	cmd.Stdout = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	defer func() {
		if t.Failed() {
			t.Logf("berth's output:\n%s", logs.String())
		}
	}()
	testutil.WaitFor(t, 10*time.Second, "berth to listen on "+addr, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	url := "rtsp://" + addr + "/live/stream"
	pub := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-re", "-stream_loop", "-1", "-i", testmedia.File(t, testmedia.H264AAC),
		"-vcodec", "copy", "-acodec", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", url)
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	defer pub.Process.Kill()
	var out []byte
	testutil.WaitFor(t, 10*time.Second, "ffprobe to read the stream", func() bool {
		var err error
		out, err = exec.Command("ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_entries", "stream=codec_name", "-of", "csv=p=0", url).Output()
		return err == nil
	})
	if got := strings.Fields(string(out)); strings.Join(got, ",") != "h264,aac" {
		t.Errorf("ffprobe saw %v, want h264,aac", got)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("berth exited with %v after SIGTERM, want 0\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("berth still running 10 s after SIGTERM")
	}
	for _, want := range []string{"connection accepted", "publish started", "path=live/stream", "shutting down", "stopped"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if l, err := net.Listen("tcp", addr); err != nil {
		t.Errorf("port still held after exit: %v", err)
	} else {
		l.Close()
	}
}
