package srt

import (
	"context"
	"testing"
	"time"

	gosrt "github.com/datarhei/gosrt"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/limits"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/testutil"
)

// TestSRTSessionsCountAgainstThePerIPCap: SRT has no TCP connection for the
// listeners' caps to count, so its sessions are counted where a handshake
// is accepted: a caller over max_connections_per_ip is refused with
// REJX_OVERLOAD and the refusal logged with the key.
func TestSRTSessionsCountAgainstThePerIPCap(t *testing.T) {
	lb := &testutil.LogBuffer{}
	log := logging.New(lb, logging.LevelTrace)
	h := hub.New(hub.Options{Log: log})
	defer h.Close()
	conns := &limits.Conns{Warn: &limits.Warner{Log: log}}
	conns.Set(0, 1, false) // loopback held to the cap: the test's callers are on 127.0.0.1
	s := &Server{Hub: h, Log: log, Conns: conns}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	}()
	dial := func(sid string) (gosrt.Conn, error) {
		c := gosrt.DefaultConfig()
		c.StreamId = sid
		return gosrt.Dial("srt", s.Addr().String(), c)
	}
	first, err := dial("#!::r=live/a,m=publish")
	if err != nil {
		t.Fatalf("the first caller was refused: %v", err)
	}
	defer first.Close()
	if second, err := dial("#!::r=live/b,m=publish"); err == nil {
		second.Close()
		t.Fatal("a second SRT caller from 127.0.0.1 got in with max_connections_per_ip=1")
	}
	lb.WaitLine(t, "srt connection from 127.0.0.1 refused", "raise [general] max_connections_per_ip")
	// The first one's end frees the place.
	first.Close()
	testutil.WaitFor(t, 5*time.Second, "the first session counted out", func() bool { return conns.Open() == 0 })
	third, err := dial("#!::r=live/c,m=publish")
	if err != nil {
		t.Fatalf("a caller after the first left was refused: %v", err)
	}
	third.Close()
}
