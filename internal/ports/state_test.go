package ports

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// State lists every bound socket per family, the last self-probe and the
// last shadow scan as data, the same facts the log lines tell.
func TestStateReportsSocketsProbesAndShadows(t *testing.T) {
	p := freePort(t)
	b, err := BindAll([]Spec{rtspSpec("0.0.0.0", p), {Name: "rtp_proxy", Network: "udp", Host: "127.0.0.1"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	go answerAsBerth(b.TCP["rtsp"], "mine")

	st := b.State()
	if st.Probes != nil || st.Shadows != nil {
		t.Errorf("before any probe or scan: %+v", st)
	}
	udp, _ := b.Spec("rtp_proxy")
	want := []SocketState{
		{Name: "rtsp", Network: "tcp", Family: "ipv4", Addr: "0.0.0.0:" + strconv.Itoa(p)},
		{Name: "rtp_proxy", Network: "udp", Family: "ipv4", Addr: "127.0.0.1:" + strconv.Itoa(udp.Port)},
	}
	if fmt.Sprint(st.Sockets) != fmt.Sprint(want) {
		t.Errorf("sockets = %+v, want %+v", st.Sockets, want)
	}

	if lines := SelfProbe(b, "mine", 2*time.Second); len(lines) != 0 {
		t.Fatalf("self-probe: %q", lines)
	}
	st = b.State()
	if len(st.Probes) == 0 {
		t.Fatal("no probe state after SelfProbe")
	}
	for _, pr := range st.Probes {
		if pr.Name != "rtsp" || !pr.OK || pr.Problem != "" {
			t.Errorf("probe %+v: want rtsp ok", pr)
		}
		if pr.Addr == "127.0.0.1:"+strconv.Itoa(p) && !pr.Served {
			t.Errorf("probe %+v: 127.0.0.1 is served", pr)
		}
	}
	lines := SelfProbe(b, "theirs", 2*time.Second)
	st = b.State()
	if len(lines) == 0 || st.Probes[0].OK || st.Probes[0].Problem != lines[0] {
		t.Errorf("failed probe: lines %q, state %+v", lines, st.Probes)
	}

	if runtime.GOOS != "linux" {
		return // holder lookup is tested on Linux
	}
	if sh := FindShadows(b); sh == nil || len(sh) != 0 {
		t.Errorf("shadows of an unshared port = %#v, want empty", sh)
	}
	if st := b.State(); st.Shadows == nil {
		t.Error("State lost the shadow scan")
	}
}

// A shadow from another process is reported with its listener, address
// and holder, and its line is the one Shadows prints.
func TestFindShadowsNamesTheHolder(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("holder lookup is tested on Linux")
	}
	hasIPv6(t)
	p := freePort(t)
	b, err := BindAll([]Spec{rtspSpec("0.0.0.0", p)}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	h := startHolder(t, "-tcp6", fmt.Sprintf("[::1]:%d", p))
	sh := FindShadows(b)
	if len(sh) != 1 {
		t.Fatalf("shadows = %+v", sh)
	}
	got := sh[0]
	if got.Name != "rtsp" || got.Network != "tcp" || got.Addr != fmt.Sprintf("[::1]:%d", p) || got.Holder == "" {
		t.Errorf("shadow = %+v (holder pid %d)", got, h.pid)
	}
	if lines := Shadows(b); len(lines) != 1 || lines[0] != got.Line {
		t.Errorf("Shadows = %q, FindShadows line = %q", lines, got.Line)
	}
	if st := b.State(); len(st.Shadows) != 1 || st.Shadows[0] != got {
		t.Errorf("State().Shadows = %+v", st.Shadows)
	}
}
