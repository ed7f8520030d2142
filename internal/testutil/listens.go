package testutil

import (
	"runtime"
	"testing"

	"github.com/berthmedia/berth/internal/ports"
)

// ListensHere reports whether this process holds a TCP listener on port,
// asked of the OS's socket table. A test that wants a port closed asks this
// rather than dialling it: on a busy machine another process's bind(0) may
// take a freed port at once, and a dial to a free port in the ephemeral
// range may connect to itself, and either reads as "still listens". Where
// the table cannot be read (not Linux) it falls back to nothing: false.
func ListensHere(t testing.TB, port int) bool {
	t.Helper()
	if runtime.GOOS != "linux" {
		return false
	}
	hs, err := ports.Holders("tcp", port)
	if err != nil {
		t.Fatalf("reading the socket table for port %d: %v", port, err)
	}
	for _, h := range hs {
		if h.Proc.Self() {
			return true
		}
	}
	return false
}
