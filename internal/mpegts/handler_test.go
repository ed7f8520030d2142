package mpegts

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/testutil"
)

func TestStreamPath(t *testing.T) {
	for _, c := range []struct {
		url, path string
	}{
		{"/live/s.live.ts", "live/s"},
		{"/a/b/c.live.ts", "a/b/c"},
		{"live/s.live.ts/", "live/s"},
		{"/live/s.ts", ""},
		{"/live/s.live.mp4", ""},
		{"/live/s.live.flv", ""},
		{"/.live.ts", ""},
		{"/../x.live.ts", ""},
		{"/live/s.live.ts.bak", ""},
	} {
		got, ok := StreamPath(c.url)
		if got != c.path || ok != (c.path != "") {
			t.Errorf("%s: %q %v, want %q", c.url, got, ok, c.path)
		}
	}
}

func TestHandlerAnswers(t *testing.T) {
	h := hub.New(hub.Options{})
	defer h.Close()
	pub, err := h.Publish("live/h", hub.Origin{Proto: "test"}, hub.KindAU, []*hub.Track{codec.H264Track(sps320, pps), aacTrack()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	g711, _ := h.Publish("live/g", hub.Origin{Proto: "test"}, hub.KindAU, []*hub.Track{codec.G711Track(true, 8000, 1)}, nil)
	defer g711.Close()
	writeAV(pub, false, true, 0, 15, 0) // the hub keeps the GOP from frame 10: a muxer starts there
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
		{"GET", "/live/h.live.ts", http.StatusUnauthorized},
		{"GET", "/live/none.live.ts?user=u&pass=p", http.StatusNotFound},
		{"HEAD", "/live/none.live.ts?user=u&pass=p", http.StatusNotFound},
		{"GET", "/live/h.ts?user=u&pass=p", http.StatusNotFound},
		{"GET", "/live/g.live.ts?user=u&pass=p", http.StatusUnsupportedMediaType},
		{"POST", "/live/h.live.ts?user=u&pass=p", http.StatusMethodNotAllowed},
		{"OPTIONS", "/live/h.live.ts", http.StatusNoContent},
	} {
		res := do(c.method, c.path)
		res.Body.Close()
		if res.StatusCode != c.status || res.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s %s: %s (CORS %q), want %d", c.method, c.path, res.Status, res.Header.Get("Access-Control-Allow-Origin"), c.status)
		}
	}

	res := do("HEAD", "/live/h.live.ts?user=u&pass=p")
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "video/mp2t" || res.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("HEAD: %s %v", res.Status, res.Header)
	}
	res = do("GET", "/live/h.live.ts?user=u&pass=p")
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "video/mp2t" {
		t.Fatalf("GET: %s %v", res.Status, res.Header)
	}
	first := make([]byte, 2*188)
	if _, err := io.ReadFull(res.Body, first); err != nil {
		t.Fatal(err)
	}
	if p := pids(t, first, 2); p[0] != 0 || p[1] != pmtPID {
		t.Errorf("GET body starts with PIDs %v, want PAT then PMT", p)
	}
	testutil.WaitFor(t, 5*time.Second, "the player's bytes to be counted", func() bool {
		l := pub.Stream().ReaderList()
		return len(l) == 1 && l[0].Who().Proto == "http-ts" && l[0].Bytes() > 0
	})
}
