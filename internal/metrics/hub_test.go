package metrics

import (
	"errors"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/berthmedia/berth/internal/hub"
)

// A stream published into a hub and read by an RTSP and an HTTP-FLV player
// shows in the metrics as the hub counted it; when they leave, the gauges
// fall to 0 and the counters stay.
func TestCollectorsReadTheHub(t *testing.T) {
	h := hub.New(hub.Options{})
	defer h.Close()
	m := New(Sources{Hub: FromHub(h)})

	pub, err := h.Publish("live/a", hub.Origin{Proto: "rtsp", Remote: "127.0.0.1:5000"}, hub.KindRTP, []*hub.Track{{Video: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Publish("live/a", hub.Origin{Proto: "rtmp"}, hub.KindRTP, []*hub.Track{{Video: true}}, nil); !errors.Is(err, hub.ErrPathBusy) {
		t.Fatalf("second publish: %v, want busy", err)
	}
	if _, err := h.Subscribe("live/missing", hub.KindRTP, hub.Origin{Proto: "rtmp"}); !errors.Is(err, hub.ErrNotFound) {
		t.Fatalf("subscribe of a missing path: %v", err)
	}
	rtsp, err := h.Subscribe("live/a", hub.KindRTP, hub.Origin{Proto: "rtsp"})
	if err != nil {
		t.Fatal(err)
	}
	flv, err := h.Subscribe("live/a", hub.KindRTP, hub.Origin{Proto: "http-flv"})
	if err != nil {
		t.Fatal(err)
	}
	pkt := make([]byte, 100)
	pkt[1] = 0x80 // marker: the packet ends its video frame
	pub.Write(hub.NewRTPFrame(0, pkt, true, time.Time{}))
	for _, r := range []*hub.Reader{rtsp, flv} {
		if n, err := r.Read(make([]*hub.Frame, 4)); n != 1 || err != nil {
			t.Fatalf("read: %d, %v", n, err)
		}
	}
	in := pub.Stream().BytesIn.Load()
	if in != 100 {
		t.Fatalf("stream BytesIn = %d, want 100", in)
	}

	fams := scrape(t, m.Handler(), "", nil)
	want := map[string]map[string]float64{
		"berth_streams":                 {"protocol=rtsp": 1},
		"berth_readers":                 {"protocol=rtsp": 1, "protocol=http-flv": 1},
		"berth_received_bytes_total":    {"protocol=rtsp": float64(in)},
		"berth_sent_bytes_total":        {"protocol=rtsp": 100, "protocol=http-flv": 100},
		"berth_streams_published_total": {"": 1},
		"berth_streams_ended_total":     {"": 0},
		"berth_refused_total":           {"action=publish,reason=busy": 1, "action=play,reason=not_found": 1},
		"berth_reader_skips_total":      {"": 0},
		"berth_reader_drops_total":      {"": 0},
	}
	check(t, fams, want)

	rtsp.Close()
	flv.Close()
	pub.Close()
	fams = scrape(t, m.Handler(), "", nil)
	check(t, fams, map[string]map[string]float64{
		"berth_streams":             {"protocol=rtsp": 0},
		"berth_readers":             {"protocol=rtsp": 0, "protocol=http-flv": 0},
		"berth_sent_bytes_total":    {"protocol=rtsp": 100, "protocol=http-flv": 100},
		"berth_streams_ended_total": {"": 1},
	})
}

func check(t *testing.T, fams map[string]*dto.MetricFamily, want map[string]map[string]float64) {
	t.Helper()
	for name, w := range want {
		got := series(fams, name)
		if len(got) != len(w) {
			t.Errorf("%s = %v, want %v", name, got, w)
			continue
		}
		for k, v := range w {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("%s{%s} = %v (present %v), want %v", name, k, g, ok, v)
			}
		}
	}
}
