package httpstream

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestWSSinkTimeoutIsDeadlineExceeded: a WebSocket player that reads
// nothing fails the sink's write with an error that matches
// os.ErrDeadlineExceeded (so the handlers log the drop as such), as an
// HTTP player's does; both batch forms.
func TestWSSinkTimeoutIsDeadlineExceeded(t *testing.T) {
	for _, perBuffer := range []bool{false, true} {
		errc := make(chan error, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := Upgrader.Upgrade(w, r, nil)
			if err != nil {
				errc <- err
				return
			}
			defer c.Close()
			s := &WSSink{C: c, Timeout: 200 * time.Millisecond, PerBuffer: perBuffer}
			chunk := make([]byte, 256<<10)
			for {
				if _, err := s.Write([][]byte{chunk, chunk}); err != nil {
					errc <- err
					return
				}
			}
		}))
		c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
		if err != nil {
			t.Fatal(err)
		}
		// The client reads nothing: the server's socket fills.
		select {
		case err := <-errc:
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("perBuffer=%v: the write failed with %v (%T); want it to match os.ErrDeadlineExceeded", perBuffer, err, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("perBuffer=%v: the write to a player that reads nothing did not fail", perBuffer)
		}
		c.Close()
		srv.Close()
	}
}
