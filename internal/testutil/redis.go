package testutil

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RedisServer is a real redis-server the test started on a free 127.0.0.1
// port, in a temporary directory, without persistence: a restart comes back
// empty, as a Redis that lost its data does.
type RedisServer struct {
	t    testing.TB
	bin  string
	dir  string
	Port int
	cmd  *exec.Cmd
}

// StartRedis starts redis-server for the test and stops it at cleanup. It
// skips when redis-server is missing and CI is unset, and fails under CI
// (.ci/run installs it).
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("redis-server not found: apt-get install redis-server (CI installs it)")
		}
		t.Fatal("redis-server not found under CI: add redis-server to .ci/run's install list")
	}
	r := &RedisServer{t: t, bin: bin, dir: t.TempDir()}
	for attempt := 0; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		r.Port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		err = r.start()
		if err == nil {
			break
		}
		if attempt == 4 { // another process took each free port first
			t.Fatal(err)
		}
	}
	t.Cleanup(r.Stop)
	return r
}

// URL is the redis:// URL of the server.
func (r *RedisServer) URL() string { return "redis://127.0.0.1:" + strconv.Itoa(r.Port) }

// Addr is its host:port.
func (r *RedisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

func (r *RedisServer) start() error {
	cmd := exec.Command(r.bin, "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--daemonize", "no", "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		return err
	}
	r.cmd = cmd
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if r.Ping() {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.Stop()
	return fmt.Errorf("%s on 127.0.0.1:%d did not answer PING within 5 s (port taken by another process, or redis-server failed: run it by hand to see why)", r.bin, r.Port)
}

// Restart starts the server again on the same port after Stop.
func (r *RedisServer) Restart() {
	r.t.Helper()
	if err := r.start(); err != nil {
		r.t.Fatalf("redis-server restart on port %d: %v", r.Port, err)
	}
}

// Stop kills the server (SIGKILL: nothing is saved) and waits for it.
func (r *RedisServer) Stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	r.cmd.Wait()
	r.cmd = nil
}

// Ping reports whether the server answers PING.
func (r *RedisServer) Ping() bool {
	return r.Do("PING") == "+PONG"
}

// Do sends one inline command and returns the first line of the reply
// ("+OK", ":1", "$-1"), "" when the server cannot be reached.
func (r *RedisServer) Do(args ...string) string {
	c, err := net.DialTimeout("tcp", r.Addr(), time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(strings.Join(args, " ") + "\r\n")); err != nil {
		return ""
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return ""
	}
	return strings.TrimRight(line, "\r\n")
}
