package srt

import (
	"context"
	"runtime"
	"testing"
	"time"

	gosrt "github.com/datarhei/gosrt"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
)

// TestShutdownLeavesNoGoroutines: a server that took a publisher and a
// player of a missing stream, then shut down, leaves no goroutine behind
// (gosrt's included).
func TestShutdownLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	h := hub.New(hub.Options{Log: logging.Discard()})
	defer h.Close()
	s := &Server{Hub: h, Log: logging.Discard()}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	var conns []gosrt.Conn
	for _, sid := range []string{"#!::r=live/s,m=publish", "#!::r=live/none,m=request"} {
		c := gosrt.DefaultConfig()
		c.StreamId = sid
		conn, err := gosrt.Dial("srt", s.Addr().String(), c)
		if err != nil {
			t.Fatalf("dial %s: %v", sid, err)
		}
		conns = append(conns, conn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.Shutdown(ctx)
	<-served
	for _, c := range conns {
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling the condition, with the deadline above
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after shutdown, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
