package server_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/rtspclient"
	"github.com/berthmedia/berth/internal/server"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// playbackDay is the day directory the tests' recordings sit in.
const playbackDay = "live/cam/2026-12-04"

// startPlayback starts a server whose [record] filePath holds a 6 s
// H.264+AAC recording (1 s GOP) as fragmented MP4 at
// record/live/cam/2026-12-04/<name> for each name.
func startPlayback(t *testing.T, names ...string) (*server.Server, *testutil.LogBuffer) {
	t.Helper()
	testmedia.RequireFFmpeg(t)
	root := t.TempDir()
	day := filepath.Join(root, "record", filepath.FromSlash(playbackDay))
	if err := os.MkdirAll(day, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		out, err := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-i", testmedia.File(t, testmedia.H264AAC), "-t", "6",
			"-c", "copy", "-movflags", "frag_keyframe+empty_moov", "-f", "mp4", filepath.Join(day, n)).CombinedOutput()
		if err != nil {
			t.Fatalf("ffmpeg writing the recording: %v\n%s", err, out)
		}
	}
	cfg := config.Default()
	cfg.General.ListenIP = "127.0.0.1"
	cfg.API.Secret = "s3cret"
	cfg.Record.FilePath = root
	cfg.Record.RootPath = root
	return startServer(t, cfg, logging.LevelTrace)
}

// decode runs ffmpeg on a URL, decoding everything to null; any line
// ffmpeg prints at -v error fails the test. It returns how long it took.
func decode(t *testing.T, url string, in ...string) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := append([]string{"-hide_banner", "-v", "error"}, in...)
	args = append(args, "-i", url, "-f", "null", "-")
	began := time.Now()
	out, err := exec.CommandContext(ctx, "ffmpeg", args...).CombinedOutput()
	took := time.Since(began)
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("ffmpeg decoding %s: %v\n%s", url, err, out)
	}
	return took
}

// TestPlaybackPlaysARecordingInEveryProtocol: a recording's path under
// [record] appName, asked for over RTSP, RTMP, HTTP-FLV and HLS, plays as a
// live stream that ffmpeg decodes without an error, paced by its
// timestamps, and ends at the file's end (HLS reads 3 s of it).
func TestPlaybackPlaysARecordingInEveryProtocol(t *testing.T) {
	srv, logs := startPlayback(t, "10-00-00.mp4", "11-00-00.mp4", "12-00-00.mp4", "13-00-00.mp4")
	rec := "/record/" + playbackDay + "/"
	cases := []struct {
		name, url string
		in        []string
	}{
		{"rtsp", "rtsp://" + srv.Addr("rtsp") + rec + "10-00-00.mp4", []string{"-rtsp_transport", "tcp"}},
		{"rtmp", "rtmp://" + srv.Addr("rtmp") + rec + "11-00-00.mp4", nil},
		{"http-flv", "http://" + srv.Addr("http") + rec + "12-00-00.mp4.live.flv", nil},
		{"hls", "http://" + srv.Addr("http") + rec + "13-00-00.mp4/hls.m3u8", []string{"-t", "3"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			took := decode(t, c.url, c.in...)
			t.Logf("%s: decoded in %s", c.name, took.Round(time.Millisecond))
			if c.name != "hls" && took < 4*time.Second {
				t.Errorf("%s: a 6 s recording played in %s: not paced by its timestamps", c.name, took)
			}
		})
	}
	t.Cleanup(func() {
		if line := logs.Line("playback ended: a sample"); line != "" {
			t.Errorf("a playback failed: %s", line)
		}
	})
}

// TestPlaybackRTSPSeekStartsAtAKeyframe: a PLAY with Range: npt=3.000-
// moves the playback to the last keyframe at or before 3 s (the file
// has one each second), the answer's Range says so, and the play gets the last 3 s of
// the file's 150 video frames, from a keyframe, then the stream ends.
func TestPlaybackRTSPSeekStartsAtAKeyframe(t *testing.T) {
	srv, logs := startPlayback(t, "12-00-00.mp4")
	url := "rtsp://" + srv.Addr("rtsp") + "/record/" + playbackDay + "/12-00-00.mp4"
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := rtspclient.Dial(ctx, url, rtspclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	desc, _, err := c.Describe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetupAll(desc); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	frames, firstKey := 0, -1
	c.OnPacket = func(track int, pkt []byte) {
		var p rtp.Packet
		if track != 0 || p.Unmarshal(pkt) != nil || !p.Marker {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if firstKey < 0 {
			firstKey = 0
			if len(p.Payload) > 0 && (p.Payload[0]&0x1f == 5 || p.Payload[0]&0x1f == 28 || p.Payload[0]&0x1f == 24) {
				firstKey = 1
			}
		}
		frames++
	}
	if _, err := c.PlayRange("npt=3.000-"); err != nil {
		t.Fatal(err)
	}
	got := c.LastResponse().Header["Range"]
	var start float64
	if len(got) != 1 || !strings.HasPrefix(got[0], "npt=") {
		t.Fatalf("PLAY's Range answer: %q, want npt=<keyframe>-", got)
	}
	start, _ = strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(got[0], "npt="), "-"), 64)
	// The keyframes are 1 s apart on the video track, which starts a few
	// ms after the audio: the one at or before 3 s is just after 2 s.
	if start < 2 || start > 3 {
		t.Errorf("PLAY's Range answer: %q, want the keyframe at or before 3 s, within a second", got)
	}
	c.Wait() // the stream ends with the file
	logs.WaitLine(t, "playback seek", "component=playback", "asked=3s")
	mu.Lock()
	defer mu.Unlock()
	t.Logf("after the seek: %d video frames", frames)
	if want := int((6 - start) * 25); frames < want-5 || frames > want+5 || firstKey != 1 {
		t.Errorf("after a seek to %.3f s of a 6 s file at 25 fps: %d video frames (want %d), first a keyframe: %v", start, frames, want, firstKey == 1)
	}
}

// TestPlaybackSetRecordSpeedPlaysFaster: setRecordSpeed speed=2 on a
// playing recording makes it end in about half its length.
func TestPlaybackSetRecordSpeedPlaysFaster(t *testing.T) {
	srv, _ := startPlayback(t, "12-00-00.mp4")
	stream := playbackDay + "/12-00-00.mp4"
	url := "rtsp://" + srv.Addr("rtsp") + "/record/" + stream
	done := make(chan time.Duration, 1)
	go func() { done <- decode(t, url, "-rtsp_transport", "tcp") }()
	testutil.WaitFor(t, 10*time.Second, "the playback to start", func() bool {
		_, _, err := srv.Playback().Position("record/" + stream)
		return err == nil
	})
	if res := apiGet(t, srv, "setRecordSpeed", "app=record&stream="+stream+"&speed=2"); res["code"] != float64(0) {
		t.Fatalf("setRecordSpeed: %v", res)
	}
	if res := apiGet(t, srv, "setRecordSpeed", "app=record&stream="+stream+"&speed=0"); res["code"] != float64(-300) {
		t.Errorf("setRecordSpeed speed=0: %v, want code -300", res)
	}
	if res := apiGet(t, srv, "seekRecordStamp", "app=record&stream=live/cam/2026-12-04/nope.mp4&stamp=1000"); res["code"] != float64(-500) {
		t.Errorf("seekRecordStamp of no playback: %v, want code -500", res)
	}
	took := <-done
	t.Logf("a 6 s recording at speed 2 played in %s", took.Round(time.Millisecond))
	if took > 4500*time.Millisecond {
		t.Errorf("at speed 2 the 6 s recording played for %s", took)
	}
}

// TestPlaybackRefusesPathsOutsideTheRecordings: paths that would name a
// file outside [record] filePath, a hidden file or not an MP4 get a 404.
func TestPlaybackRefusesPathsOutsideTheRecordings(t *testing.T) {
	srv, _ := startPlayback(t, "12-00-00.mp4")
	for _, p := range []string{
		"/record/../../etc/passwd.mp4.live.flv",
		"/record/" + playbackDay + "/.12-00-00.mp4.live.flv",
		"/record/" + playbackDay + "/missing.mp4.live.flv",
		"/live/cam/2026-12-04/12-00-00.mp4.live.flv",
	} {
		res, err := httpGet("http://" + srv.Addr("http") + p)
		if err != nil {
			t.Fatal(err)
		}
		if res != 404 {
			t.Errorf("GET %s: %d, want 404", p, res)
		}
	}
}

func httpGet(url string) (int, error) {
	res, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}
