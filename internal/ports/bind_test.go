package ports

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func rtspSpec(host string, port int) Spec {
	return Spec{Name: "rtsp", Section: "rtsp", Flag: "--rtsp-port", Network: "tcp", Host: host, Port: port}
}

// A port held by another process fails the start with one line naming the
// listener, the address, the holder's pid and name, and a fix with a free port.
func TestBindAllNamesHolder(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("holder lookup is tested on Linux")
	}
	cases := []struct {
		name      string
		args      func(p int) []string
		berthHost string
		needV6    bool
	}{
		{"loopback v4", func(p int) []string { return []string{"-tcp", "127.0.0.1:" + strconv.Itoa(p)} }, "::", false},
		{"wildcard v4", func(p int) []string { return []string{"-tcp4", "0.0.0.0:" + strconv.Itoa(p)} }, "::", false},
		{"wildcard v6 dual-stack", func(p int) []string { return []string{"-tcp", "[::]:" + strconv.Itoa(p)} }, "::", true},
		{"wildcard v6 only", func(p int) []string { return []string{"-tcp6", "[::]:" + strconv.Itoa(p)} }, "::", true},
		{"specific v4 on specific", func(p int) []string { return []string{"-tcp", "127.0.0.1:" + strconv.Itoa(p)} }, "127.0.0.1", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.needV6 {
				hasIPv6(t)
			}
			p := freePort(t)
			h := startHolder(t, c.args(p)...)
			start := time.Now()
			b, err := BindAll([]Spec{rtspSpec(c.berthHost, p)}, false)
			if err == nil {
				b.Close()
				t.Fatal("BindAll succeeded on a held port")
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("diagnosis took %v, want < 1s", d)
			}
			var se *StartError
			if !errors.As(err, &se) || len(se.Findings) != 1 {
				t.Fatalf("err = %v, want one finding", err)
			}
			msg := se.Findings[0].Error()
			t.Log(msg)
			for _, want := range []string{
				"rtsp: cannot listen on ", ":" + strconv.Itoa(p) + "/tcp: port held by pid " + strconv.Itoa(h.pid) + " (portholder",
				"set [rtsp] port=", "--rtsp-port ", "or stop that process",
			} {
				if !strings.Contains(msg, want) {
					t.Errorf("finding lacks %q:\n%s", want, msg)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("finding spans lines: %q", msg)
			}
			if f := se.Findings[0]; f.FreePort == 0 || f.FreePort == p {
				t.Errorf("FreePort = %d", f.FreePort)
			} else if !strings.Contains(msg, "--rtsp-port "+strconv.Itoa(f.FreePort)) {
				t.Errorf("fix does not name the free port %d", f.FreePort)
			}
		})
	}
}

// Every held port of one run is reported at once, and nothing stays bound.
func TestBindAllReportsEveryHeldPort(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("holder lookup is tested on Linux")
	}
	pr, pm, ph, pu, free := freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)
	h := startHolder(t, "-tcp", fmt.Sprintf("127.0.0.1:%d", pr), "-tcp", fmt.Sprintf("0.0.0.0:%d", pm),
		"-tcp", fmt.Sprintf("127.0.0.1:%d", ph), "-udp", fmt.Sprintf("127.0.0.1:%d", pu))
	specs := []Spec{
		rtspSpec("::", pr),
		{Name: "rtmp", Section: "rtmp", Flag: "--rtmp-port", Network: "tcp", Host: "::", Port: pm},
		{Name: "http", Section: "http", Flag: "--http-port", Network: "tcp", Host: "::", Port: ph},
		{Name: "rtp_proxy", Section: "rtp_proxy", Flag: "--rtp-port", Network: "tcp", Host: "::", Port: pu},
		{Name: "rtp_proxy", Section: "rtp_proxy", Flag: "--rtp-port", Network: "udp", Host: "::", Port: pu},
		{Name: "extra", Section: "extra", Flag: "--extra-port", Network: "tcp", Host: "::", Port: free},
	}
	_, err := BindAll(specs, false)
	var se *StartError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v", err)
	}
	got := map[string]string{}
	for _, f := range se.Findings {
		got[f.Spec.Name+"/"+f.Spec.Network] = f.Error()
		if !strings.Contains(f.Error(), "pid "+strconv.Itoa(h.pid)+" (portholder") {
			t.Errorf("finding does not name the holder: %s", f.Error())
		}
	}
	for _, k := range []string{"rtsp/tcp", "rtmp/tcp", "http/tcp", "rtp_proxy/udp"} {
		if got[k] == "" {
			t.Errorf("no finding for %s; got %v", k, got)
		}
	}
	if len(se.Findings) != 4 {
		t.Errorf("%d findings, want 4: %v", len(se.Findings), se)
	}
	// Nothing stays bound: the free spec's port binds again.
	if !canBind(Spec{Host: "::"}, []string{"tcp"}, free) {
		t.Error("a listener stayed bound after a refused start")
	}
}

func TestBindAllFallbackMovesLoudly(t *testing.T) {
	p := freePort(t)
	startHolder(t, "-tcp", fmt.Sprintf("0.0.0.0:%d", p))
	b, err := BindAll([]Spec{rtspSpec("::", p)}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s, _ := b.Spec("rtsp")
	if s.Port == p || s.Port == 0 {
		t.Fatalf("port = %d, want moved off %d", s.Port, p)
	}
	if len(b.Notices) != 1 {
		t.Fatalf("notices = %q", b.Notices)
	}
	n := b.Notices[0]
	t.Log(n)
	for _, want := range []string{"rtsp: port " + strconv.Itoa(p) + "/tcp cannot be used", "listening on port " + strconv.Itoa(s.Port), "rtsp://127.0.0.1:" + strconv.Itoa(s.Port) + "/"} {
		if !strings.Contains(n, want) {
			t.Errorf("notice lacks %q: %s", want, n)
		}
	}
}

func TestDuplicatePortsInConfig(t *testing.T) {
	p := freePort(t)
	_, err := BindAll([]Spec{rtspSpec("::", p), {Name: "http", Section: "http", Flag: "--http-port", Network: "tcp", Host: "::", Port: p}}, false)
	var se *StartError
	if !errors.As(err, &se) || len(se.Findings) != 1 {
		t.Fatalf("err = %v", err)
	}
	msg := se.Findings[0].Error()
	want := fmt.Sprintf("http: cannot listen on [::]:%d/tcp: rtsp listens on the same port %d/tcp in this config; set [http] port=", p, p)
	if !strings.HasPrefix(msg, want) {
		t.Errorf("got  %s\nwant %s...", msg, want)
	}
}

// The messages for causes a test cannot provoke as root: injected errors.
func TestFindingMessages(t *testing.T) {
	exe := "/path/to/berth"
	cases := []struct {
		name string
		f    *Finding
		want string
	}{
		{"permission", &Finding{Spec: rtspSpec("0.0.0.0", 554), Addr: "0.0.0.0:554", Err: syscall.EACCES, Cause: classify(syscall.EACCES), FreePort: 8554, Unprivileged: 1024},
			"rtsp: cannot listen on 0.0.0.0:554/tcp: permission denied: ports below 1024 need privilege; set [rtsp] port=8554 in config.ini or run with --rtsp-port 8554, or allow low ports: `sudo setcap cap_net_bind_service=+ep " + exe + "` or `sudo sysctl net.ipv4.ip_unprivileged_port_start=554`"},
		{"wmpnetwk", &Finding{Spec: rtspSpec("0.0.0.0", 554), Addr: "0.0.0.0:554", Cause: CauseInUse, FreePort: 8559,
			Holders: []Socket{{Proto: "tcp", IP: net.IPv4zero.To4(), Port: 554, Proc: &Process{PID: 812, Name: "wmpnetwk.exe"}}}},
			"rtsp: cannot listen on 0.0.0.0:554/tcp: port held by pid 812 (wmpnetwk.exe, Windows Media Player Network Sharing Service); set [rtsp] port=8559 in config.ini or run with --rtsp-port 8559, or stop that service (`net stop WMPNetworkSvc`, and set it to Manual so it stays off)"},
		{"another berth", &Finding{Spec: rtspSpec("::", 8554), Addr: "0.0.0.0:8554", Cause: CauseInUse, FreePort: 8555, ConfigFile: "/etc/berth.ini",
			Holders: []Socket{{Proto: "tcp", IP: net.IPv4zero.To4(), Port: 8554, Proc: &Process{PID: 77, Name: "berth", Cmdline: "berth -c /etc/berth.ini", User: "media"}}}},
			`rtsp: cannot listen on 0.0.0.0:8554/tcp: another Berth (pid 77, berth, "berth -c /etc/berth.ini", user media) holds it; stop it (kill 77), or to run both set [rtsp] port=8555 in /etc/berth.ini or run with --rtsp-port 8555`},
		{"holder elsewhere", &Finding{Spec: rtspSpec("::", 8554), Addr: "0.0.0.0:8554", Cause: CauseInUse,
			Holders: []Socket{{Proto: "tcp", IP: net.ParseIP("127.0.0.1").To4(), Port: 8554, Proc: &Process{PID: 9, Name: "mediamtx"}}}},
			"rtsp: cannot listen on 0.0.0.0:8554/tcp: port held by pid 9 (mediamtx, MediaMTX) on 127.0.0.1:8554/tcp; set [rtsp] port to a free port in config.ini or run with --rtsp-port PORT, or stop that process"},
		{"http.sys", &Finding{Spec: Spec{Name: "http", Section: "http", Flag: "--http-port", Network: "tcp", Host: "0.0.0.0", Port: 80}, Addr: "0.0.0.0:80", Cause: CauseInUse, FreePort: 8080,
			Holders: []Socket{{Proto: "tcp", IP: net.IPv6unspecified, Port: 80, Proc: &Process{PID: 4, Name: "System"}}}},
			"http: cannot listen on 0.0.0.0:80/tcp: port held by pid 4 (System, HTTP.sys: IIS or another Windows web service; `netsh http show servicestate` names it) on [::]:80/tcp; set [http] port=8080 in config.ini or run with --http-port 8080, or stop that service"},
		{"not local", &Finding{Spec: rtspSpec("10.255.0.9", 8554), Addr: "10.255.0.9:8554", Err: syscall.EADDRNOTAVAIL, Cause: classify(syscall.EADDRNOTAVAIL)},
			"rtsp: cannot listen on 10.255.0.9:8554/tcp: 10.255.0.9 is not an address of this host; set [general] listen_ip to an address of this host ("},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := strings.ReplaceAll(c.f.Error(), selfExe(), exe)
			if !strings.HasPrefix(got, c.want) {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

func selfExe() string {
	e, _ := osExecutable()
	return e
}

// A real failed bind classified from the kernel's error, end to end.
func TestListenAddrNotAvailable(t *testing.T) {
	_, err := Listen(rtspSpec("192.0.2.77", 0)) // TEST-NET-1: on no host
	var f *Finding
	if !errors.As(err, &f) || f.Cause != CauseAddrNotAvail {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(f.Error(), "192.0.2.77 is not an address of this host; set [general] listen_ip") {
		t.Error(f.Error())
	}
}
