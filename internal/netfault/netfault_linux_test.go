package netfault

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// TestLinkCarriesDelaysAndBlocks: a TCP connection from a namespace to a
// listener in the root namespace works over a link; a delayed link still
// carries it; a blocked one drops every packet until it is unblocked, and
// the connection then goes on (TCP retransmits), with no FIN or RST seen.
func TestLinkCarriesDelaysAndBlocks(t *testing.T) {
	Require(t)
	ns := NewNS(t)
	l := NewLink(t, ns)
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			c.Write([]byte(line))
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	var c net.Conn
	if err := ns.Do(func() (err error) {
		c, err = net.DialTimeout("tcp4", net.JoinHostPort(l.Host, port), 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.LocalAddr().(*net.TCPAddr).IP.String(); got != l.Peer {
		t.Fatalf("the connection leaves from %s, want the namespace's %s", got, l.Peer)
	}
	r := bufio.NewReader(c)
	echo := func(s string) (string, error) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte(s + "\n")); err != nil {
			return "", err
		}
		return r.ReadString('\n')
	}
	if got, err := echo("plain"); err != nil || got != "plain\n" {
		t.Fatalf("echo over the link: %q, %v", got, err)
	}
	l.Down.Set(100*time.Millisecond, 0)
	if got, err := echo("delayed"); err != nil || got != "delayed\n" {
		t.Fatalf("echo over the delayed link: %q, %v", got, err)
	}
	l.Down.Set(0, 0)

	l.Block()
	dropped := l.Up.Dropped.Load()
	c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	c.Write([]byte("blocked\n"))
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("an answer came over a blocked link")
	}
	if l.Up.Dropped.Load() == dropped {
		t.Error("the blocked link dropped nothing")
	}
	l.Unblock()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if got, err := r.ReadString('\n'); err != nil || got != "blocked\n" {
		t.Fatalf("after unblocking: %q, %v; want the line sent while blocked (retransmitted)", got, err)
	}
}
