package ports

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Cause is why a listener cannot be used, in the words a finding prints.
type Cause int

const (
	CauseOther        Cause = iota // an error without a better explanation
	CauseInUse                     // another socket holds the port
	CausePermission                // a port below the unprivileged start without privilege
	CauseAddrNotAvail              // listen_ip is not an address of this host
	CauseExcluded                  // Windows reserves the port (excluded port range)
	CauseDuplicate                 // two listeners of this config want the same port
)

func (c Cause) String() string {
	switch c {
	case CauseInUse:
		return "in use"
	case CausePermission:
		return "permission denied"
	case CauseAddrNotAvail:
		return "address not available"
	case CauseExcluded:
		return "reserved by Windows"
	case CauseDuplicate:
		return "configured twice"
	}
	return "error"
}

// MarshalText makes causes readable in doctor's JSON.
func (c Cause) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Finding is a listener that cannot be used, said so a human can act: which
// listener, which address, why, who is in the way, and what to change.
type Finding struct {
	Spec    Spec
	Network string   // the concrete network that failed: tcp4, tcp6, udp4, udp6
	Addr    string   // host:port that failed
	Err     error    // the system error
	Cause   Cause    // Err in plain words
	Holders []Socket // sockets in the way (CauseInUse), owners where visible
	// FreePort is the nearest port that binds now for this listener (0: none
	// found). The fix names it so a user can copy it.
	FreePort int
	// Other is the other listener of the same config (CauseDuplicate).
	Other *Spec
	// ConfigFile names the file in the fix; "" says config.ini.
	ConfigFile string
	// Unprivileged is the lowest port a user may bind (Linux
	// net.ipv4.ip_unprivileged_port_start), for CausePermission.
	Unprivileged int
}

// newFinding diagnoses a failed bind: it classifies the error, looks up who
// holds the port and finds the nearest free one. avoid holds ports that the
// other listeners of the same config use.
func newFinding(spec Spec, network, host string, port int, err error) *Finding {
	f := &Finding{Spec: spec, Network: network, Addr: net.JoinHostPort(host, strconv.Itoa(port)), Err: err}
	f.Spec.Port = port
	f.Cause = classify(err)
	if f.Cause == CauseInUse || f.Cause == CauseExcluded || f.Cause == CauseOther {
		// Windows says WSAEACCES both for an excluded range and for a port
		// another socket holds exclusively: the tables tell which.
		if hs, _ := Holders(spec.Network, port); len(hs) > 0 {
			ip := net.ParseIP(host)
			for _, h := range hs {
				if ip == nil || Conflicts(ip, h) {
					f.Holders = append(f.Holders, h)
				}
			}
			if len(f.Holders) == 0 {
				f.Holders = hs
			}
			f.Cause = CauseInUse
		}
	}
	if f.Cause == CausePermission {
		f.Unprivileged = unprivilegedStart()
	}
	return f
}

// classify maps a bind error to a cause.
func classify(err error) Cause {
	switch {
	case errors.Is(err, errAddrInUse):
		return CauseInUse
	case errors.Is(err, errAccess):
		if runtime.GOOS == "windows" {
			return CauseExcluded
		}
		return CausePermission
	case errors.Is(err, errAddrNotAvail):
		return CauseAddrNotAvail
	}
	return CauseOther
}

// Error is the whole finding on one line:
//
//	rtsp: cannot listen on 0.0.0.0:554/tcp: port held by pid 812 (wmpnetwk.exe, ...); set [rtsp] port=8554 in config.ini or run with --rtsp-port 8554, or stop that service
func (f *Finding) Error() string {
	return fmt.Sprintf("%s: cannot listen on %s/%s: %s; %s", f.Spec.Name, f.Addr, f.Spec.Network, f.Why(), f.Fix())
}

func (f *Finding) Unwrap() error { return f.Err }

// Why is the cause and the holder in plain words.
func (f *Finding) Why() string {
	port := f.Spec.Port
	switch f.Cause {
	case CauseInUse:
		h, ok := f.mainHolder()
		if !ok {
			if runtime.GOOS == "linux" && os.Geteuid() != 0 {
				return fmt.Sprintf("port in use by a process this user cannot see (`sudo ss -l%snp 'sport = :%d'` names it)", f.Spec.Network[:1], port)
			}
			return "port in use (unknown holder)"
		}
		where := ""
		if a := h.Addr(); a != f.Addr+"/"+f.Spec.Network {
			where = " on " + a
		}
		if h.Proc == nil {
			var about []string
			if h.UID >= 0 {
				about = append(about, "uid "+strconv.Itoa(h.UID))
			}
			if runtime.GOOS == "linux" {
				about = append(about, fmt.Sprintf("`sudo ss -l%snp 'sport = :%d'` names it", f.Spec.Network[:1], port))
			}
			who := "a process this user cannot see"
			if len(about) > 0 {
				who += " (" + strings.Join(about, "; ") + ")"
			}
			return "port held by " + who + where
		}
		if h.Proc.Self() {
			return "port already bound by this Berth" + where
		}
		if h.Proc.IsBerth() {
			return fmt.Sprintf("another Berth (%s) holds it%s", h.Proc.details(port, true), where)
		}
		return "port held by " + h.Proc.Describe(port) + where
	case CausePermission:
		return fmt.Sprintf("permission denied: ports below %d need privilege", f.unprivileged())
	case CauseAddrNotAvail:
		return fmt.Sprintf("%s is not an address of this host", hostOf(f.Addr))
	case CauseExcluded:
		return "Windows reserves this port (an excluded port range, often Hyper-V, WSL or Docker; `netsh int ipv4 show excludedportrange protocol=" + f.Spec.Network + "` lists them)"
	case CauseDuplicate:
		return fmt.Sprintf("%s listens on the same port %d/%s in this config", f.Other.Name, port, f.Spec.Network)
	}
	return f.Err.Error()
}

// Fix is what to change, naming the config key, the flag and a free port.
func (f *Finding) Fix() string {
	change := f.changePort()
	switch f.Cause {
	case CauseInUse:
		h, ok := f.mainHolder()
		switch {
		case ok && h.Proc.Self():
			return change
		case ok && h.Proc.IsBerth():
			return fmt.Sprintf("stop it (kill %d), or to run both %s", h.Proc.PID, change)
		case ok && h.Proc != nil:
			return change + ", " + stopHint(h.Proc.Name, f.Spec.Port)
		}
		return change
	case CausePermission:
		fix := change
		if runtime.GOOS == "linux" {
			exe, _ := osExecutable()
			if exe == "" {
				exe = "/path/to/berth"
			}
			fix += fmt.Sprintf(", or allow low ports: `sudo setcap cap_net_bind_service=+ep %s` or `sudo sysctl net.ipv4.ip_unprivileged_port_start=%d`", exe, f.Spec.Port)
		} else {
			fix += ", or run Berth with privilege"
		}
		return fix
	case CauseAddrNotAvail:
		return fmt.Sprintf("set [general] listen_ip to an address of this host (%s) or :: for all, in %s, or run with --listen-ip ::", strings.Join(localAddrs(), ", "), f.configFile())
	case CauseDuplicate:
		return change
	}
	return change
}

func (f *Finding) changePort() string {
	p := f.FreePort
	if f.Spec.Section == "" { // a port an API call asked for: the fix is in the call
		if p == 0 {
			return "ask for another port, or port=0 to let Berth pick a free one"
		}
		return fmt.Sprintf("ask for another port (%d is free), or port=0 to let Berth pick one", p)
	}
	key := f.Spec.Key
	if key == "" {
		key = "port"
	}
	if p == 0 {
		return fmt.Sprintf("set [%s] %s to a free port in %s or run with %s PORT", f.Spec.Section, key, f.configFile(), f.Spec.Flag)
	}
	return fmt.Sprintf("set [%s] %s=%d in %s or run with %s %d", f.Spec.Section, key, p, f.configFile(), f.Spec.Flag, p)
}

func (f *Finding) configFile() string {
	if f.ConfigFile == "" {
		return "config.ini"
	}
	return f.ConfigFile
}

func (f *Finding) unprivileged() int {
	if f.Unprivileged > 0 {
		return f.Unprivileged
	}
	return 1024
}

// mainHolder is the holder a finding names: one whose owner is known first.
func (f *Finding) mainHolder() (Socket, bool) {
	for _, h := range f.Holders {
		if h.Proc != nil {
			return h, true
		}
	}
	if len(f.Holders) > 0 {
		return f.Holders[0], true
	}
	return Socket{}, false
}

// Holder returns the named holder's process, nil when unknown.
func (f *Finding) Holder() *Process {
	if h, ok := f.mainHolder(); ok {
		return h.Proc
	}
	return nil
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

// localAddrs lists this host's interface addresses, for the listen_ip fix.
func localAddrs() []string {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLinkLocalUnicast() {
			out = append(out, n.IP.String())
		}
	}
	return out
}

// unprivilegedStart is the lowest port an unprivileged process may bind.
func unprivilegedStart() int {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n
		}
	}
	return 1024
}
