package doctor

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/berthmedia/berth/internal/ports"
)

func TestFirewallRules(t *testing.T) {
	specs := []ports.Spec{
		{Name: "rtsp", Network: "tcp", Host: "::", Port: 8554},
		{Name: "rtp_proxy", Network: "udp", Host: "::", Port: 10000},
	}
	cases := []struct {
		rule string
		want string // listener flagged, "" for none
	}{
		{"tcp dport 8554 drop", "rtsp/tcp"},
		{"-A INPUT -p tcp -m tcp --dport 8554 -j DROP", "rtsp/tcp"},
		{"-A INPUT -p tcp -m tcp --dport 8554 -j ACCEPT", ""},
		{"udp dport { 5000, 9000-11000 } reject", "rtp_proxy/udp"},
		{"-A INPUT -p udp --dport 9999:10001 -j REJECT", "rtp_proxy/udp"},
		{"tcp dport 18554 drop", ""},
		{"-A INPUT -p udp --dport 8554 -j DROP", ""},
		{"tcp dport 80 drop comment \"8554\"", ""},
	}
	for _, c := range cases {
		rows := firewall(specs, c.rule)
		got := ""
		if len(rows) > 0 {
			got = rows[0].Listener
		}
		if got != c.want {
			t.Errorf("%q flagged %q, want %q", c.rule, got, c.want)
		}
	}
}

func TestRunFreeAndHeld(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	held := l.Addr().(*net.TCPAddr).Port
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	freePort := free.Addr().(*net.TCPAddr).Port
	free.Close()
	noFW := Options{Firewall: func() string { return "" }}

	r := Run([]ports.Spec{{Name: "rtsp", Section: "rtsp", Flag: "--rtsp-port", Network: "tcp", Host: "127.0.0.1", Port: freePort}}, noFW)
	if !r.OK || r.ExitCode() != 0 {
		t.Errorf("free port: %+v", r)
	}
	r = Run([]ports.Spec{
		{Name: "rtsp", Section: "rtsp", Flag: "--rtsp-port", Network: "tcp", Host: "127.0.0.1", Port: held},
		{Name: "http", Section: "http", Flag: "--http-port", Network: "tcp", Host: "127.0.0.1", Port: freePort},
	}, noFW)
	if r.OK || r.ExitCode() != ports.ExitPortFindings || r.PortFindings != 1 {
		t.Fatalf("held port: %+v", r)
	}
	var sb strings.Builder
	r.WriteTable(&sb)
	t.Log("\n" + sb.String())
	for _, want := range []string{"rtsp/tcp", "in use", "http/tcp", "ok", fmt.Sprintf("rtsp: cannot listen on 127.0.0.1:%d/tcp: port already bound by this Berth", held)} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
}
