// Package testmedia makes the media files end-to-end tests push, with the
// ffmpeg the test machine has, once per test process, and finds ffmpeg.
package testmedia

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Kind names a test file.
type Kind string

// The files tests push. Each is 10 s, 320x240 at 25 fps with a 1 s GOP.
const (
	H264AAC  Kind = "h264_aac.mp4"  // ffmpeg's default pair
	H265AAC  Kind = "h265_aac.mp4"  //
	H264Opus Kind = "h264_opus.mkv" //
	H264PCMA Kind = "h264_pcma.mkv" // G.711 A-law, 8 kHz mono
	AACOnly  Kind = "aac.mp4"       // audio only
	H264CBR  Kind = "h264_4m.mp4"   // 4 Mb/s constant bit rate (filler), for load and slow-reader tests
)

var args = map[Kind][]string{
	H264AAC:  {"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p", "-g", "25", "-bf", "0", "-c:a", "aac", "-b:a", "64k"},
	H265AAC:  {"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=25:min-keyint=25:bframes=0:log-level=error", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k"},
	H264Opus: {"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25", "-bf", "0", "-c:a", "libopus", "-ar", "48000", "-b:a", "64k"},
	H264PCMA: {"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25", "-bf", "0", "-c:a", "pcm_alaw", "-ar", "8000", "-ac", "1"},
	AACOnly:  {"-vn", "-c:a", "aac", "-b:a", "64k"},
	H264CBR: {"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25", "-bf", "0",
		"-b:v", "4M", "-minrate", "4M", "-maxrate", "4M", "-bufsize", "1M", "-x264-params", "nal-hrd=cbr", "-c:a", "aac", "-b:a", "64k"},
}

var (
	mu    sync.Mutex
	dir   string
	made  = map[Kind]string{}
	dirEr error
)

// RequireFFmpeg skips the test when ffmpeg or ffprobe is missing, saying how
// to install them. CI installs them, so there the test runs.
func RequireFFmpeg(t testing.TB) {
	t.Helper()
	for _, b := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not found: apt-get install ffmpeg (CI installs it)", b)
		}
	}
}

// File returns the path of a test file of kind k, making it on first use.
func File(t testing.TB, k Kind) string {
	t.Helper()
	RequireFFmpeg(t)
	mu.Lock()
	defer mu.Unlock()
	if p, ok := made[k]; ok {
		return p
	}
	if dir == "" && dirEr == nil {
		dir, dirEr = os.MkdirTemp("", "berth-testmedia-")
	}
	if dirEr != nil {
		t.Fatal(dirEr)
	}
	p := filepath.Join(dir, string(k))
	cmd := []string{"-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=10",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=10"}
	if k == AACOnly {
		cmd = []string{"-hide_banner", "-loglevel", "error", "-y",
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=10"}
	}
	cmd = append(cmd, args[k]...)
	cmd = append(cmd, "-shortest", p)
	out, err := exec.Command("ffmpeg", cmd...).CombinedOutput()
	if err != nil {
		t.Fatalf("making test file %s: %v\n%s", k, err, out)
	}
	made[k] = p
	return p
}

// Cleanup removes the files; call it from TestMain after m.Run.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
	}
}

// Describe is for error messages.
func Describe(k Kind) string { return fmt.Sprintf("%s (%v)", k, args[k]) }
