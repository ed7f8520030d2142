package ports

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var holderBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ports-test")
	if err != nil {
		panic(err)
	}
	holderBin = filepath.Join(dir, "portholder")
	out, err := exec.Command("go", "build", "-o", holderBin, "./internal/portholder").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building portholder: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// holder is a spawned process holding ports.
type holder struct {
	pid   int
	addrs []string
}

// startHolder runs portholder with args and waits until it has bound.
func startHolder(t *testing.T, args ...string) *holder {
	t.Helper()
	cmd := exec.Command(holderBin, args...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- l
		io.Copy(io.Discard, stdout)
	}()
	select {
	case l := <-line:
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != "ready" {
			t.Fatalf("portholder %v: %q", args, l)
		}
		return &holder{pid: cmd.Process.Pid, addrs: f[1:]}
	case <-time.After(10 * time.Second):
		t.Fatal("portholder did not start")
	}
	return nil
}

// port returns the port of the holder's i-th address.
func (h *holder) port(i int) int {
	_, p, _ := net.SplitHostPort(h.addrs[i])
	n, _ := strconv.Atoi(p)
	return n
}

// freePort finds a port free on tcp and udp, both families, for a test.
func freePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if canBind(Spec{Host: "::"}, []string{"tcp", "udp"}, p) {
			return p
		}
	}
	t.Fatal("no free port")
	return 0
}

func hasIPv6(t *testing.T) {
	if !hasIPv6Loopback() {
		t.Skip("no IPv6 loopback on this host")
	}
}
