package api

import (
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/ports"
)

// openRtpServer on a port a socket of this very process holds (in
// production, Berth itself: a port an earlier call opened, one of its
// listeners) is refused with the finding a start-up bind gives: the reply
// says it is this Berth's, and the finding behind it names the holding
// process by its pid.
func TestOpenRtpServerOnAPortThisProcessHoldsNamesTheHolder(t *testing.T) {
	e := newEnv(t, config.PortRange{})
	held, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	port := held.LocalAddr().(*net.UDPAddr).Port

	r := e.call(t, "openRtpServer", withSecret("port", strconv.Itoa(port), "stream_id", "x"))
	if r.Code != CodeOtherFailed || !strings.Contains(r.Msg, "port already bound by this Berth") {
		t.Fatalf("reply %+v, want code -1 and the holder: this Berth", r)
	}

	_, err = e.rtp.OpenPort("x", port, 0, 0)
	var f *ports.Finding
	if !errors.As(err, &f) {
		t.Fatalf("OpenPort on a held port: %T %v, want a *ports.Finding", err, err)
	}
	if f.Cause != ports.CauseInUse || len(f.Holders) == 0 {
		t.Fatalf("finding %+v, want the port in use with its holder", f)
	}
	for _, h := range f.Holders {
		if h.Proc == nil || h.Proc.PID != os.Getpid() || h.Port != port {
			t.Fatalf("holder %+v (process %+v), want this process, pid %d, on port %d", h, h.Proc, os.Getpid(), port)
		}
	}
	// The fix may name another free port a moment later; the cause is the same.
	if !strings.Contains(r.Msg, f.Why()) {
		t.Fatalf("the reply says %q, the finding %q: not the same finding", r.Msg, f.Error())
	}
}
