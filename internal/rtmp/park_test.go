//go:build linux

package rtmp

import (
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/testutil"
)

// TestIdlePlayersHoldNoGoroutine: an RTMP player waiting for its next
// message holds no goroutine of the server's (the poller waits for all of
// them); a ping is still answered, a player that hangs up ends its play,
// and the publisher's leaving ends the rest.
func TestIdlePlayersHoldNoGoroutine(t *testing.T) {
	ts := startServer(t, nil)
	pub, err := ts.hub.Publish("live/idle", hub.Origin{Proto: "test"}, hub.KindAU,
		[]*hub.Track{codec.H264Track(testSPS, testPPS)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	st := ts.hub.Get("live/idle")
	player := func() *Client {
		c := connected(t, ts.addr)
		if code, err := c.Play("idle"); err != nil || code != "NetStream.Play.Start" {
			t.Fatalf("play: %q, %v", code, err)
		}
		return c
	}
	player() // the first starts the server's poller and senders
	testutil.WaitFor(t, 5*time.Second, "the first player", func() bool { return st.Readers() == 1 })
	before := runtime.NumGoroutine()
	const n = 20
	var ps []*Client
	for range n {
		ps = append(ps, player())
	}
	settled := func(what string) {
		t.Helper()
		testutil.WaitFor(t, 5*time.Second, what+": no server goroutine per waiting player", func() bool {
			return runtime.NumGoroutine() <= before+2
		})
	}
	settled("after play")

	for i, c := range ps[:5] {
		ping := binary.BigEndian.AppendUint32([]byte{0, ucPingRequest}, uint32(i))
		if err := c.WriteMessage(csidControl, msgUserControl, 0, 0, ping); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("player %d: no ping response: %v", i, err)
			}
			if m.Type == msgUserControl && len(m.Body) >= 6 && binary.BigEndian.Uint16(m.Body) == ucPingResponse {
				if got := binary.BigEndian.Uint32(m.Body[2:]); got != uint32(i) {
					t.Fatalf("player %d: ping response %d", i, got)
				}
				break
			}
		}
	}
	settled("after a ping each")

	ps[0].Close()
	testutil.WaitFor(t, 5*time.Second, "the play of the player that hung up to end", func() bool { return st.Readers() == n })
	pub.Close()
	testutil.WaitFor(t, 5*time.Second, "every play to end with the stream", func() bool { return st.Readers() == 0 })
}
