package hls

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
)

// gotAU is one access unit as gohlslib's client handed it over.
type gotAU struct {
	pts int64
	au  [][]byte
}

// quietClient is gohlslib's client of url, without its log line per request.
func quietClient(url string, onTracks func([]*gohlslib.Track) error) *gohlslib.Client {
	return &gohlslib.Client{
		URI:                       url,
		OnDownloadPrimaryPlaylist: func(string) {},
		OnDownloadStreamPlaylist:  func(string) {},
		OnDownloadSegment:         func(string) {},
		OnDownloadPart:            func(string) {},
		OnTracks:                  onTracks,
	}
}

// readBack plays url with gohlslib's client until it has n video and n
// audio access units, and returns them.
func readBack(t *testing.T, url string, n int) (video, audio []gotAU) {
	t.Helper()
	var mu sync.Mutex
	full := make(chan struct{})
	var once sync.Once
	check := func() {
		if len(video) >= n && len(audio) >= n {
			once.Do(func() { close(full) })
		}
	}
	var c *gohlslib.Client
	c = quietClient(url, func(tracks []*gohlslib.Track) error {
		for _, tr := range tracks {
			switch tr.Codec.(type) {
			case *codecs.H264:
				c.OnDataH26x(tr, func(pts, _ int64, au [][]byte) {
					mu.Lock()
					defer mu.Unlock()
					video = append(video, gotAU{pts: pts, au: au})
					check()
				})
			case *codecs.MPEG4Audio:
				c.OnDataMPEG4Audio(tr, func(pts int64, aus [][]byte) {
					mu.Lock()
					defer mu.Unlock()
					for _, a := range aus {
						audio = append(audio, gotAU{pts: pts, au: [][]byte{a}})
					}
					check()
				})
			}
		}
		return nil
	})
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-full:
	case err := <-c.Wait():
		t.Fatalf("%s: the client stopped: %v", url, err)
	case <-time.After(20 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%s: %d video and %d audio units in 20 s, want %d of each", url, len(video), len(audio), n)
	}
	mu.Lock()
	defer mu.Unlock()
	return video[:n:n], audio[:n:n]
}

// waitSegments waits until url's playlist lists n segments: gohlslib's
// client starts three segments from the live edge and gives up on a
// shorter playlist (the first one answered lists the first segment).
func waitSegments(t *testing.T, url string, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Count(string(b), "#EXTINF") >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s lists fewer than %d segments after 15 s:\n%s", url, n, b)
		}
		time.Sleep(200 * time.Millisecond) // the media's pace: a segment a second
	}
}

// frameNo is the frame number liveHandler wrote into a unit's last byte.
func frameNo(nal []byte) byte { return nal[len(nal)-1] }

// TestRoundTrip: what liveHandler publishes (H.264 frames numbered in
// their last byte, a keyframe every 25, and AAC frames numbered the same)
// comes back through each HLS form and gohlslib's client unchanged: the
// first video unit a keyframe with its parameter sets in front, then every
// frame in order with none missing, 40 ms apart, and the audio in step.
func TestRoundTrip(t *testing.T) {
	srv := httptest.NewServer(liveHandlerEvery(t, 40*time.Millisecond)) // real time: gohlslib's client plays at that pace
	defer srv.Close()
	for _, entry := range []string{TSPlaylist, FMP4Playlist} {
		t.Run(entry, func(t *testing.T) {
			if entry == TSPlaylist {
				waitSegments(t, srv.URL+"/live/f/"+entry, 3)
			}
			video, audio := readBack(t, srv.URL+"/live/f/"+entry, 60)

			first := video[0].au
			var types []byte
			for _, nal := range first {
				types = append(types, nal[0]&0x1f)
			}
			if !bytes.Equal(types, []byte{7, 8, 5}) {
				t.Errorf("first video unit has NAL types %v, want SPS, PPS, IDR [7 8 5]", types)
			} else if !bytes.Equal(first[0], sps320) || !bytes.Equal(first[1], pps320) {
				t.Errorf("parameter sets changed on the way: %x %x", first[0], first[1])
			}
			clock := int64(90000)
			for i := 1; i < len(video); i++ {
				prev, cur := video[i-1], video[i]
				slice := cur.au[len(cur.au)-1]
				if want := frameNo(prev.au[len(prev.au)-1]) + 1; frameNo(slice) != want {
					t.Fatalf("video unit %d is frame %d, want %d (a frame lost or repeated)", i, frameNo(slice), want)
				}
				if want := i%25 == 0; (slice[0]&0x1f == 5) != want { // the first is a keyframe, then one in 25
					t.Errorf("frame %d: NAL type %d", frameNo(slice), slice[0]&0x1f)
				}
				if d := cur.pts - prev.pts; d != clock*40/1000 {
					t.Errorf("frame %d follows %d ticks after the one before, want %d", frameNo(slice), d, clock*40/1000)
				}
			}
			// Audio: numbered like the video; in step within one frame.
			for i := 1; i < len(audio); i++ {
				if want := audio[i-1].au[0][1] + 1; audio[i].au[0][1] != want {
					t.Fatalf("audio unit %d is frame %d, want %d", i, audio[i].au[0][1], want)
				}
			}
			v0, a0 := frameNo(first[len(first)-1]), audio[0].au[0][1]
			if d := int(a0) - int(v0); d < -1 || d > 1 {
				t.Errorf("video starts at frame %d, audio at frame %d: want them within a frame", v0, a0)
			}
		})
	}
}
