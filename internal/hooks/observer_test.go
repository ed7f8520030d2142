package hooks

import (
	"context"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/testutil"
)

var audioTrack = []*hub.Track{{}} // one audio track: every frame is a keyframe

// TestAutoCloseClosesAStreamWithoutPlayers: on_publish's auto_close ends a
// stream that has no player after streamNoneReaderDelayMS, without asking
// on_stream_none_reader.
func TestAutoCloseClosesAStreamWithoutPlayers(t *testing.T) {
	hs := newHookServer(t, func(hook string, _ int) (int, string) { return 200, `{"code":0,"auto_close":true}` })
	cfg := testConfig(hs.URL, "on_publish")
	cfg.General.StreamNoneReaderDelayMS = 50
	c, logs := newClient(t, cfg)
	h := hub.New(hub.Options{Observer: c.Observer()})
	if err := c.Authorize(context.Background(), auth.Request{Action: auth.Publish, Proto: "rtsp", App: "live", Stream: "auto"}); err != nil {
		t.Fatal(err)
	}
	pub, err := h.Publish("live/auto", hub.Origin{Proto: "rtsp"}, hub.KindAU, audioTrack, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := c.PublishOptions(pub.Stream()); !ok || o.AutoClose == nil || !*o.AutoClose {
		t.Fatalf("options not on the stream: %+v %v", o, ok)
	}
	select {
	case <-pub.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the stream without players was not closed")
	}
	logs.WaitLine(t, "auto_close", "path=live/auto")
	testutil.WaitFor(t, 5*time.Second, "the options to go with the stream (StreamEnded runs after Done closes)", func() bool {
		_, ok := c.PublishOptions(pub.Stream())
		return !ok
	})
}

// TestAPlayerStopsTheNoneReaderWait and a player leaving starts it again;
// the flow report of a player below flowThreshold is not sent.
func TestAPlayerStopsTheNoneReaderWait(t *testing.T) {
	hs := newHookServer(t, nil)
	cfg := testConfig(hs.URL, "on_flow_report")
	cfg.Hook.OnStreamNoneReader = hs.URL + "/index/hook/on_stream_none_reader"
	cfg.General.StreamNoneReaderDelayMS = 200
	cfg.General.FlowThreshold = 1 // KB
	c, _ := newClient(t, cfg)
	h := hub.New(hub.Options{Observer: c.Observer()})
	pub, err := h.Publish("live/p", hub.Origin{Proto: "rtmp", Remote: "10.0.0.2:1935"}, hub.KindAU, audioTrack, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := h.Subscribe("live/p", hub.KindAU, hub.Origin{Proto: "http-flv", Remote: "10.0.0.3:4000"})
	if err != nil {
		t.Fatal(err)
	}
	pub.Write(&hub.Frame{AU: [][]byte{make([]byte, 100)}})
	frames := make([]*hub.Frame, 4)
	if _, err := r.Read(frames); err != nil {
		t.Fatal(err)
	}
	if _, armed := c.timers.Load(pub.Stream()); armed {
		t.Fatal("the none-reader wait runs while a player reads")
	}
	r.Close()
	testutil.WaitFor(t, 5*time.Second, "on_stream_none_reader after the player left", func() bool {
		return len(hs.of("on_stream_none_reader")) == 1
	})
	b := hs.of("on_stream_none_reader")[0].body
	if b["schema"] != "rtmp" || b["app"] != "live" || b["stream"] != "p" || b["vhost"] != DefaultVhost {
		t.Errorf("on_stream_none_reader body %v", b)
	}
	for range 20 {
		pub.Write(&hub.Frame{AU: [][]byte{make([]byte, 100)}})
	}
	pub.Close()
	testutil.WaitFor(t, 5*time.Second, "the publisher's on_flow_report", func() bool { return len(hs.of("on_flow_report")) == 1 })
	fr := hs.of("on_flow_report")[0].body
	if fr["player"] != false || fr["totalBytes"] != 2100.0 || fr["ip"] != "10.0.0.2" || fr["schema"] != "rtmp" {
		t.Errorf("on_flow_report %v (the 100-byte player must not be reported)", fr)
	}
}
