//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/testutil"
)

// Run as an unprivileged user (the tests run as root, so the child drops to
// nobody): a port below the unprivileged start is refused with the setcap /
// sysctl fix, and a port held by root's process says its holder cannot be
// seen, with root's uid. Real kernel errors, no injection.
func TestPortsUnprivilegedUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop to nobody")
	}
	low := freeLowPort(t)
	if low == 0 {
		t.Skip("no free port below the unprivileged start")
	}
	dir, err := os.MkdirTemp("", "berth-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "berth")
	copyFile(t, berthBinary(t), bin, 0o755)
	held := testutil.FreeDualPort(t)
	startPortHolder(t, "-tcp", fmt.Sprintf("127.0.0.1:%d", held))
	cfg := filepath.Join(dir, "berth.ini")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[general]\nlisten_ip=::\n[rtsp]\nport=%d\n[rtmp]\nport=%d\n[http]\nport=0\n[rtp_proxy]\nport=0\n", low, held)), 0o644)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-c", cfg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	t.Log(string(out))
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("err = %v, want exit code 3", err)
	}
	for _, want := range []string{
		fmt.Sprintf("rtsp: cannot listen on 0.0.0.0:%d/tcp: permission denied: ports below ", low),
		"; set [rtsp] port=", "`sudo setcap cap_net_bind_service=+ep " + bin + "`",
		fmt.Sprintf("`sudo sysctl net.ipv4.ip_unprivileged_port_start=%d`", low),
		fmt.Sprintf("rtmp: cannot listen on 0.0.0.0:%d/tcp: port held by a process this user cannot see (uid 0; `sudo ss -ltnp 'sport = :%d'` names it) on 127.0.0.1:%d/tcp", held, held, held),
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// freeLowPort finds a port below the unprivileged start that is free now.
func freeLowPort(t *testing.T) int {
	b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	start, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || start <= 1 {
		return 0
	}
	for p := start - 1; p > start-200 && p > 0; p-- {
		l, err := net.Listen("tcp", ":"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l.Close()
		l4, err := net.Listen("tcp4", "0.0.0.0:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l4.Close()
		return p
	}
	return 0
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	out.Close()
}
