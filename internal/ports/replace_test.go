package ports

import (
	"net"
	"testing"
)

// TestReplaceTCP: a replaced listener is the one Bound names afterwards
// (spec, map, URLs), the old one comes back open for the caller to close,
// and a nil listener removes the entry.
func TestReplaceTCP(t *testing.T) {
	b, err := BindAll([]Spec{
		{Name: "rtsp", Section: "rtsp", Network: "tcp", Host: "127.0.0.1"},
		{Name: "rtmp", Section: "rtmp", Network: "tcp", Host: "127.0.0.1"},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sp, _ := b.Spec("rtsp")
	nl, err := Listen(Spec{Name: "rtsp", Network: "tcp", Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	sp.Port = nl.Addr().(*net.TCPAddr).Port
	old := b.ReplaceTCP(sp, nl)
	if old == nil || old == nl {
		t.Fatal("the old listener did not come back")
	}
	if c, err := net.Dial("tcp", old.Addr().String()); err != nil {
		t.Errorf("the old listener was closed by ReplaceTCP: %v", err)
	} else {
		c.Close()
	}
	old.Close()
	if got, _ := b.Spec("rtsp"); got.Port != sp.Port || b.TCP["rtsp"] != nl || len(b.Specs) != 2 {
		t.Errorf("after replace: spec %+v, specs %d", got, len(b.Specs))
	}
	if r := b.ReplaceTCP(Spec{Name: "rtmp"}, nil); r == nil {
		t.Error("removing rtmp returned no listener")
	} else {
		r.Close()
	}
	if _, ok := b.Spec("rtmp"); ok || b.TCP["rtmp"] != nil || len(b.Specs) != 1 {
		t.Errorf("rtmp still bound after removal: %+v", b.Specs)
	}
}
