package hls

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/mpegts"
)

// 320x240 Constrained Baseline level 1.3, as x264 writes it.
var (
	sps320 = []byte{0x67, 0x42, 0xc0, 0x0d, 0xda, 0x05, 0x07, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x0c, 0x83, 0xc5, 0x0a, 0xa8}
	pps320 = []byte{0x68, 0xce, 0x3c, 0x80}
)

// liveHandler serves live/f: H.264 and AAC written at 20× real time (a
// keyframe a second of media), so playlists, segments and parts exist and
// blocking reloads are answered quickly.
func liveHandler(t testing.TB) *Handler { return liveHandlerEvery(t, 2*time.Millisecond) }

// liveHandlerEvery is liveHandler writing a frame of each track every
// tick (40 ms: real time).
func liveHandlerEvery(t testing.TB, every time.Duration) *Handler {
	h := hub.New(hub.Options{})
	aac := codec.AACTrackConfig(&mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 2})
	pub, err := h.Publish("live/f", hub.Origin{Proto: "test"}, hub.KindAU, []*hub.Track{codec.H264Track(sps320, pps320), aac}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := &mpegts.Muxers{}
	hd := &Handler{Hub: h, TS: ts.Open, StreamWait: 10 * time.Millisecond}
	hd.SetSettings(Settings{Enable: true, EnableFMP4: true, SegDur: time.Second, SegNum: 3, SegRetain: 1, PartDur: 200 * time.Millisecond})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; ; i++ {
			at := time.Duration(i) * 40 * time.Millisecond
			au := [][]byte{{0x41, 0x9a, byte(i)}}
			if i%25 == 0 {
				au = [][]byte{{0x65, 0x88, byte(i)}}
			}
			pub.Write(&hub.Frame{Track: 0, Key: i%25 == 0, AU: au, PTS: at, DTS: at, Recv: time.Now()})
			pub.Write(&hub.Frame{Track: 1, AU: [][]byte{{0x21, byte(i)}}, PTS: at, DTS: at, Recv: time.Now()})
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
		hd.Close()
		ts.Close()
		h.Close()
	})
	return hd
}

// FuzzRequest: any request to the HLS handler, with any path, query,
// cookie and method, is answered with a status (never a panic, never a
// hang past the media's progress), and a refusal is a 4xx/5xx.
func FuzzRequest(f *testing.F) {
	tok := strings.Repeat("0a", 16)
	for _, s := range [][3]string{
		{"GET", "/live/f/hls.m3u8", ""},
		{"GET", "/live/f/hls.fmp4.m3u8", ""},
		{"GET", "/live/f/hls.fmp4.m3u8?berth_session=abc", ""},
		{"GET", "/live/f/index.m3u8?berth_session=" + tok + "&_HLS_msn=2&_HLS_part=1", ""},
		{"GET", "/live/f/index.m3u8?_HLS_msn=99999999999&_HLS_part=-1&_HLS_skip=YES", "berth_hls=" + tok},
		{"GET", "/live/f/hls-00000000-1.ts?berth_session=" + tok, ""},
		{"HEAD", "/live/f/hls-00000000-+1.ts", "berth_hls=x"},
		{"GET", "/live/f/init.mp4", ""},
		{"GET", "/live/none/hls.m3u8?user=a&pass=b", ""},
		{"POST", "/live/f/hls.m3u8", ""},
		{"OPTIONS", "/live/f/hls.m3u8", ""},
		{"GET", "/../f/hls.m3u8", ""},
		{"GET", "/live/f/video1_stream.m3u8?_HLS_msn=a", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	h := liveHandler(f)
	f.Fuzz(func(t *testing.T, method, target, cookie string) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n#") || strings.ContainsAny(method, " \r\n/") || method == "" {
			return // not a request line net/http would pass on
		}
		if strings.ContainsAny(cookie, "\r\n") {
			return
		}
		req, err := http.NewRequest(method, "http://berth"+target, nil)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req = req.WithContext(ctx)
		req.RemoteAddr = "192.0.2.1:5000"
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		w := httptest.NewRecorder()
		done := make(chan struct{})
		go func() { defer close(done); h.ServeHTTP(w, req) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s %s (cookie %q): no answer in 5 s", method, target, cookie)
		}
		if w.Code < 200 || w.Code > 599 {
			t.Errorf("%s %s: status %d", method, target, w.Code)
		}
	})
}

// FuzzSegmentName: a segment is found only by the exact name the playlist
// lists for it.
func FuzzSegmentName(f *testing.F) {
	for _, s := range []string{"hls-abcd-3.ts", "hls-abcd-03.ts", "hls-abcd-+3.ts", "hls-abcd-3", "hls-abcd--1.ts", "hls-abcd-18446744073709551616.ts", "x"} {
		f.Add(s)
	}
	set := Settings{SegDur: 2 * time.Second, SegNum: 3, SegRetain: 1}
	c := &tsChannel{id: "abcd", wake: make(chan struct{})}
	feed(c, set, 0, 9, false)
	f.Fuzz(func(t *testing.T, name string) {
		s := c.segment(name)
		if s == nil {
			return
		}
		if want := tsSegmentPrefix + c.id + "-"; !strings.HasPrefix(name, want) {
			t.Errorf("%q found segment %d", name, s.seq)
		}
	})
}
