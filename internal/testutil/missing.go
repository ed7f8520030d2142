package testutil

import (
	"os"
	"testing"
)

// Missing ends a test that lacks something from the machine (a tool, root,
// a kernel feature): it skips with msg, which says how to get it, when CI
// is unset, and fails when it is set, where the CI script provides it.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "" {
		t.Skip(msg)
	}
	t.Fatal(msg)
}
