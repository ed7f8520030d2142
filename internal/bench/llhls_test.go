package bench

import (
	"context"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testmedia.Cleanup()
	os.Exit(code)
}

// TestPlayLLHLSViewerFollowsVideoAndAudio: of an ffmpeg push with H.264
// and AAC, an LL-HLS bench viewer follows the video playlist and the audio
// rendition (about as many audio parts as video parts come in), and is
// still one reader of the stream: its two playlists share its session.
func TestPlayLLHLSViewerFollowsVideoAndAudio(t *testing.T) {
	file := testmedia.File(t, testmedia.H264AAC)
	srv := startBerth(t)
	pub := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-re", "-stream_loop", "-1", "-i", file, "-c", "copy",
		"-f", "rtsp", "-rtsp_transport", "tcp", "rtsp://"+srv.Addr("rtsp")+"/live/av")
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Process.Kill(); pub.Wait() })
	testutil.WaitFor(t, 10*time.Second, "the push to be published", func() bool {
		st := srv.Hub.Get("live/av")
		return st != nil && st.FramesIn.Load() > 25
	})

	const readers, frames = 2, 3 * 25 // a 25 fps file: three seconds
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var counted atomic.Int64
	s, err := Play(ctx, PlayConfig{
		URL: "http://" + srv.Addr("http") + "/live/av/hls.fmp4.m3u8", N: readers, Duration: 25 * time.Second,
		TickEvery: 50 * time.Millisecond, Timeout: 5 * time.Second,
		OnTick: func(tk Tick) {
			if tk.Up == readers {
				counted.Store(int64(countReaders(srv.Hub.Get("live/av").ReaderList(), "hls.fmp4")))
			}
			if tk.VideoFrames >= readers*frames || tk.Failed > 0 {
				cancel()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.ReadersOK != readers || s.FirstVideoIsKey != readers {
		t.Fatalf("readers ok %d, first video a keyframe %d, of %d: %v", s.ReadersOK, s.FirstVideoIsKey, readers, s.Errors)
	}
	// Parts of 200 ms: 5 frames each. Video alone would make one fragment
	// per 5 frames; the audio rendition's parts nearly double that (audio starts a little later).
	videoParts := float64(s.VideoFrames) / 5
	if got := float64(s.Packets); got < 1.4*videoParts {
		t.Errorf("%d fragments for %d video frames (~%.0f video parts): the audio rendition was not followed", s.Packets, s.VideoFrames, videoParts)
	}
	if n := counted.Load(); n != readers {
		t.Errorf("%d hls.fmp4 readers listed for %d viewers; want one each", n, readers)
	}
	t.Logf("%d fragments, %d video frames, first keyframe %v", s.Packets, s.VideoFrames, s.FirstKeyframe)
}
