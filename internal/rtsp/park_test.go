//go:build linux

package rtsp_test

import (
	"context"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/format"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/ports"
	"github.com/berthmedia/berth/internal/rtsp"
	"github.com/berthmedia/berth/internal/sessions"
	"github.com/berthmedia/berth/internal/testutil"
)

// TestIdlePlayersHoldNoGoroutine: a TCP player waiting for its next
// request holds no goroutine of the server's (the poller waits for all of
// them); its keep-alives are still answered; a player that hangs up, one
// that sends TEARDOWN and one kicked by the API (its socket closed under
// it) all end their play, and the stream's end closes the rest.
func TestIdlePlayersHoldNoGoroutine(t *testing.T) {
	lb := &testutil.LogBuffer{}
	log := logging.New(lb, logging.LevelTrace)
	h := hub.New(hub.Options{Log: log})
	defer h.Close()
	var reg sessions.Registry
	srv := &rtsp.Server{Hub: h, Log: log, Instance: "test", KeepAlive: 5 * time.Second}
	l, err := ports.Listen(ports.Spec{Name: "rtsp", Section: "rtsp", Network: "tcp", Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(reg.Listener(l, "rtsp"))
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", lb.String())
		}
	}()
	ts := &testServer{addr: l.Addr().String(), hub: h, srv: srv, log: lb}
	publishDirect(t, ts, "live/idle", &format.H264{PayloadTyp: 96, PacketizationMode: 1})
	st := h.Get("live/idle")
	player := func() *rawSession {
		r := dialRaw(t, ts.addr)
		r.setupTCP(ts.url("live/idle")+"/trackID=0", 0, false)
		r.expect(base.StatusOK, base.Play, ts.url("live/idle"), nil, nil)
		return r
	}
	player() // the first starts the server's poller and senders
	testutil.WaitFor(t, 5*time.Second, "the first player to wait", func() bool { return st.Readers() == 1 })
	before := runtime.NumGoroutine()

	const n = 20
	var ps []*rawSession
	for range n {
		ps = append(ps, player())
	}
	// Each rawSession has one goroutine of its own (its reader); a server
	// with a goroutine per waiting player would have n more.
	settled := func(what string) {
		t.Helper()
		testutil.WaitFor(t, 5*time.Second, what+": no server goroutine per waiting player", func() bool {
			return runtime.NumGoroutine() <= before+n+2
		})
	}
	settled("after PLAY")
	for _, p := range ps {
		p.expect(base.StatusOK, base.GetParameter, ts.url("live/idle"), nil, nil)
	}
	settled("after a keep-alive each")

	ps[0].nc.Close()
	ps[1].expect(base.StatusOK, base.Teardown, ts.url("live/idle"), nil, nil)
	var kicked string
	for _, info := range reg.List() {
		if info.PeerPort == ps[2].nc.LocalAddr().(*net.TCPAddr).Port {
			kicked = info.ID
		}
	}
	if !reg.Kick(kicked) {
		t.Fatalf("could not kick the third player (%q)", kicked)
	}
	testutil.WaitFor(t, 10*time.Second, "three plays to end", func() bool { return st.Readers() == 1+n-3 })
	if _, err := ps[3].nc.Write(nil); err != nil || ps[3].isClosed() {
		t.Fatalf("an untouched player was closed: %v", err)
	}
	// The stream ends under players that wait on the poller: each is
	// closed (its watch stopped, its connection resumed to end).
	st.Close()
	testutil.WaitFor(t, 10*time.Second, "every waiting player to be closed", func() bool {
		for _, p := range ps[3:] {
			if !p.isClosed() {
				return false
			}
		}
		return st.Readers() == 0
	})
}
