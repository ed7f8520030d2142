package sessions

import (
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// serve wraps a fresh 127.0.0.1:0 listener and hands every accepted
// connection to got.
func serve(t *testing.T, r *Registry, typ string) (addr string, got chan net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := r.Listener(l, typ)
	t.Cleanup(func() { wl.Close() })
	got = make(chan net.Conn, 8)
	go func() {
		for {
			c, err := wl.Accept()
			if err != nil {
				return
			}
			got <- c
		}
	}()
	return l.Addr().String(), got
}

func accept(t *testing.T, got chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c := <-got:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted within 5 s")
		return nil
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestAConnectionIsListedWithItsAddressesUntilClosed(t *testing.T) {
	var r Registry
	addr, got := serve(t, &r, "RtspSession")
	client := dial(t, addr)
	sc := accept(t, got)

	list := r.List()
	if len(list) != 1 {
		t.Fatalf("List: %d connections, want 1", len(list))
	}
	in := list[0]
	local := client.LocalAddr().(*net.TCPAddr)
	server := client.RemoteAddr().(*net.TCPAddr)
	if in.Type != "RtspSession" || in.PeerIP != "127.0.0.1" || in.PeerPort != local.Port ||
		in.LocalIP != "127.0.0.1" || in.LocalPort != server.Port || in.ID == "" || in.Since.IsZero() {
		t.Fatalf("Info %+v, want RtspSession from 127.0.0.1:%d to port %d", in, local.Port, server.Port)
	}
	if id := sc.(interface{ ID() string }).ID(); id != in.ID {
		t.Fatalf("the conn's ID() %q, the registry's %q", id, in.ID)
	}
	if _, ok := r.Get(in.ID); !ok {
		t.Fatal("Get does not find a listed id")
	}
	sc.Close()
	if n := r.Len(); n != 0 {
		t.Fatalf("after Close: %d connections listed", n)
	}
	sc.Close() // twice is harmless
}

func TestTheWrappedConnKeepsItsSocket(t *testing.T) {
	var r Registry
	addr, got := serve(t, &r, "RtmpSession")
	dial(t, addr)
	sc, ok := accept(t, got).(syscall.Conn)
	if !ok {
		t.Fatal("the wrapped conn is not a syscall.Conn: internal/fanout could not write to it")
	}
	if _, err := sc.SyscallConn(); err != nil {
		t.Fatalf("SyscallConn: %v", err)
	}
}

// CloseWrite half-closes as on a *net.TCPConn: the client reads what was
// written, then EOF, and can still write.
func TestTheWrappedConnHalfCloses(t *testing.T) {
	var r Registry
	addr, got := serve(t, &r, "HttpSession")
	client := dial(t, addr)
	sc := accept(t, got)
	if _, err := sc.(io.ReaderFrom).ReadFrom(strings.NewReader("bye")); err != nil {
		t.Fatal(err)
	}
	if err := sc.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(client)
	if string(b) != "bye" || err != nil {
		t.Fatalf("client read %q, %v; want bye then EOF", b, err)
	}
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatalf("the client cannot write after the server's half-close: %v", err)
	}
}

// Kick from another goroutine ends the server side's blocked read, and the
// client sees the disconnect.
func TestKickClosesTheConnectionUnderItsReader(t *testing.T) {
	var r Registry
	addr, got := serve(t, &r, "HttpSession")
	client := dial(t, addr)
	sc := accept(t, got)
	readDone := make(chan error, 1)
	go func() {
		_, err := sc.Read(make([]byte, 1))
		readDone <- err
	}()
	id := sc.(interface{ ID() string }).ID()
	if !r.Kick(id) {
		t.Fatal("Kick of an open connection reported false")
	}
	select {
	case err := <-readDone:
		if err == nil {
			t.Fatal("the server's read returned no error after Kick")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server's read still blocks 5 s after Kick")
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := client.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client read after Kick: %v, want EOF", err)
	}
	if r.Kick(id) || r.Len() != 0 {
		t.Fatalf("after Kick: Kick again true or %d still listed", r.Len())
	}
	if r.Kick("nope") {
		t.Fatal("Kick of an unknown id reported true")
	}
}

func TestAcceptedCountsByTypeExceptUncounted(t *testing.T) {
	var probing atomic.Bool
	r := &Registry{Uncounted: func(net.Conn) bool { return probing.Load() }}
	rtsp, gotRTSP := serve(t, r, "RtspSession")
	serve(t, r, "RtmpSession")
	dial(t, rtsp)
	accept(t, gotRTSP)
	probing.Store(true)
	dial(t, rtsp)
	accept(t, gotRTSP)
	if n := r.Len(); n != 2 {
		t.Fatalf("%d connections listed, want 2 (an uncounted one is listed too)", n)
	}
	acc := r.Accepted()
	if acc["RtspSession"] != 1 {
		t.Fatalf("Accepted %v, want RtspSession 1 (the uncounted one left out)", acc)
	}
	if n, ok := acc["RtmpSession"]; !ok || n != 0 {
		t.Fatalf("Accepted %v: a wrapped listener's type is there at 0", acc)
	}
}

// udpConn is a connection that came from no listener: a UDP "connection"
// as gosrt's SRT connections are, with the addresses given.
type udpConn struct {
	net.Conn
	local, peer *net.UDPAddr
	closed      atomic.Bool
}

func (c *udpConn) LocalAddr() net.Addr  { return c.local }
func (c *udpConn) RemoteAddr() net.Addr { return c.peer }
func (c *udpConn) Close() error         { c.closed.Store(true); return nil }

func TestRegisterListsAConnectionFromNoListener(t *testing.T) {
	for _, c := range []struct {
		name, peer, wantIP string
	}{
		{"IPv4", "127.0.0.1", "127.0.0.1"},
		{"IPv4 on a dual-stack socket", "::ffff:10.0.0.7", "10.0.0.7"},
		{"IPv6", "::1", "::1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r Registry
			nc := &udpConn{local: &net.UDPAddr{IP: net.IPv6zero, Port: 9000}, peer: &net.UDPAddr{IP: net.ParseIP(c.peer), Port: 5555}}
			rc := r.Register(nc, "SRT::SrtSession")
			in, ok := r.Get(rc.ID())
			if !ok || in.Type != "SRT::SrtSession" || in.PeerIP != c.wantIP || in.PeerPort != 5555 || in.LocalPort != 9000 {
				t.Fatalf("Get = %+v, %v; want SRT::SrtSession from %s:5555 on port 9000", in, ok, c.wantIP)
			}
			if n := r.Accepted()["SRT::SrtSession"]; n != 1 {
				t.Errorf("Accepted = %d, want 1", n)
			}
			if !r.Kick(rc.ID()) || !nc.closed.Load() || r.Len() != 0 {
				t.Errorf("Kick did not close and remove the connection")
			}
			rc2 := r.Register(nc, "SRT::SrtSession")
			nc.closed.Store(false)
			rc2.Unregister()
			if r.Len() != 0 || nc.closed.Load() {
				t.Errorf("Unregister: %d listed, closed %v; want none listed and the connection left open", r.Len(), nc.closed.Load())
			}
		})
	}
}

// layer is a connection over another, as tls.Conn and fanout.SealConn are.
type layer struct{ net.Conn }

func (l layer) NetConn() net.Conn { return l.Conn }

// TestIDOfLooksThroughLayers: a registered connection is found under the
// layers a TLS listener puts over it; anything else has no id.
func TestIDOfLooksThroughLayers(t *testing.T) {
	var r Registry
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := r.Register(a, "rtsp")
	for name, tc := range map[string]struct {
		nc   net.Conn
		want string
	}{
		"registered":         {c, c.ID()},
		"under TLS":          {layer{c}, c.ID()},
		"under TLS and seal": {layer{layer{c}}, c.ID()},
		"not registered":     {b, ""},
		"layer over nothing": {layer{b}, ""},
		"nil":                {nil, ""},
	} {
		if got := IDOf(tc.nc); got != tc.want {
			t.Errorf("%s: IDOf = %q, want %q", name, got, tc.want)
		}
	}
}
