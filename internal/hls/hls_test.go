package hls

import (
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/muxring"
)

func TestMatch(t *testing.T) {
	for p, want := range map[string]bool{
		"/live/s/hls.m3u8":                     true,
		"/live/s/hls.fmp4.m3u8":                true,
		"/live/s/video1_stream.m3u8":           true,
		"/live/s/hls-0a1b2c3d-7.ts":            true,
		"/live/s/0a1b2c3d4e5f_video1_seg7.mp4": true,
		"/live/s.live.ts":                      false,
		"/live/s.live.mp4":                     false,
		"/live/s.live.flv":                     false,
		"/hls.m3u8":                            false,
		"/index/api/getMediaList":              false,
	} {
		if got := Match(p); got != want {
			t.Errorf("Match(%s) = %v, want %v", p, got, want)
		}
	}
	if p, f, ok := split("/live/cam/hls.m3u8"); !ok || p != "live/cam" || f != "hls.m3u8" {
		t.Errorf("split: %q %q %v", p, f, ok)
	}
	if _, _, ok := split("/../etc/hls.m3u8"); ok {
		t.Error("split took a path with ..")
	}
}

// feed gives the channel a keyframe chunk every second and audio chunks
// between, from `from` for n seconds; disc marks the first chunk.
func feed(c *tsChannel, set Settings, from time.Duration, n int, disc bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := 0; i < n*5; i++ {
		dts := from + time.Duration(i)*200*time.Millisecond
		c.takeLocked(&muxring.Chunk{Key: i%5 == 0, DTS: dts, Data: []byte{0x47}, Discontinuity: disc && i == 0}, set)
	}
}

func TestTSChannelCutsSegmentsAndMarksDiscontinuities(t *testing.T) {
	set := Settings{SegDur: 2 * time.Second, SegNum: 3, SegRetain: 1}
	c := &tsChannel{id: "abcd", wake: make(chan struct{})}
	if _, _, ok := c.playlist(set, "tok"); ok {
		t.Fatal("a playlist before the first segment")
	}
	feed(c, set, 0, 7, false) // segments 0-2 s, 2-4 s, 4-6 s; 6-7 s in progress
	body, _, ok := c.playlist(set, "tok")
	if !ok {
		t.Fatal("no playlist after 7 s")
	}
	pl := string(body)
	for _, want := range []string{"#EXT-X-TARGETDURATION:2\n", "#EXT-X-MEDIA-SEQUENCE:0\n", "#EXTINF:2.000,\nhls-abcd-0.ts?berth_session=tok\n", "hls-abcd-2.ts"} {
		if !strings.Contains(pl, want) {
			t.Errorf("playlist lacks %q:\n%s", want, pl)
		}
	}
	if strings.Contains(pl, "DISCONTINUITY") || strings.Contains(pl, "hls-abcd-3.ts") {
		t.Errorf("a discontinuity, or the segment in progress, is listed:\n%s", pl)
	}
	// The publisher's clock jumps back to 0: the segment in progress ends,
	// the next one is marked.
	feed(c, set, 0, 5, true)
	body, _, _ = c.playlist(set, "tok")
	pl = string(body)
	if !strings.Contains(pl, "#EXT-X-DISCONTINUITY\n#EXTINF:2.000,\nhls-abcd-4.ts") {
		t.Errorf("no discontinuity before the first segment after the jump:\n%s", pl)
	}
	if !strings.Contains(pl, "#EXTINF:0.900,\nhls-abcd-3.ts") { // 0.8 s of chunks and a mean spacing clamped to 100 ms
		t.Errorf("the segment cut by the jump does not end after its last chunk:\n%s", pl)
	}
	if !strings.Contains(pl, "#EXT-X-MEDIA-SEQUENCE:3\n") || strings.Count(pl, "#EXTINF") != 3 {
		t.Errorf("want the last 3 segments from 3:\n%s", pl)
	}
	// Retained segments are still served; older ones are gone.
	if c.segment("hls-abcd-2.ts") == nil || c.segment("hls-abcd-1.ts") != nil || c.segment("hls-ffff-2.ts") != nil {
		t.Error("segRetain=1 should keep segment 2 only, by this channel's name")
	}
	// Once the marked segment has left the playlist, the discontinuity
	// sequence counts it.
	feed(c, set, 4*time.Second, 8, false)
	body, _, _ = c.playlist(set, "tok")
	if pl = string(body); !strings.Contains(pl, "#EXT-X-DISCONTINUITY-SEQUENCE:1\n") {
		t.Errorf("no discontinuity sequence after the marked segment left:\n%s", pl)
	}
}

func TestTSChannelStartsAtAKeyframe(t *testing.T) {
	set := Settings{SegDur: time.Second, SegNum: 3}
	c := &tsChannel{id: "k", wake: make(chan struct{})}
	c.mu.Lock()
	c.takeLocked(&muxring.Chunk{DTS: 0, Data: []byte{1}}, set) // audio before the keyframe
	c.takeLocked(&muxring.Chunk{Key: true, DTS: 100 * time.Millisecond, Data: []byte{2}}, set)
	c.takeLocked(&muxring.Chunk{Key: true, DTS: 1100 * time.Millisecond, Data: []byte{3}}, set)
	c.mu.Unlock()
	s := c.segment("hls-k-0.ts")
	if s == nil || len(s.bufs) != 1 || s.bufs[0][0] != 2 || s.dur != time.Second {
		t.Fatalf("segment 0: %+v, want the keyframe chunk alone lasting 1 s", s)
	}
}
