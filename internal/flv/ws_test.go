package flv

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/testutil"
)

// TestWSFLVPlayersAreEventDriven: WS-FLV players (gorilla's client, as a
// page's WebSocket would be) get the FLV byte stream as binary messages
// with no goroutine of the server's each, where the system has the
// event-driven writer; a ping is answered with its pong, a player's close
// is echoed and ends its play, and the stream's end closes the others
// with 1000.
func TestWSFLVPlayersAreEventDriven(t *testing.T) {
	h := hub.New(hub.Options{})
	defer h.Close()
	pub, err := h.Publish("live/ws", hub.Origin{Proto: "test"}, hub.KindAU, []*hub.Track{codec.H264Track(testSPS, testPPS)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := h.Get("live/ws")
	fh := &Handler{Hub: h}
	srv := httptest.NewServer(fh)
	defer srv.Close()
	defer fh.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/live/ws.live.flv"
	dial := func() *websocket.Conn {
		c, res, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		if res.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("101 without the CORS header: %v", res.Header)
		}
		return c
	}
	first := dial() // the first starts the handler's senders and poller
	testutil.WaitFor(t, 5*time.Second, "the first player", func() bool { return st.Readers() == 1 })
	before := runtime.NumGoroutine()
	const n = 20
	var cs []*websocket.Conn
	for range n {
		cs = append(cs, dial())
	}
	testutil.WaitFor(t, 5*time.Second, "every player", func() bool { return st.Readers() == n+1 })
	if runtime.GOOS == "linux" {
		// The clients hold none while no one reads them; a server with a
		// goroutine per player (and one reading each page) would have 2n.
		testutil.WaitFor(t, 5*time.Second, "no server goroutine per waiting player", func() bool {
			return runtime.NumGoroutine() <= before+2
		})
	}
	for i := range 3 {
		pub.Write(&hub.Frame{Track: 0, Key: i == 0, AU: [][]byte{{0x65, byte(i)}}, PTS: time.Duration(i) * 40 * time.Millisecond, DTS: time.Duration(i) * 40 * time.Millisecond})
	}
	// Each player reads the byte stream whole: the FLV header, onMetaData,
	// the sequence header and three frames, in any split into messages.
	read := func(c *websocket.Conn) []byte {
		var stream []byte
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			typ, msg, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("after %d bytes: %v", len(stream), err)
			}
			if typ != websocket.BinaryMessage {
				t.Fatalf("message type %d, want binary", typ)
			}
			stream = append(stream, msg...)
			r, err := NewReader(bytes.NewReader(stream))
			if err != nil {
				continue
			}
			tags := 0
			for ; ; tags++ {
				if _, err := r.ReadTag(); err != nil {
					break
				}
			}
			if tags >= 5 {
				return stream
			}
		}
	}
	want := read(first)
	for _, c := range cs {
		if got := read(c); !bytes.Equal(got, want) {
			t.Fatalf("players got different streams (%d and %d bytes)", len(got), len(want))
		}
	}

	// A ping gets its pong, between the media messages.
	pong := make(chan string, 1)
	cs[0].SetPongHandler(func(s string) error { pong <- s; return nil })
	if err := cs[0].WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	go cs[0].ReadMessage() // control frames are handled while reading
	select {
	case s := <-pong:
		if s != "are you there" {
			t.Fatalf("pong %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong in 5 s")
	}

	// A player's close is echoed and ends its play only.
	closed := make(chan int, 1)
	cs[1].SetCloseHandler(func(code int, _ string) error { closed <- code; return nil })
	cs[1].WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye"), time.Now().Add(time.Second))
	go cs[1].ReadMessage()
	select {
	case code := <-closed:
		if code != websocket.CloseGoingAway {
			t.Fatalf("close reply %d, want the player's 1001 echoed", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no close reply in 5 s")
	}
	testutil.WaitFor(t, 5*time.Second, "the closed player's play to end", func() bool { return st.Readers() == n })

	// The stream's end closes the others with 1000.
	pub.Close()
	for _, c := range cs[2:] {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var err error
		for err == nil {
			_, _, err = c.ReadMessage()
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
			t.Fatalf("after the stream ended: %v, want a 1000 close", err)
		}
	}
}
