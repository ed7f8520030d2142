package flv

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
)

// TestHandlerServesOverHTTPAndTLS: an HTTP-FLV player gets the header, the
// sequence header and the frames the publisher writes, over plain HTTP (the
// event-driven player where the system has one) and over TLS (a taken-over
// TLS connection cannot be written with a raw writev: served the plain way).
func TestHandlerServesOverHTTPAndTLS(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(http.Handler) *httptest.Server
	}{{"http", httptest.NewServer}, {"tls", httptest.NewTLSServer}} {
		t.Run(tc.name, func(t *testing.T) {
			h := hub.New(hub.Options{})
			defer h.Close()
			pub, err := h.Publish("live/s", hub.Origin{Proto: "test"}, hub.KindAU, []*hub.Track{codec.H264Track(testSPS, testPPS)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			fh := &Handler{Hub: h}
			srv := tc.start(fh)
			defer srv.Close()
			defer fh.Close() // first: a live response never ends on its own
			res, err := srv.Client().Get(srv.URL + "/live/s.live.flv")
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "video/x-flv" || res.Header.Get("Access-Control-Allow-Origin") != "*" {
				t.Fatalf("status %s, headers %v", res.Status, res.Header)
			}
			for i := 0; i < 3; i++ {
				pub.Write(&hub.Frame{Track: 0, Key: i == 0, AU: [][]byte{{0x65, byte(i)}}, PTS: time.Duration(i) * 40 * time.Millisecond, DTS: time.Duration(i) * 40 * time.Millisecond})
			}
			r, err := NewReader(res.Body)
			if err != nil || !r.Video {
				t.Fatalf("FLV header: video %v, %v", r != nil && r.Video, err)
			}
			var types []byte
			for len(types) < 5 { // onMetaData, the AVC sequence header, three frames
				tag, err := r.ReadTag()
				if err != nil {
					t.Fatalf("after tags %v: %v", types, err)
				}
				types = append(types, tag.Type)
			}
			if types[0] != TagScript || types[1] != TagVideo || types[4] != TagVideo {
				t.Fatalf("tag types %v, want onMetaData then video", types)
			}
		})
	}
}
