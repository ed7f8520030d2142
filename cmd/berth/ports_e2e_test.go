package main

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/testutil"
)

// A port held by another process refuses the start within a second, with a
// line naming the listener, the address, the holder's pid and name and a
// fix, and exit code 3; for a holder on 127.0.0.1, 0.0.0.0 and [::].
func TestPortsHeldRTSPPortRefusesStart(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("holder lookup is tested end to end on Linux")
	}
	cases := []struct {
		name   string
		holder func(p int) []string
		listen string
		addr   func(p int) string // the address the finding names
		v6     bool
	}{
		{"127.0.0.1", func(p int) []string { return []string{"-tcp", fmt.Sprintf("127.0.0.1:%d", p)} }, "::", func(p int) string { return fmt.Sprintf("0.0.0.0:%d/tcp", p) }, false},
		{"0.0.0.0", func(p int) []string { return []string{"-tcp4", fmt.Sprintf("0.0.0.0:%d", p)} }, "::", func(p int) string { return fmt.Sprintf("0.0.0.0:%d/tcp", p) }, false},
		{"[::]", func(p int) []string { return []string{"-tcp6", fmt.Sprintf("[::]:%d", p)} }, "::", func(p int) string { return fmt.Sprintf("[::]:%d/tcp", p) }, true},
		{"127.0.0.1 vs 127.0.0.1", func(p int) []string { return []string{"-tcp", fmt.Sprintf("127.0.0.1:%d", p)} }, "127.0.0.1", func(p int) string { return fmt.Sprintf("127.0.0.1:%d/tcp", p) }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.v6 && !hasIPv6Loopback() {
				t.Skip("no IPv6")
			}
			p := testutil.FreeDualPort(t)
			pid := startPortHolder(t, c.holder(p)...)
			cfg := berthConfig(t, c.listen, p, 0, 0, 0)
			code, out, d := runBerth(t, "-c", cfg)
			t.Log(out)
			if code != 3 {
				t.Errorf("exit code %d, want 3", code)
			}
			if d > 1500*time.Millisecond { // 1 s for Berth, slack for process start under -race load
				t.Errorf("refusal took %v", d)
			}
			want := fmt.Sprintf("rtsp: cannot listen on %s: port held by pid %d (portholder", c.addr(p), pid)
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q", want)
			}
			// The file is named once main.go sets Finding.ConfigFile; until then "config.ini".
			if !strings.Contains(out, "; set [rtsp] port=") || !strings.Contains(out, "or run with --rtsp-port ") {
				t.Errorf("output lacks the fix")
			}
		})
	}
}

// Every held listener is reported in one run: RTSP, RTMP, HTTP and the
// RTP proxy's UDP port.
func TestPortsEveryHeldListenerInOneRun(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("holder lookup is tested end to end on Linux")
	}
	pr, pm, ph, pu := testutil.FreeDualPort(t), testutil.FreeDualPort(t), testutil.FreeDualPort(t), testutil.FreeDualPort(t)
	pid := startPortHolder(t, "-tcp", fmt.Sprintf("127.0.0.1:%d", pr), "-tcp", fmt.Sprintf("127.0.0.1:%d", pm),
		"-tcp", fmt.Sprintf("127.0.0.1:%d", ph), "-udp", fmt.Sprintf("127.0.0.1:%d", pu))
	cfg := berthConfig(t, "::", pr, pm, ph, pu)
	code, out, _ := runBerth(t, "-c", cfg)
	t.Log(out)
	if code != 3 {
		t.Errorf("exit code %d, want 3", code)
	}
	holder := "port held by pid " + strconv.Itoa(pid) + " (portholder"
	for _, want := range []string{
		fmt.Sprintf("rtsp: cannot listen on 0.0.0.0:%d/tcp: %s", pr, holder),
		fmt.Sprintf("rtmp: cannot listen on 0.0.0.0:%d/tcp: %s", pm, holder),
		fmt.Sprintf("http: cannot listen on 0.0.0.0:%d/tcp: %s", ph, holder),
		fmt.Sprintf("rtp_proxy: cannot listen on 0.0.0.0:%d/udp: %s", pu, holder),
		"4 listener(s) cannot be used (exit code 3)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// Two Berths with one config: the second names the first.
func TestPortsSecondBerthNamesTheFirst(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("holder lookup is tested end to end on Linux")
	}
	cfg := berthConfig(t, "::", testutil.FreeDualPort(t), testutil.FreeDualPort(t), testutil.FreeDualPort(t), testutil.FreeDualPort(t))
	first := startBerth(t, "-c", cfg)
	code, out, _ := runBerth(t, "-c", cfg)
	t.Log(out)
	if code != 3 {
		t.Errorf("exit code %d, want 3", code)
	}
	want := fmt.Sprintf("another Berth (pid %d, berth", first.pid)
	if strings.Count(out, want) < 4 {
		t.Errorf("output should name the first Berth for every listener with %q", want)
	}
	if !strings.Contains(out, fmt.Sprintf("stop it (kill %d), or to run both set [rtsp] port=", first.pid)) {
		t.Errorf("output lacks the fix")
	}
}

// Berth on 0.0.0.0 while another process listens on [::1]:P: the shadow
// warning names it, and the self-probe reports what answers there.
func TestPortsShadowAndSelfProbe(t *testing.T) {
	if runtime.GOOS != "linux" || !hasIPv6Loopback() {
		t.Skip("needs Linux and IPv6 loopback")
	}
	p := testutil.FreeDualPort(t)
	pid := startPortHolder(t, "-tcp6", fmt.Sprintf("[::1]:%d", p), "-reply", `RTSP/1.0 200 OK\r\nCSeq: 1\r\nServer: FakeCam/2.0\r\n\r\n`)
	b := startBerth(t, "-c", berthConfig(t, "0.0.0.0", p, 0, 0, 0))
	logs := b.logs.String()
	t.Log(logs)
	for _, want := range []string{
		fmt.Sprintf("rtsp: pid %d (portholder", pid),
		fmt.Sprintf("listens on [::1]:%d; clients connecting to ::1 reach it, not Berth", p),
		fmt.Sprintf(`rtsp: [::1]:%d answers with RTSP server \"FakeCam/2.0\"`, p),
		fmt.Sprintf("rtsp://127.0.0.1:%d/", p),
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q", want)
		}
	}
}

// With --port-fallback a held port moves to the nearest free one, loudly:
// a WARN-worthy notice in the banner with the new URL, and Berth serves there.
func TestPortsFallbackMovesLoudly(t *testing.T) {
	p := testutil.FreeDualPort(t)
	startPortHolder(t, "-tcp4", fmt.Sprintf("0.0.0.0:%d", p))
	b := startBerth(t, "-c", berthConfig(t, "::", p, 0, 0, 0), "--port-fallback")
	logs := b.logs.String()
	t.Log(logs)
	want := fmt.Sprintf("NOTE rtsp: port %d/tcp cannot be used (port held by pid ", p)
	if !strings.Contains(logs, want) || !strings.Contains(logs, "because port_fallback is on: rtsp://127.0.0.1:") {
		t.Errorf("logs lack the fallback notice %q", want)
	}
}
