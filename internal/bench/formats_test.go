package bench

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/rtspclient"
	"github.com/berthmedia/berth/internal/server"
)

// TestPlayReadsMuxedFormatsFromBerth: bench readers of HTTP-TS, WS-TS,
// HTTP-fMP4, WS-fMP4, HLS (TS segments), LL-HLS (fMP4 parts) and WS-FLV of a
// real-time RTSP publisher all come up, start on a keyframe, count two
// seconds of video frames each, share one muxer per format, and each
// counts as one reader of the stream (HLS viewers too: the cookie and
// the connection make a viewer one session).
func TestPlayReadsMuxedFormatsFromBerth(t *testing.T) {
	for _, tc := range []struct {
		name, url, proto string // url: after http://HOST/live/PATH
		muxers           func(*server.Server) uint64
	}{
		{"http-ts", "http://%s/live/%s.live.ts", "http-ts", func(s *server.Server) uint64 { return s.TSMuxers().Started() }},
		{"ws-ts", "ws://%s/live/%s.live.ts", "ws-ts", func(s *server.Server) uint64 { return s.TSMuxers().Started() }},
		{"http-fmp4", "http://%s/live/%s.live.mp4", "http-fmp4", func(s *server.Server) uint64 { return s.FMP4Muxers().Started() }},
		{"ws-fmp4", "ws://%s/live/%s.live.mp4", "ws-fmp4", func(s *server.Server) uint64 { return s.FMP4Muxers().Started() }},
		{"hls", "http://%s/live/%s/hls.m3u8", "hls", func(s *server.Server) uint64 { return s.HLS().Started() }},
		{"ll-hls", "http://%s/live/%s/hls.fmp4.m3u8", "hls.fmp4", func(s *server.Server) uint64 { return s.HLS().Started() }},
		{"ws-flv", "ws://%s/live/%s.live.flv", "ws-flv", nil}, // FLV has no muxer: tags are cached on the frames
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startBerth(t, func(c *config.Config) { c.HLS.SegDur = 1 })
			path := "fmt-" + tc.name
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			pubDone := make(chan error, 1)
			ready := make(chan struct{})
			var pst pubStats
			go func() {
				pubDone <- publishSynth(ctx, "rtsp://"+srv.Addr("rtsp")+"/live/"+path, 1e6, rtspclient.TCP, &pst, func() { close(ready) })
			}()
			select {
			case <-ready:
			case err := <-pubDone:
				t.Fatalf("publishing: %v", err)
			}
			defer func() {
				cancel()
				if err := <-pubDone; err != nil {
					t.Errorf("publishing: %v", err)
				}
			}()

			const readers, frames = 3, 2 * synthFPS
			url := strings.Replace(strings.Replace(tc.url, "%s", srv.Addr("http"), 1), "%s", path, 1)
			var counted atomic.Int64
			playCtx, stop := context.WithCancel(ctx)
			defer stop()
			s, err := Play(playCtx, PlayConfig{
				URL: url, N: readers, Duration: 25 * time.Second, TickEvery: 50 * time.Millisecond, Timeout: 5 * time.Second,
				OnTick: func(tk Tick) {
					if tk.Up == readers && counted.Load() == 0 {
						if st := srv.Hub.Get("live/" + path); st != nil {
							counted.Store(int64(countReaders(st.ReaderList(), tc.proto)))
						}
					}
					if tk.VideoFrames >= readers*frames || tk.Failed > 0 {
						stop()
					}
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if s.Protocol != tc.name {
				t.Errorf("protocol %q; want %q", s.Protocol, tc.name)
			}
			if s.ReadersOK != readers || len(s.Errors) > 0 {
				t.Fatalf("readers ok %d of %d: %v", s.ReadersOK, readers, s.Errors)
			}
			if s.VideoFrames < readers*frames {
				t.Fatalf("%d video frames in all; want at least %d for %d readers", s.VideoFrames, readers*frames, readers)
			}
			if s.FirstVideoSeen != readers || s.FirstVideoIsKey != readers || s.FirstKeyframe.Count != readers || s.FirstPacket.Count != readers {
				t.Fatalf("first video seen %d, a keyframe %d, keyframe times %d, packet times %d; want %d each",
					s.FirstVideoSeen, s.FirstVideoIsKey, s.FirstKeyframe.Count, s.FirstPacket.Count, readers)
			}
			if s.Packets == 0 || s.Bytes == 0 {
				t.Fatalf("%d packets, %d bytes", s.Packets, s.Bytes)
			}
			if tc.muxers != nil {
				if n := tc.muxers(srv); n != 1 {
					t.Errorf("%d muxers started for %d readers of one stream; want 1", n, readers)
				}
			}
			if n := counted.Load(); n != readers {
				t.Errorf("the stream listed %d readers of %s while %d bench readers were up; want %d", n, tc.proto, readers, readers)
			}
			t.Logf("%s: %d frames, %d packets, %d bytes; first keyframe %v", tc.name, s.VideoFrames, s.Packets, s.Bytes, s.FirstKeyframe)
		})
	}
}

func countReaders(rs []*hub.Reader, proto string) int {
	n := 0
	for _, r := range rs {
		if r.Who().Proto == proto {
			n++
		}
	}
	return n
}

// TestPlayNamesTheURLForms: a URL bench does not read is refused with the
// forms it does.
func TestPlayNamesTheURLForms(t *testing.T) {
	for _, u := range []string{"http://h/live/s", "ftp://h/live/s", "ws://h/live/s/hls.m3u8", "srt://h?streamid=x"} {
		_, err := Play(context.Background(), PlayConfig{URL: u, N: 1})
		if err == nil || !strings.Contains(err.Error(), ".live.mp4") || !strings.Contains(err.Error(), "hls.fmp4.m3u8") {
			t.Errorf("Play(%q) = %v; want an error naming the accepted forms", u, err)
		}
	}
}
