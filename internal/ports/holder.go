package ports

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Socket is one socket found in the operating system's tables: who holds a
// port, at which address. Proc is nil when the owner cannot be seen (another
// user's process without root, or an OS without a lookup).
type Socket struct {
	Proto  string // "tcp" or "udp"
	IP     net.IP // local address; unspecified for a wildcard bind
	Port   int
	Listen bool // TCP in LISTEN state; every bound UDP socket counts
	UID    int  // -1 when unknown
	Inode  uint64
	Proc   *Process
}

// Addr is ip:port/proto, as findings print it.
func (s Socket) Addr() string {
	return net.JoinHostPort(s.IP.String(), strconv.Itoa(s.Port)) + "/" + s.Proto
}

// V6 reports whether the socket is an IPv6 one.
func (s Socket) V6() bool { return s.IP.To4() == nil }

// Process describes a socket's owner.
type Process struct {
	PID     int
	Name    string // executable name: "nc", "wmpnetwk.exe"
	Cmdline string // full command line where readable
	User    string
}

// Self reports whether the process is this one.
func (p *Process) Self() bool { return p != nil && p.PID == os.Getpid() }

// IsBerth reports whether the process is a Berth (by executable name), so a
// finding can say "another Berth" rather than a bare pid.
func (p *Process) IsBerth() bool {
	if p == nil {
		return false
	}
	n := strings.ToLower(strings.TrimSuffix(p.Name, ".exe"))
	// Copies renamed berth2, berth-new or berth_old are still Berth.
	return strings.HasPrefix(n, "berth")
}

// Describe is "pid 812 (wmpnetwk.exe, Windows Media Player Network Sharing
// Service, user root)": what a finding prints about a holder.
func (p *Process) Describe(port int) string {
	if p == nil {
		return "an unknown process"
	}
	if d := p.details(port, false); d != "" {
		return fmt.Sprintf("pid %d (%s)", p.PID, d)
	}
	return fmt.Sprintf("pid %d", p.PID)
}

// Inline is Describe without the outer parentheses, "pid 812, wmpnetwk.exe,
// ...", for sentences that already put the holder in parentheses.
func (p *Process) Inline(port int) string {
	if p == nil {
		return "an unknown process"
	}
	return p.details(port, true)
}

// details is "name, known hint, "cmdline", user u"; withPID puts "pid N" first.
func (p *Process) details(port int, withPID bool) string {
	var parts []string
	if withPID {
		parts = append(parts, "pid "+strconv.Itoa(p.PID))
	}
	if p.Name != "" {
		parts = append(parts, p.Name)
	}
	if k := knownHolder(p.Name, port); k != "" {
		parts = append(parts, k)
	}
	if c := shortCmdline(p); c != "" {
		parts = append(parts, strconv.Quote(c))
	}
	if p.User != "" {
		parts = append(parts, "user "+p.User)
	}
	return strings.Join(parts, ", ")
}

// shortCmdline is the command line when it says more than the name, cut to a
// length that keeps a finding on one readable line.
func shortCmdline(p *Process) string {
	c := strings.TrimSpace(p.Cmdline)
	if c == "" || c == p.Name || filepath.Base(c) == p.Name {
		return ""
	}
	if len(c) > 120 {
		c = c[:117] + "..."
	}
	return c
}

// knownHolder names programs known to sit on media ports, so a user learns
// what the process is and that it can be stopped.
func knownHolder(name string, port int) string {
	n := strings.ToLower(name)
	switch {
	case n == "wmpnetwk.exe" || n == "wmpnetwk":
		return "Windows Media Player Network Sharing Service"
	case (n == "system" || n == "system idle process") && (port == 80 || port == 443):
		return "HTTP.sys: IIS or another Windows web service; `netsh http show servicestate` names it"
	case n == "system":
		return "a Windows kernel service"
	case n == "mediaserver" || n == "mediaserver.exe":
		return "ZLMediaKit"
	case strings.HasPrefix(n, "mediamtx"):
		return "MediaMTX"
	case strings.HasPrefix(n, "lalserver"):
		return "lal"
	case n == "w3wp.exe" || n == "inetinfo.exe":
		return "IIS"
	case strings.HasPrefix(n, "nginx"):
		return "nginx"
	case n == "vlc" || n == "vlc.exe":
		return "VLC"
	}
	return ""
}

// stopHint is how to stop a known holder, for the end of a fix.
func stopHint(name string, port int) string {
	n := strings.ToLower(name)
	switch {
	case n == "wmpnetwk.exe" || n == "wmpnetwk":
		return "or stop that service (`net stop WMPNetworkSvc`, and set it to Manual so it stays off)"
	case n == "system" && (port == 80 || port == 443):
		return "or stop that service (`netsh http show servicestate` names it; IIS: `iisreset /stop`)"
	case n == "system":
		return "or stop that service"
	case n == "w3wp.exe" || n == "inetinfo.exe":
		return "or stop that service (`iisreset /stop`)"
	}
	return "or stop that process"
}

// KnownServer names a process as a media server Berth users meet ("Berth",
// "ZLMediaKit", "MediaMTX", "lal"), "" for anything else.
func KnownServer(p *Process) string {
	if p == nil {
		return ""
	}
	if p.IsBerth() {
		return "Berth"
	}
	switch k := knownHolder(p.Name, 0); k {
	case "ZLMediaKit", "MediaMTX", "lal":
		return k
	}
	return ""
}

// Holders lists the sockets of proto ("tcp" or "udp") bound to port, any
// address, any family, any process, with their owners where visible. An
// error means the OS tables could not be read at all; callers then say
// "unknown holder" and carry on.
func Holders(proto string, port int) ([]Socket, error) {
	all, err := listSockets(proto, port)
	if err != nil {
		return nil, err
	}
	var out []Socket
	for _, s := range all {
		if s.Port == port && s.Proto == proto && s.Listen {
			out = append(out, s)
		}
	}
	return out, nil
}

// Conflicts reports whether a bind of ip (one family) would collide with s:
// same family and either side a wildcard or equal addresses; or s an IPv6
// wildcard that may be dual-stack while ip is IPv4.
func Conflicts(ip net.IP, s Socket) bool {
	v6 := ip.To4() == nil
	if v6 != s.V6() {
		// A dual-stack [::] socket also holds the IPv4 side.
		return !v6 && s.IP.IsUnspecified()
	}
	return ip.IsUnspecified() || s.IP.IsUnspecified() || ip.Equal(s.IP)
}

// Listening lists every listening socket (TCP LISTEN and bound UDP) of
// every process, for doctor's "what else runs here" and probe's search for
// a Berth on another port.
func Listening() ([]Socket, error) {
	var out []Socket
	var firstErr error
	for _, proto := range []string{"tcp", "udp"} {
		ss, err := listSockets(proto, 0)
		if err != nil {
			firstErr = err
			continue
		}
		for _, s := range ss {
			if s.Listen {
				out = append(out, s)
			}
		}
	}
	if out == nil {
		return nil, firstErr
	}
	return out, nil
}
