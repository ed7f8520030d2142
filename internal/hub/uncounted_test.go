package hub

import (
	"slices"
	"testing"
	"time"
)

// TestUncountedReaderIsNoPlayer: a muxer's own reader reads frames but is
// not in Readers or ReaderList and raises no reader event; a player's
// registration that never reads counts once, and AddBytes credits it with
// what its muxer sent.
func TestUncountedReaderIsNoPlayer(t *testing.T) {
	rec := &recorder{}
	h, _ := newTestHub(t, Options{Observer: rec})
	p := mustPublish(t, h, "live/u", videoTracks)
	s := p.Stream()
	mux, err := s.SubscribeUncounted(KindRTP, Origin{Proto: "fmp4", ID: "muxer"})
	if err != nil {
		t.Fatal(err)
	}
	p.Write(NewRTPFrame(0, make([]byte, 100), true, time.Time{}))
	if got, err := readNow(t, mux); len(got) != 1 || err != nil {
		t.Fatalf("muxer read %v, %v", got, err)
	}
	if s.Readers() != 0 || len(s.ReaderList()) != 0 || len(h.Stats().BytesOut) != 0 {
		t.Errorf("the muxer counts as a player: readers %d, list %d, bytes out %v", s.Readers(), len(s.ReaderList()), h.Stats().BytesOut)
	}
	mux.AddBytes(10) // nothing: not a player
	player, err := s.Subscribe(KindRTP, Origin{Proto: "http-fmp4"})
	if err != nil {
		t.Fatal(err)
	}
	player.AddBytes(500)
	if s.Readers() != 1 || player.Bytes() != 500 || h.Stats().BytesOut["http-fmp4"] != 500 {
		t.Errorf("player: readers %d, bytes %d, stats %v", s.Readers(), player.Bytes(), h.Stats().BytesOut)
	}
	player.Close()
	mux.Close()
	want := []string{"published live/u", "reader+ live/u http-fmp4 readers=1", "reader- live/u http-fmp4 readers=0 bytes=500"}
	if got := rec.list(); !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}
