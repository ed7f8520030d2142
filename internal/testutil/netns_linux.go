package testutil

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// netnsEnv names, in the re-run test process, the test it runs for.
const netnsEnv = "BERTH_TEST_NETNS"

// InNetNS runs the calling top-level test again, as a child process, in a
// network namespace of its own with its loopback up, so the test may add
// links, addresses and routes (veth pairs to other namespaces, multicast
// routes) without touching the host's; the namespace ends with the child.
// It returns true in the child, where the test goes on; in the parent it
// waits for the child, passes its verdict and output on, and returns false
// (the caller returns at once).
//
// It needs root (CAP_SYS_ADMIN) and iproute2's ip: without them it skips
// when CI is unset and fails when it is set.
func InNetNS(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsEnv) == t.Name() {
		IP(t, "link", "set", "lo", "up")
		return true
	}
	if os.Geteuid() != 0 {
		Missing(t, "this test makes a network namespace for multicast on loopback: run it as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		Missing(t, "ip (iproute2) is missing: apt-get install iproute2 (.ci/run installs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), netnsEnv+"="+t.Name())
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	if errors.Is(err, syscall.EPERM) {
		Missing(t, "creating a network namespace was refused (EPERM): it needs CAP_SYS_ADMIN; in a container, run it with --cap-add SYS_ADMIN or --privileged")
	}
	if m := regexp.MustCompile(`--- SKIP: ` + regexp.QuoteMeta(t.Name()) + `[^\n]*\n((?:\s+[^\n]*\n)*)`).FindSubmatch(out); m != nil {
		t.Skipf("skipped in its network namespace:\n%s", m[1])
	}
	if err != nil {
		t.Fatalf("in its network namespace: %v\n%s", err, out)
	}
	if testing.Verbose() {
		t.Logf("in its network namespace:\n%s", out)
	}
	return false
}

// IP runs iproute2's ip with args and fails the test if it fails.
func IP(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}
