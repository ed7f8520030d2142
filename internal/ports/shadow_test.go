package ports

import (
	"bufio"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// answerAsBerth serves l as a fake Berth RTSP server: every request gets a
// reply with the instance token (the real RTSP server is tested elsewhere).
func answerAsBerth(l net.Listener, instance string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			br := bufio.NewReader(c)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if strings.TrimSpace(line) == "" {
					fmt.Fprintf(c, "RTSP/1.0 200 OK\r\nCSeq: 1\r\nServer: Berth/test\r\nX-Berth-Instance: %s\r\n\r\n", instance)
				}
			}
		}()
	}
}

// Berth on 0.0.0.0 and another process on [::1]: the shadow warning names
// it, and the self-probe says that clients of ::1 reach it, not Berth.
func TestShadowOnOtherFamilyIsNamed(t *testing.T) {
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
	go answerAsBerth(b.TCP["rtsp"], "tok123")
	h := startHolder(t, "-tcp6", fmt.Sprintf("[::1]:%d", p), "-reply", `RTSP/1.0 200 OK\r\nCSeq: 1\r\nServer: FakeCam/1.0\r\n\r\n`)

	shadows := Shadows(b)
	if len(shadows) != 1 {
		t.Fatalf("shadows = %q", shadows)
	}
	want := fmt.Sprintf("rtsp: pid %d (portholder, ", h.pid)
	if !strings.HasPrefix(shadows[0], want) || !strings.Contains(shadows[0], fmt.Sprintf("listens on [::1]:%d; clients connecting to ::1 reach it, not Berth", p)) {
		t.Errorf("shadow = %s", shadows[0])
	}

	lines := SelfProbe(b, "tok123", 2*time.Second)
	if len(lines) != 1 {
		t.Fatalf("self-probe lines = %q", lines)
	}
	t.Log(lines[0])
	for _, w := range []string{"rtsp: [::1]:" + strconv.Itoa(p) + " answers with RTSP server \"FakeCam/1.0\"", "pid " + strconv.Itoa(h.pid) + " (portholder", "not Berth"} {
		if !strings.Contains(lines[0], w) {
			t.Errorf("self-probe line lacks %q", w)
		}
	}
	var sb strings.Builder
	Banner(&sb, b, nil)
	if !strings.Contains(sb.String(), "rtsp://127.0.0.1:"+strconv.Itoa(p)+"/") || !strings.Contains(sb.String(), "-rtsp_transport tcp rtsp://127.0.0.1:"+strconv.Itoa(p)+"/live/stream") {
		t.Errorf("banner:\n%s", sb.String())
	}
}

// The self-probe passes on Berth's own answer over both families and fails,
// naming what answered, when the token is someone else's.
func TestSelfProbe(t *testing.T) {
	p := freePort(t)
	b, err := BindAll([]Spec{rtspSpec("::", p)}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	go answerAsBerth(b.TCP["rtsp"], "mine")
	if lines := SelfProbe(b, "mine", 2*time.Second); len(lines) != 0 {
		t.Errorf("own listener failed the self-probe: %q", lines)
	}
	var sb strings.Builder
	Banner(&sb, b, nil)
	t.Log("\n" + sb.String())
	if hasIPv6Loopback() && !strings.Contains(sb.String(), "rtsp://[::1]:"+strconv.Itoa(p)+"/") {
		t.Errorf("banner lacks the IPv6 URL:\n%s", sb.String())
	}
	lines := SelfProbe(b, "theirs", 2*time.Second)
	if len(lines) == 0 || !strings.Contains(lines[0], "reached another Berth test (instance mine)") {
		t.Errorf("lines = %q", lines)
	}
}

// A listener that accepts but never answers is reported with the timeout.
func TestSelfProbeSilentListener(t *testing.T) {
	p := freePort(t)
	b, err := BindAll([]Spec{rtspSpec("127.0.0.1", p)}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	lines := SelfProbe(b, "x", 300*time.Millisecond)
	if len(lines) != 1 || !strings.Contains(lines[0], "accepted the connection but sent no RTSP reply within 300ms") {
		t.Errorf("lines = %q", lines)
	}
}
