package ports

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestDialUDP: a sending socket binds src_port (a port in use is a Finding
// naming it, as a listener's), connects, and hears the peer's port
// unreachable as ECONNREFUSED.
func TestDialUDP(t *testing.T) {
	held, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	port := held.LocalAddr().(*net.UDPAddr).Port
	peer := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}

	_, err = DialUDP(Spec{Name: "rtp_send", Host: "127.0.0.1", Port: port}, peer)
	var f *Finding
	if !errors.As(err, &f) || f.Cause != CauseInUse || f.Spec.Name != "rtp_send" {
		t.Fatalf("binding a held port: %v, want an in-use Finding", err)
	}

	c, err := DialUDP(Spec{Name: "rtp_send", Host: "::"}, peer)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if a := c.LocalAddr().(*net.UDPAddr); a.IP.To4() == nil || a.Port == 0 {
		t.Errorf("a wildcard spec for an IPv4 peer bound %s", a)
	}
	held.Close() // nothing listens at the peer now
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 16)); !errors.Is(err, syscall.ECONNREFUSED) && !isWindowsReset(err) {
		t.Errorf("read after sending to a closed port: %v, want ECONNREFUSED", err)
	}
}

// TestDialTCP: a refused connect is the dial's error, not a Finding.
func TestDialTCP(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := DialTCP(context.Background(), Spec{Name: "rtp_send", Host: "127.0.0.1"}, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	l.Close()
	_, err = DialTCP(context.Background(), Spec{Name: "rtp_send", Host: "127.0.0.1"}, addr, 5*time.Second)
	var f *Finding
	if err == nil || errors.As(err, &f) {
		t.Errorf("connecting to a closed port: %v, want the dial's error", err)
	}
}
