package fmp4

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/testutil"
)

// players counts the hub's reader events.
type players struct{ added atomic.Int32 }

func (p *players) StreamPublished(*hub.Stream)              {}
func (p *players) StreamEnded(*hub.Stream)                  {}
func (p *players) ReaderAdded(*hub.Reader)                  { p.added.Add(1) }
func (p *players) ReaderRemoved(*hub.Reader)                {}
func (p *players) StreamNotFound(path string, _ hub.Origin) {}

func TestHandlerAnswers(t *testing.T) {
	obs := &players{}
	h := hub.New(hub.Options{Observer: obs})
	defer h.Close()
	pub, err := h.Publish("live/h", hub.Origin{Proto: "test"}, hub.KindAU, []*hub.Track{codec.H264Track(sps320, pps), aacTrack()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeGOPs(pub, 0, 15) // the hub keeps the GOP from frame 10: a muxer starts there
	ms := &Muxers{}
	defer ms.Close()
	checker := &auth.Checker{Play: []config.User{{Name: "u", Password: "p"}}}
	srv := httptest.NewServer(&Handler{Hub: h, Muxers: ms, Auth: checker})
	defer srv.Close()
	do := func(method, path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/live/h.live.mp4", http.StatusUnauthorized},
		{"GET", "/live/h.live.mp4?user=u&pass=no", http.StatusUnauthorized},
		{"GET", "/live/none.live.mp4?user=u&pass=p", http.StatusNotFound},
		{"HEAD", "/live/none.live.mp4?user=u&pass=p", http.StatusNotFound},
		{"GET", "/live/h.mp4?user=u&pass=p", http.StatusNotFound},
		{"POST", "/live/h.live.mp4?user=u&pass=p", http.StatusMethodNotAllowed},
		{"OPTIONS", "/live/h.live.mp4", http.StatusNoContent},
	} {
		res := do(c.method, c.path)
		res.Body.Close()
		if res.StatusCode != c.status || res.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s %s: %s (CORS %q), want %d", c.method, c.path, res.Status, res.Header.Get("Access-Control-Allow-Origin"), c.status)
		}
	}

	res := do("HEAD", "/live/h.live.mp4?user=u&pass=p")
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get(CodecsHeader) != "avc1.42c00d,mp4a.40.2" || res.Header.Get("Content-Type") != "video/mp4" {
		t.Errorf("HEAD: %s %v", res.Status, res.Header)
	}
	if n := obs.added.Load(); n != 0 {
		t.Errorf("a HEAD raised %d reader events; it is no player", n)
	}

	res = do("GET", "/live/h.live.mp4?user=u&pass=p")
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get(CodecsHeader) != "avc1.42c00d,mp4a.40.2" {
		t.Fatalf("GET: %s %v", res.Status, res.Header)
	}
	init, _ := ms.Get(pub.Stream()).Init()
	got := make([]byte, len(init)+8)
	if _, err := io.ReadFull(res.Body, got); err != nil {
		t.Fatal(err)
	}
	if string(got[:len(init)]) != string(init) || string(got[len(init)+4:]) != "moof" {
		t.Errorf("GET body does not begin with the init segment and a moof")
	}
	if n := pub.Stream().Readers(); n != 1 || obs.added.Load() != 1 {
		t.Errorf("one GET player: hub counts %d readers, %d events; want 1 and 1", n, obs.added.Load())
	}
}

// TestTwoHundredPlayersOneMuxer: 200 HTTP players of one stream at once are
// served by one muxer, and the hub counts 200 readers, then none.
func TestTwoHundredPlayersOneMuxer(t *testing.T) {
	h := hub.New(hub.Options{})
	defer h.Close()
	pub, err := h.Publish("live/many", hub.Origin{Proto: "test"}, hub.KindAU, []*hub.Track{codec.H264Track(sps320, pps), aacTrack()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ms := &Muxers{}
	defer ms.Close()
	srv := httptest.NewServer(&Handler{Hub: h, Muxers: ms})
	defer srv.Close()
	stop := make(chan struct{})
	wrote := make(chan struct{})
	go func() { // a live source: a frame every 10 ms until the test ends
		defer close(wrote)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			writeGOPs(pub, i, 1)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { close(stop); <-wrote }()

	const n = 200
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n}}
	bodies := make(chan io.ReadCloser, n)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			res, err := client.Get(srv.URL + "/live/many.live.mp4")
			if err != nil {
				errs <- err
				return
			}
			// init (ftyp+moov) and a few fragments, then hold the connection.
			if _, err := io.CopyN(io.Discard, res.Body, 4096); err != nil {
				res.Body.Close()
				errs <- err
				return
			}
			bodies <- res.Body
		}()
	}
	var open []io.ReadCloser
	for len(open) < n {
		select {
		case b := <-bodies:
			open = append(open, b)
		case err := <-errs:
			t.Fatalf("a player: %v", err)
		case <-time.After(20 * time.Second):
			t.Fatalf("%d of %d players got their first 4 KB", len(open), n)
		}
	}
	if ms.Started() != 1 {
		t.Errorf("%d muxers started for %d players of one stream, want 1", ms.Started(), n)
	}
	if got := pub.Stream().Readers(); got != n {
		t.Errorf("hub counts %d readers, want %d", got, n)
	}
	for _, b := range open {
		b.Close()
	}
	testutil.WaitFor(t, 10*time.Second, "every player to leave and the muxer to stop", func() bool {
		return pub.Stream().Readers() == 0 && ms.Running() == 0
	})
}
