package hls

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/mpegts"
)

// libaom's sequence header OBU of a 4:4:4 (High profile) clip, as the hub
// carries it (no obu_size).
var av1Seq = []byte{0x08, 0x20, 0x00, 0x00, 0x04, 0x3c, 0xff, 0xbc, 0xda, 0xf9, 0x20, 0x21, 0xa0, 0x04}

// TestAV1PlaysOverLLHLS: an AV1 stream is served as hls.fmp4.m3u8 (av01 in
// CODECS) and gohlslib's client gets its frames; hls.m3u8, whose MPEG-TS
// has no AV1 mapping, refuses it with 415 rather than an empty playlist.
func TestAV1PlaysOverLLHLS(t *testing.T) {
	h := hub.New(hub.Options{})
	pub, err := h.Publish("live/av1", hub.Origin{Proto: "test"}, hub.KindAU, []*hub.Track{codec.AV1Track(nil)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := &mpegts.Muxers{}
	hd := &Handler{Hub: h, TS: ts.Open, StreamWait: 10 * time.Millisecond}
	hd.SetSettings(Settings{Enable: true, EnableFMP4: true, SegDur: time.Second, SegNum: 3, SegRetain: 1, PartDur: 200 * time.Millisecond, OnDemand: true})
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		td := []byte{0x10}
		for i := 0; ; i++ {
			at := time.Duration(i) * 40 * time.Millisecond
			au := [][]byte{td, {0x30, 0xaa, byte(i)}}
			if i%25 == 0 {
				au = [][]byte{td, av1Seq, {0x30, 0xaa, byte(i)}}
			}
			pub.Write(&hub.Frame{Track: 0, Key: i%25 == 0, AU: au, PTS: at, DTS: at, Recv: time.Now()})
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { close(stop); <-done; hd.Close(); ts.Close(); h.Close() }()
	srv := httptest.NewServer(hd)
	defer srv.Close()

	res, err := srv.Client().Get(srv.URL + "/live/av1/" + FMP4Playlist)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(b), `CODECS="av01.`) {
		t.Errorf("multivariant playlist without av01 in CODECS:\n%s", b)
	}
	pl, err := playlist.Unmarshal(b)
	mvp, ok := pl.(*playlist.Multivariant)
	if err != nil || !ok {
		t.Fatalf("not a multivariant playlist (%v):\n%s", err, b)
	}
	// gohlslib's client picks no variant with av01 in CODECS: it is given
	// the media playlist itself.
	media := srv.URL + "/live/av1/" + mvp.Variants[0].URI

	var frames atomic.Int64
	var c *gohlslib.Client
	c = quietClient(media, func(tracks []*gohlslib.Track) error {
		for _, tr := range tracks {
			if _, ok := tr.Codec.(*codecs.AV1); ok {
				c.OnDataAV1(tr, func(int64, [][]byte) { frames.Add(1) })
			}
		}
		return nil
	})
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.After(15 * time.Second)
	for frames.Load() < 30 {
		select {
		case err := <-c.Wait():
			t.Fatalf("the client stopped: %v", err)
		case <-deadline:
			t.Fatalf("%d AV1 frames in 15 s, want 30", frames.Load())
		case <-time.After(50 * time.Millisecond):
		}
	}

	res, err = srv.Client().Get(srv.URL + "/live/av1/" + TSPlaylist)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("hls.m3u8 of an AV1-only stream: %s, want 415 at once", res.Status)
	}
}
