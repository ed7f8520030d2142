package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/berthmedia/berth/internal/testutil"
)

func TestDoctorFreeConfigExitsZero(t *testing.T) {
	cfg := berthConfig(t, "::", testutil.FreeDualPort(t), testutil.FreeDualPort(t), testutil.FreeDualPort(t), testutil.FreeDualPort(t))
	code, out, _ := runBerth(t, "doctor", "-c", cfg)
	t.Log(out)
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	for _, want := range []string{"LISTENER", "rtsp/tcp", "rtmp/tcp", "http/tcp", "rtp_proxy/udp", "all listeners can be used"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestDoctorHeldPortNamesHolder(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("holder lookup is tested end to end on Linux")
	}
	p, q := testutil.FreeDualPort(t), testutil.FreeDualPort(t)
	pid := startPortHolder(t, "-tcp", fmt.Sprintf("127.0.0.1:%d", p), "-tcp", fmt.Sprintf("127.0.0.1:%d", q))
	cfg := berthConfig(t, "::", p, testutil.FreeDualPort(t), 0, 0)
	code, out, _ := runBerth(t, "doctor", "-c", cfg)
	t.Log(out)
	if code != 3 {
		t.Errorf("exit code %d, want 3", code)
	}
	for _, want := range []string{
		"in use", "pid " + strconv.Itoa(pid) + " (portholder",
		fmt.Sprintf("rtsp: cannot listen on 0.0.0.0:%d/tcp: port held by pid %d", p, pid),
		"in " + cfg + " or run with --rtsp-port", // doctor names the config file it read
		"1 listener(s) cannot be used",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	// The same findings as JSON; flags override the file as for serve.
	code, out, _ = runBerth(t, "doctor", "-c", cfg, "--json", "--rtmp-port", strconv.Itoa(q))
	if code != 3 {
		t.Errorf("json: exit code %d, want 3", code)
	}
	var r struct {
		OK   bool `json:"ok"`
		Rows []struct {
			Listener, Address, State, Holder, Fix, Message string
			Problem                                        bool
		} `json:"rows"`
		PortFindings int `json:"port_findings"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if r.OK || r.PortFindings != 2 {
		t.Errorf("ok=%v port_findings=%d, want false, 2:\n%s", r.OK, r.PortFindings, out)
	}
	named := 0
	for _, row := range r.Rows {
		if row.State == "in use" && strings.Contains(row.Holder, "pid "+strconv.Itoa(pid)) {
			named++
		}
	}
	if named != 2 {
		t.Errorf("%d rows name the holder, want 2 (rtsp and rtmp):\n%s", named, out)
	}
}

func TestDoctorDuplicatePortInConfig(t *testing.T) {
	p := testutil.FreeDualPort(t)
	code, out, _ := runBerth(t, "doctor", "-c", berthConfig(t, "::", p, 0, p, 0))
	if code != 3 || !strings.Contains(out, fmt.Sprintf("http: cannot listen on [::]:%d/tcp: rtsp listens on the same port %d/tcp in this config", p, p)) {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

// A socket on the other family of a free port is a shadow: exit 1, named.
func TestDoctorShadowAndRunningBerth(t *testing.T) {
	if runtime.GOOS != "linux" || !hasIPv6Loopback() {
		t.Skip("needs Linux and IPv6 loopback")
	}
	p := testutil.FreeDualPort(t)
	pid := startPortHolder(t, "-tcp6", fmt.Sprintf("[::1]:%d", p))
	code, out, _ := runBerth(t, "doctor", "-c", berthConfig(t, "0.0.0.0", p, 0, 0, 0))
	t.Log(out)
	if code != 1 || !strings.Contains(out, "shadowed") ||
		!strings.Contains(out, fmt.Sprintf("rtsp: pid %d (portholder", pid)) {
		t.Errorf("exit %d, want 1 with the shadow named", code)
	}

	// A Berth already running elsewhere on this host is a note, not a problem.
	other := startBerth(t, "-c", berthConfig(t, "127.0.0.1", testutil.FreeDualPort(t), 0, 0, 0))
	code, out, _ = runBerth(t, "doctor", "-c", berthConfig(t, "127.0.0.1", testutil.FreeDualPort(t), 0, 0, 0))
	if code != 0 || !strings.Contains(out, fmt.Sprintf("Berth is running: pid %d (berth", other.pid)) {
		t.Errorf("exit %d, want 0 and a note about pid %d:\n%s", code, other.pid, out)
	}
}
