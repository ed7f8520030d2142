package bench

import (
	"strings"
	"testing"
)

// TestCheckFDsRefusesARunPastTheLimit: a run that needs more descriptors
// than the process may open is refused up front, with the fix.
func TestCheckFDsRefusesARunPastTheLimit(t *testing.T) {
	soft, _ := fdLimit()
	if soft == 0 {
		t.Skip("no file descriptor limit on this system")
	}
	if err := checkFDs(1, "rtsp", "tcp"); err != nil {
		t.Fatalf("one reader refused: %v", err)
	}
	err := checkFDs(int(soft), "rtsp", "udp")
	if err == nil || !strings.Contains(err.Error(), "file descriptors") || !strings.Contains(err.Error(), "ulimit -Hn") {
		t.Fatalf("a run past the limit: %v; want a refusal that names the limit and the fix", err)
	}
}
