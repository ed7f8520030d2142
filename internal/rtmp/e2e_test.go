package rtmp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/ports"
	"github.com/berthmedia/berth/internal/testmedia"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testmedia.Cleanup()
	os.Exit(code)
}

// logBuffer collects log lines for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type testServer struct {
	hub  *hub.Hub
	srv  *Server
	addr string
	logs *logBuffer
}

func startServer(t testing.TB, checker *auth.Checker) *testServer {
	t.Helper()
	logs := &logBuffer{}
	log := logging.New(logs, logging.LevelTrace)
	h := hub.New(hub.Options{Log: log})
	l, err := ports.Listen(ports.Spec{Name: "rtmp", Network: "tcp", Host: "127.0.0.1", Port: 0})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Hub: h, Log: log, Auth: checker, Instance: "test-instance", Version: "test"}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Errorf("Serve returned %v, want net.ErrClosed", err)
		}
		h.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return &testServer{hub: h, srv: s, addr: l.Addr().String(), logs: logs}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pushFFmpeg pushes file to url with ffmpeg -re until the test ends.
func pushFFmpeg(t testing.TB, file, url string, extra ...string) *exec.Cmd {
	t.Helper()
	args := append([]string{"-hide_banner", "-loglevel", "error", "-re", "-i", file, "-c", "copy"}, extra...)
	args = append(args, "-f", "flv", url)
	cmd := exec.Command("ffmpeg", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

type probeStream struct {
	CodecType  string `json:"codec_type"`
	CodecName  string `json:"codec_name"`
	Width      int    `json:"width"`
	Height     int    `json:"height"`
	SampleRate string `json:"sample_rate"`
}

func ffprobeStreams(t testing.TB, url string) []probeStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_streams", "-of", "json", url).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("ffprobe %s: %v\n%s", url, err, ee.Stderr)
		}
		t.Fatalf("ffprobe %s: %v", url, err)
	}
	var res struct{ Streams []probeStream }
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	return res.Streams
}

// checkH264AAC asserts what ffprobe reports for testmedia.H264AAC.
func checkH264AAC(t testing.TB, streams []probeStream) {
	t.Helper()
	var v, a bool
	for _, s := range streams {
		switch s.CodecType {
		case "video":
			v = true
			if s.CodecName != "h264" || s.Width != 320 || s.Height != 240 {
				t.Errorf("video stream = %+v, want h264 320x240", s)
			}
		case "audio":
			a = true
			if s.CodecName != "aac" || s.SampleRate != "48000" {
				t.Errorf("audio stream = %+v, want aac 48000", s)
			}
		}
	}
	if !v || !a {
		t.Errorf("streams = %+v, want one video and one audio", streams)
	}
}

// ffmpegDecode reads url for 3 s and fails on any decoder error.
func ffmpegDecode(t testing.TB, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-v", "error", "-i", url, "-t", "3", "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("ffmpeg -i %s -t 3 -f null -: err=%v output:\n%s", url, err, out)
	}
}

func TestFFmpegPushReadBackOverRTMP(t *testing.T) {
	file := testmedia.File(t, testmedia.H264AAC)
	ts := startServer(t, nil)
	pushFFmpeg(t, file, "rtmp://"+ts.addr+"/live/s1")
	waitFor(t, "the stream live/s1 to be published", 10*time.Second, func() bool { return ts.hub.Get("live/s1") != nil })

	url := "rtmp://" + ts.addr + "/live/s1"
	checkH264AAC(t, ffprobeStreams(t, url))
	ffmpegDecode(t, url)

	logs := ts.logs.String()
	for _, want := range []string{"rtmp connection accepted", "rtmp publish started", "path=live/s1", "rtmp play started", "name=connect"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}
