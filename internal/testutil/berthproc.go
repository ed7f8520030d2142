package testutil

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// StartBerthProcess runs Berth (cmd/berth, built once per test process) as
// a process of its own with ini as its configuration file, and returns
// once Berth logs that it is listening. The test fails if Berth names a key
// of ini it does not know (a misspelt key would be silently ignored
// otherwise). Cleanup kills the process and, if the test failed, logs
// Berth's output; the caller may signal and Wait for the process first.
func StartBerthProcess(t testing.TB, ini string) (*exec.Cmd, *LogBuffer) {
	t.Helper()
	bin := GoBinary(t, "github.com/berthmedia/berth/cmd/berth")
	path := filepath.Join(t.TempDir(), "berth.ini")
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &LogBuffer{}
	berth := exec.Command(bin, "-c", path)
	berth.Stdout, berth.Stderr = logs, logs
	if err := berth.Start(); err != nil {
		t.Fatalf("starting Berth (%s): %v", bin, err)
	}
	t.Cleanup(func() {
		berth.Process.Kill()
		berth.Wait()
		if t.Failed() {
			t.Logf("Berth's log:\n%s", logs.String())
		}
	})
	// 20 s, not WaitLine's 5: a fresh executable on a loaded CI machine
	// (load 17 on 2 cores was seen) had logged nothing after 5 s.
	WaitFor(t, 20*time.Second, "Berth to log that it is listening", func() bool { return logs.Line("Berth is listening") != "" })
	if line := logs.Line("unknown key"); line != "" {
		t.Fatalf("the test's ini has a key Berth does not know: %s", line)
	}
	return berth, logs
}

// FreeDualPort returns a port free on both TCP and UDP on every address,
// for the listeners that take one port for both (the RTP proxy) or a test
// that gives SRT (UDP) and TCP listeners ports from one pool.
func FreeDualPort(t testing.TB) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		u, err := net.ListenPacket("udp", ":"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		u.Close()
		return p
	}
	t.Fatal("no port free for both TCP and UDP")
	return 0
}
