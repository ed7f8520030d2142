package rtmp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/flv"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/ports"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testmedia.Cleanup()
	os.Exit(code)
}

type testServer struct {
	hub  *hub.Hub
	srv  *Server
	addr string
	logs *testutil.LogBuffer
}

func startServer(t testing.TB, checker *auth.Checker, opts ...func(*Server)) *testServer {
	t.Helper()
	logs := &testutil.LogBuffer{}
	log := logging.New(logs, logging.LevelTrace)
	h := hub.New(hub.Options{Log: log})
	l, err := ports.Listen(ports.Spec{Name: "rtmp", Network: "tcp", Host: "127.0.0.1", Port: 0})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Hub: h, Log: log, Auth: checker, Instance: "test-instance", Version: "test"}
	for _, o := range opts {
		o(s)
	}
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
	testutil.WaitFor(t, d, what, cond)
}

// startFFmpeg runs ffmpeg with args until the test ends.
func startFFmpeg(t testing.TB, args ...string) {
	t.Helper()
	cmd := exec.Command("ffmpeg", args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
}

// pushFFmpeg pushes file to url with ffmpeg -re until the test ends.
func pushFFmpeg(t testing.TB, file, url string, loop bool, extra ...string) *exec.Cmd {
	t.Helper()
	args := []string{"-hide_banner", "-loglevel", "error", "-re"}
	if loop {
		args = append(args, "-stream_loop", "-1")
	}
	args = append(append(args, "-i", file, "-c", "copy"), extra...)
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
	return ffprobeStreamsArgs(t, ctx, url)
}

func ffprobeStreamsArgs(t testing.TB, ctx context.Context, args ...string) []probeStream {
	t.Helper()
	url := args[len(args)-1]
	args = append([]string{"-v", "error", "-show_streams", "-of", "json"}, args...)
	out, err := exec.CommandContext(ctx, "ffprobe", args...).Output()
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
	if !v || !a || len(streams) != 2 {
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

func TestFFmpegPushIsReadableOverRTMPAndFLV(t *testing.T) {
	file := testmedia.File(t, testmedia.H264AAC)
	ts := startServer(t, nil)
	web := httptest.NewServer(&flv.Handler{Hub: ts.hub, Log: ts.srv.Log})
	t.Cleanup(web.Close)
	pushFFmpeg(t, file, "rtmp://"+ts.addr+"/live/s1", true)
	waitFor(t, "the stream live/s1 to be published", 10*time.Second, func() bool { return ts.hub.Get("live/s1") != nil })

	rtmpURL := "rtmp://" + ts.addr + "/live/s1"
	httpURL := web.URL + "/live/s1.live.flv"
	t.Run("rtmp", func(t *testing.T) {
		checkH264AAC(t, ffprobeStreams(t, rtmpURL))
		ffmpegDecode(t, rtmpURL)
	})
	t.Run("http-flv", func(t *testing.T) {
		checkH264AAC(t, ffprobeStreams(t, httpURL))
		ffmpegDecode(t, web.URL+"/live/s1.flv")
	})
	t.Run("ws-flv", func(t *testing.T) {
		readWSFLV(t, "ws"+strings.TrimPrefix(httpURL, "http"), 2*time.Second)
	})
	t.Run("av-sync-rtmp", func(t *testing.T) { checkAVSync(t, rtmpURL) })
	t.Run("av-sync-http-flv", func(t *testing.T) { checkAVSync(t, httpURL) })
	t.Run("av-sync-ws-flv", func(t *testing.T) { readWSFLV(t, "ws"+strings.TrimPrefix(httpURL, "http"), 10*time.Second) })

	logs := ts.logs.String()
	for _, want := range []string{"rtmp connection accepted", "rtmp publish started", "path=live/s1", "rtmp play started",
		"name=connect", "proto=http-flv", "proto=ws-flv", "flv play started"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// readWSFLV reads FLV over WebSocket for d of stream time and checks what a
// browser player needs: header, onMetaData, sequence headers, then a keyframe,
// timestamps that never go back per media type, and the first audio within
// 100 ms of the first video.
func readWSFLV(t *testing.T, url string, d time.Duration) {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	defer conn.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Access-Control-Allow-Origin = %q, want *", got)
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	pr, pw := io.Pipe()
	go func() {
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := pw.Write(b); err != nil {
				return
			}
		}
	}()
	defer pr.Close()
	r, err := flv.NewReader(pr)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Video || !r.Audio {
		t.Errorf("FLV header flags video=%v audio=%v, want both", r.Video, r.Audio)
	}
	var tags []flv.Tag
	last := map[byte]uint32{}
	var first uint32
	firstAudio := int64(-1)
	for {
		tag, err := r.ReadTag()
		if err != nil {
			t.Fatalf("after %d tags: %v", len(tags), err)
		}
		if tag.Type == flv.TagScript {
			tags = append(tags, tag)
			continue
		}
		if len(tags) == 3 { // after onMetaData and the two sequence headers
			first = tag.TS
		}
		if tag.Type == flv.TagAudio && len(tags) >= 3 && firstAudio < 0 {
			firstAudio = int64(tag.TS)
		}
		if prev, ok := last[tag.Type]; ok && tag.TS < prev {
			t.Errorf("tag type %d timestamp went back from %d to %d", tag.Type, prev, tag.TS)
		}
		last[tag.Type] = tag.TS
		tags = append(tags, tag)
		if len(tags) > 3 && time.Duration(tag.TS-first)*time.Millisecond >= d {
			break
		}
	}
	if len(tags) < 4 {
		t.Fatalf("only %d tags", len(tags))
	}
	if tags[0].Type != flv.TagScript || !bytes.Contains(tags[0].Body, []byte("onMetaData")) {
		t.Errorf("first tag = type %d, want onMetaData", tags[0].Type)
	}
	if tags[1].Type != flv.TagVideo || !bytes.HasPrefix(tags[1].Body, []byte{0x17, 0}) {
		t.Errorf("second tag = type %d % x, want the AVC sequence header", tags[1].Type, tags[1].Body[:min(2, len(tags[1].Body))])
	}
	if tags[2].Type != flv.TagAudio || !bytes.HasPrefix(tags[2].Body, []byte{0xaf, 0}) {
		t.Errorf("third tag = type %d, want the AAC sequence header", tags[2].Type)
	}
	if tags[3].Type != flv.TagVideo || tags[3].Body[0] != 0x17 {
		t.Errorf("fourth tag = type %d % x, want a keyframe", tags[3].Type, tags[3].Body[:1])
	}
	if firstAudio < 0 {
		t.Errorf("no audio in %s of stream time", d)
	} else if gap := firstAudio - int64(first); gap > 100 || gap < -100 {
		t.Errorf("first audio at %d ms, first video at %d ms: %d ms apart, want <= 100", firstAudio, first, gap)
	}
}

// checkAVSync reads 10 s with ffprobe: per-stream DTS never goes back, the
// first audio and video timestamps are within 100 ms, and 10 s of stream
// time is what was read.
func checkAVSync(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-read_intervals", "%+10",
		"-show_entries", "packet=codec_type,pts_time,dts_time", "-of", "csv=p=0", url).Output()
	if err != nil {
		t.Fatalf("ffprobe packets of %s: %v", url, err)
	}
	first := map[string]float64{}
	last := map[string]float64{}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 {
			continue
		}
		dts, err := strconv.ParseFloat(f[2], 64)
		if err != nil {
			continue
		}
		typ := f[0]
		if prev, ok := last[typ]; ok && dts < prev {
			t.Errorf("%s DTS went back from %.3f to %.3f", typ, prev, dts)
		}
		if _, ok := first[typ]; !ok {
			first[typ] = dts
		}
		last[typ] = dts
		n++
	}
	if _, ok := first["video"]; !ok {
		t.Fatalf("no video packets in %d lines", n)
	}
	if _, ok := first["audio"]; !ok {
		t.Fatalf("no audio packets in %d lines", n)
	}
	t.Logf("first video at %.3f s, first audio at %.3f s", first["video"], first["audio"])
	if d := math.Abs(first["video"] - first["audio"]); d > 0.1 {
		t.Errorf("first video at %.3f s, first audio at %.3f s: %.0f ms apart, want <= 100", first["video"], first["audio"], d*1000)
	}
	for _, typ := range []string{"video", "audio"} {
		if span := last[typ] - first[typ]; span < 9.5 || span > 10.5 {
			t.Errorf("read %.2f s of %s, want 10 s within 5%%", span, typ)
		}
	}
}
