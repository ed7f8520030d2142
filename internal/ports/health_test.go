package ports

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// Health lists each listener's sockets and its self-probe: an HTTP port
// that accepts but never answers fails the probe with the line the start
// logs; an RTP port has no probe.
func TestHealthNamesSocketsAndProbes(t *testing.T) {
	b, err := BindAll([]Spec{
		{Name: "http", Network: "tcp", Host: "127.0.0.1"},
		{Name: "rtp_proxy", Network: "udp", Host: "127.0.0.1"},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	lines := SelfProbe(b, "instance", 200*time.Millisecond)
	hs := b.Health()
	if len(hs) != 2 {
		t.Fatalf("%d listeners, want 2: %+v", len(hs), hs)
	}
	web, rtp := hs[0], hs[1]
	if web.Listener != "http/tcp" || len(web.Addrs) != 1 || web.Addrs[0] != "127.0.0.1:"+strconv.Itoa(web.Port) {
		t.Errorf("http: %+v", web)
	}
	if len(web.Probes) != 1 || web.Probes[0].OK || len(lines) != 1 || web.Probes[0].Line != lines[0] ||
		!strings.Contains(web.Probes[0].Line, "self-probe") {
		t.Errorf("http probes %+v, start lines %q; want one failed probe with the logged line", web.Probes, lines)
	}
	if rtp.Listener != "rtp_proxy/udp" || len(rtp.Addrs) != 1 || len(rtp.Probes) != 0 {
		t.Errorf("rtp: %+v", rtp)
	}
}
