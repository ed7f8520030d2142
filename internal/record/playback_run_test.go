package record

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/testmedia"
)

const testRecording = "record/live/cam/2026-12-04/12-00-00.mp4"

// writeRecording writes 2 s of the H.264+AAC test file (1 s GOP) at
// testRecording under a new root, fragmented (as Berth records) or
// progressive (as fastStart leaves it).
func writeRecording(t testing.TB, progressive bool) string {
	t.Helper()
	root := t.TempDir()
	file := filepath.Join(root, filepath.FromSlash(testRecording))
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	flags := "frag_keyframe+empty_moov"
	if progressive {
		flags = "+faststart"
	}
	out, err := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-i", testmedia.File(t, testmedia.H264AAC), "-t", "2",
		"-c", "copy", "-movflags", flags, "-f", "mp4", file).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	return root
}

// newTestPlayback is a Playback on a hub of its own.
func newTestPlayback(t *testing.T, root string, repeat bool) (*Playback, *hub.Hub) {
	t.Helper()
	pb := &Playback{Settings: func() Settings { return Settings{Root: root, AppName: "record", FileRepeat: repeat} },
		NoReaderDelay: func() time.Duration { return time.Minute }}
	h := hub.New(hub.Options{Observer: pb})
	pb.Hub = h
	t.Cleanup(func() { pb.Close(); h.Close() })
	return pb, h
}

// readVideo reads the stream until it ends or want video frames came,
// checking that every track's times go forward; it returns the video
// frames' count and whether the first was a keyframe.
func readVideo(t *testing.T, rd *hub.Reader, want int) (n int, firstKey bool) {
	t.Helper()
	last := map[int]time.Duration{}
	buf := make([]*hub.Frame, 64)
	for n < want {
		k, err := rd.Read(buf)
		for _, f := range buf[:k] {
			if d, ok := last[f.Track]; ok && f.DTS <= d {
				t.Fatalf("track %d: DTS %s after %s", f.Track, f.DTS, d)
			}
			last[f.Track] = f.DTS
			if rd.Stream().Tracks[f.Track].Video {
				if n == 0 {
					firstKey = f.Key
				}
				n++
			}
		}
		if errors.Is(err, hub.ErrEnded) {
			return n, firstKey
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return n, firstKey
}

// TestPlaybackReadsFragmentedAndProgressive: both layouts play every
// video frame (2 s at 25 fps) from a keyframe, and the stream ends.
func TestPlaybackReadsFragmentedAndProgressive(t *testing.T) {
	for _, progressive := range []bool{false, true} {
		pb, h := newTestPlayback(t, writeRecording(t, progressive), false)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		rd, err := h.SubscribeWait(ctx, testRecording, hub.KindAU, hub.Origin{Proto: "test"}, 0)
		cancel()
		if err != nil {
			t.Fatalf("progressive=%v: %v", progressive, err)
		}
		if err := pb.SetSpeed(testRecording, 20); err != nil {
			t.Fatal(err)
		}
		n, key := readVideo(t, rd, 1000)
		if n != 50 || !key {
			t.Errorf("progressive=%v: %d video frames, first a keyframe: %v; want 50 from a keyframe", progressive, n, key)
		}
		rd.Close()
	}
}

// TestPlaybackRepeatLoopsForward: with fileRepeat the file plays again at
// its end, the stream's times going on forward; pause holds the position.
func TestPlaybackRepeatLoopsForward(t *testing.T) {
	pb, h := newTestPlayback(t, writeRecording(t, false), true)
	rd, err := h.SubscribeWait(context.Background(), testRecording, hub.KindAU, hub.Origin{Proto: "test"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if err := pb.SetSpeed(testRecording, 20); err != nil {
		t.Fatal(err)
	}
	if n, _ := readVideo(t, rd, 130); n < 130 {
		t.Fatalf("with fileRepeat the 50-frame file gave %d frames and ended", n)
	}
	if err := pb.Pause(testRecording, true); err != nil {
		t.Fatal(err)
	}
	at, _, err := pb.Position(testRecording)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing moves while paused: watch the position for a while (at speed
	// 20, 200 ms is 4 s of the file).
	for end := time.Now().Add(200 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if again, _, _ := pb.Position(testRecording); again != at {
			t.Fatalf("paused at %s, then at %s", at, again)
		}
	}
	if at, err := pb.Seek(testRecording, 1500*time.Millisecond); err != nil || at > 1500*time.Millisecond || at < 900*time.Millisecond {
		t.Errorf("seek to 1.5 s: keyframe at %s, %v; want the one near 1 s", at, err)
	}
	if err := pb.SetSpeed(testRecording, 0); !errors.Is(err, ErrBadSpeed) {
		t.Errorf("speed 0: %v", err)
	}
	if _, err := pb.Seek("record/live/cam/2026-12-04/nope.mp4", 0); !errors.Is(err, ErrNotPlayback) {
		t.Errorf("seek of no playback: %v", err)
	}
}
