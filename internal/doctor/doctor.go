// Package doctor is `berth doctor`: the start-up preflight of internal/ports
// (bind and release every listener, name holders, find shadows) run on
// demand, plus what a start cannot see: other media servers on this host,
// ports below the unprivileged start, firewall rules that drop a port.
package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berthmedia/berth/internal/ports"
)

// Row is one line of doctor's table: a listener, or a host-wide check.
type Row struct {
	Listener string `json:"listener"`          // "rtsp/tcp"; "host" for host-wide checks
	Address  string `json:"address"`           // "[::]:8554"
	State    string `json:"state"`             // "ok", "in use", "permission denied", "shadowed", "firewall", "note"
	Holder   string `json:"holder,omitempty"`  // who is in the way
	Fix      string `json:"fix,omitempty"`     // what to change
	Message  string `json:"message,omitempty"` // the whole finding, as Berth's start prints it
	Problem  bool   `json:"problem"`           // counts against the exit code
}

// Report is everything doctor found.
type Report struct {
	Config string `json:"config"`
	Rows   []Row  `json:"rows"`
	OK     bool   `json:"ok"`
	// PortFindings counts listeners that would refuse the start.
	PortFindings int `json:"port_findings"`
}

// Options tune doctor for tests.
type Options struct {
	ConfigFile string
	// Firewall returns the firewall rules text; nil reads nft and iptables.
	Firewall func() string
}

// Run checks specs without keeping anything bound.
func Run(specs []ports.Spec, opt Options) *Report {
	r := &Report{Config: opt.ConfigFile}
	if r.Config == "" {
		r.Config = "(embedded defaults)"
	}
	bad := map[string]bool{}
	b, err := ports.BindAll(specs, false)
	if se, ok := err.(*ports.StartError); ok {
		for _, f := range se.Findings {
			f.ConfigFile = opt.ConfigFile
			row := Row{Listener: f.Spec.Name + "/" + f.Spec.Network, Address: f.Addr, State: f.Cause.String(),
				Fix: f.Fix(), Message: f.Error(), Problem: true}
			if p := f.Holder(); p != nil {
				row.Holder = p.Describe(f.Spec.Port)
			} else if f.Cause == ports.CauseInUse {
				row.Holder = "unknown"
			} else if f.Cause == ports.CauseDuplicate {
				row.Holder = "this config"
			}
			r.Rows = append(r.Rows, row)
			bad[row.Listener] = true
			r.PortFindings++
		}
		// Bind the listeners that are fine alone, to look for shadows.
		var okSpecs []ports.Spec
		for _, s := range specs {
			if !bad[s.Name+"/"+s.Network] {
				okSpecs = append(okSpecs, s)
			}
		}
		b, err = ports.BindAll(okSpecs, false)
	} else if err != nil {
		r.Rows = append(r.Rows, Row{Listener: "host", State: "error", Message: err.Error(), Problem: true})
	}
	var shadows []string
	if b != nil {
		shadows = ports.Shadows(b)
		b.Close()
	}
	for _, s := range specs {
		key := s.Name + "/" + s.Network
		if bad[key] {
			continue
		}
		row := Row{Listener: key, Address: s.Addr(), State: "ok"}
		for _, line := range shadows {
			if strings.HasPrefix(line, s.Name+": ") && (s.Network == "udp") == strings.Contains(line, "/udp") {
				row.State, row.Message, row.Problem = "shadowed", line, true
				row.Fix = "stop that process, or set [general] listen_ip to the address Berth should own"
			}
		}
		r.Rows = append(r.Rows, row)
	}
	r.Rows = append(r.Rows, privileged(specs)...)
	r.Rows = append(r.Rows, otherServers(specs)...)
	fw := opt.Firewall
	if fw == nil {
		fw = firewallRules
	}
	r.Rows = append(r.Rows, firewall(specs, fw())...)
	r.OK = true
	for _, row := range r.Rows {
		if row.Problem {
			r.OK = false
		}
	}
	return r
}

// ExitCode is doctor's exit status: 0 all well, 3 (as for a refused start)
// when a listener cannot be bound, 1 for other problems (shadows, firewall).
func (r *Report) ExitCode() int {
	switch {
	case r.OK:
		return 0
	case r.PortFindings > 0:
		return ports.ExitPortFindings
	}
	return 1
}

// WriteTable prints the table and, under it, each problem's whole line.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "berth doctor: config %s\n\n", r.Config)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LISTENER\tADDRESS\tSTATE\tHOLDER\tFIX")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", row.Listener, dash(row.Address), row.State, dash(row.Holder), dash(short(row.Fix)))
	}
	tw.Flush()
	var msgs []string
	for _, row := range r.Rows {
		if row.Message != "" {
			msgs = append(msgs, row.Message)
		}
	}
	if len(msgs) > 0 {
		fmt.Fprintln(w)
		for _, m := range msgs {
			fmt.Fprintln(w, m)
		}
	}
	fmt.Fprintln(w)
	if r.OK {
		fmt.Fprintln(w, "all listeners can be used: `berth` will start")
	} else if r.PortFindings > 0 {
		fmt.Fprintf(w, "%d listener(s) cannot be used: `berth` would refuse to start (exit code %d)\n", r.PortFindings, ports.ExitPortFindings)
	} else {
		fmt.Fprintln(w, "Berth can start, but some clients may not reach it (see above)")
	}
}

// WriteJSON prints the report as JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(s string) string {
	if len(s) > 90 {
		return s[:87] + "..."
	}
	return s
}

// privileged notes ports below the unprivileged start: fine for this user
// (the bind check passed) but a service account without the capability
// would be refused.
func privileged(specs []ports.Spec) []Row {
	start := unprivilegedStart()
	var rows []Row
	for _, s := range specs {
		if s.Port == 0 || s.Port >= start || runtime.GOOS != "linux" {
			continue
		}
		state := "note"
		msg := fmt.Sprintf("%s: port %d is below %d (net.ipv4.ip_unprivileged_port_start)", s.Name, s.Port, start)
		switch {
		case os.Geteuid() == 0:
			msg += "; fine as root, but a service user needs `setcap cap_net_bind_service=+ep` on the binary"
		case hasBindCap():
			msg += "; this process has CAP_NET_BIND_SERVICE"
		default:
			state = "permission denied"
		}
		rows = append(rows, Row{Listener: s.Name + "/" + s.Network, Address: s.Addr(), State: state, Message: msg,
			Problem: state != "note"})
	}
	return rows
}

func unprivilegedStart() int {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n
		}
	}
	return 1024
}

// hasBindCap reads CapEff from /proc/self/status: bit 10 is CAP_NET_BIND_SERVICE.
func hasBindCap() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && n&(1<<10) != 0
		}
	}
	return false
}

// otherServers lists media servers already running here (another Berth,
// ZLMediaKit, MediaMTX, lal) with the ports they listen on (a process that
// listens on nothing is a client run and is skipped). A note, not a
// problem: a clash with our ports is already a finding above.
func otherServers(specs []ports.Spec) []Row {
	var rows []Row
	socks, _ := ports.Listening()
	for _, p := range ports.Processes() {
		kind := ports.KnownServer(p)
		if kind == "" || p.Self() {
			continue
		}
		var addrs []string
		for _, s := range socks {
			if s.Proc != nil && s.Proc.PID == p.PID {
				addrs = append(addrs, s.Addr())
			}
		}
		if len(addrs) == 0 {
			continue // a client run (berth probe, berth bench), not a server
		}
		msg := fmt.Sprintf("%s is running: %s; it listens on %s", kind, p.Describe(0), strings.Join(addrs, ", "))
		rows = append(rows, Row{Listener: "host", State: "note", Holder: p.Describe(0), Message: msg})
	}
	return rows
}

// firewallRules reads the rules where readable (root, or nothing).
func firewallRules() string {
	var out strings.Builder
	run := func(name string, args ...string) {
		if _, err := exec.LookPath(name); err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if b, err := exec.CommandContext(ctx, name, args...).Output(); err == nil {
			out.Write(b)
			out.WriteByte('\n')
		}
	}
	switch runtime.GOOS {
	case "linux":
		run("nft", "list", "ruleset")
		run("iptables", "-S")
		run("ip6tables", "-S")
	case "windows":
		run("netsh", "advfirewall", "show", "allprofiles", "state")
	}
	return out.String()
}

var portToken = regexp.MustCompile(`\d+([-:]\d+)?`)

var dropRule = regexp.MustCompile(`(?i)\b(drop|reject)\b`)

// firewall finds rules that drop or reject a configured port: nftables
// ("tcp dport 8554 drop", "dport { 554, 8554 } reject") and iptables
// ("-A INPUT -p tcp --dport 8554 -j DROP"). A hint, read from text: it
// cannot know the rules' order or chains.
func firewall(specs []ports.Spec, rules string) []Row {
	var rows []Row
	seen := map[string]bool{}
	for _, line := range strings.Split(rules, "\n") {
		line = strings.TrimSpace(line)
		if !dropRule.MatchString(line) || !strings.Contains(line, "dport") {
			continue
		}
		for _, s := range specs {
			if s.Port == 0 || !mentionsPort(line, s.Port) {
				continue
			}
			if (strings.Contains(line, "udp") && s.Network == "tcp") || (strings.Contains(line, "tcp") && s.Network == "udp") {
				continue
			}
			key := s.Name + s.Network + line
			if seen[key] {
				continue
			}
			seen[key] = true
			rows = append(rows, Row{Listener: s.Name + "/" + s.Network, Address: s.Addr(), State: "firewall", Problem: true,
				Message: fmt.Sprintf("%s: a firewall rule drops port %d/%s: %s", s.Name, s.Port, s.Network, line),
				Fix:     "allow the port in the firewall, or use a port the firewall lets through"})
		}
	}
	if runtime.GOOS == "windows" && strings.Contains(rules, "ON") {
		rows = append(rows, Row{Listener: "host", State: "note",
			Message: "Windows Firewall is on: clients on other hosts need an inbound rule for Berth's ports (`netsh advfirewall firewall add rule name=berth dir=in action=allow program=<path to berth.exe>`)"})
	}
	return rows
}

// mentionsPort finds port as a whole number after "dport" on a rule line,
// in a single value, a set or a range.
func mentionsPort(line string, port int) bool {
	_, after, ok := strings.Cut(line, "dport")
	if !ok {
		return false
	}
	after = strings.TrimSpace(after)
	var set string
	if strings.HasPrefix(after, "{") {
		set, _, _ = strings.Cut(after, "}")
	} else if f := strings.Fields(after); len(f) > 0 {
		set = f[0]
	}
	for _, tok := range portToken.FindAllString(set, 64) {
		lo, hi, isRange := strings.Cut(strings.ReplaceAll(tok, ":", "-"), "-")
		a, _ := strconv.Atoi(lo)
		b := a
		if isRange {
			b, _ = strconv.Atoi(hi)
		}
		if port >= a && port <= b {
			return true
		}
	}
	return false
}
