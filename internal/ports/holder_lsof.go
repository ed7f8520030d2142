//go:build darwin || freebsd || openbsd || netbsd || dragonfly

package ports

import (
	"errors"
	"os/exec"
	"strconv"
	"strings"
)

// listSockets asks lsof, which macOS ships and the BSDs package. Without it
// the holder is "unknown", never a crash.
func listSockets(proto string, port int) ([]Socket, error) {
	path, err := exec.LookPath("lsof")
	if err != nil {
		return nil, errors.New("lsof not found; install it to name port holders")
	}
	sel := "-i" + strings.ToUpper(proto)
	if port > 0 {
		sel += ":" + strconv.Itoa(port)
	}
	// lsof exits 1 when nothing matches; its output still parses.
	out, _ := exec.Command(path, "-nP", sel, "-FpcuLfPnT").Output()
	return parseLsof(out, port), nil
}

// Processes lists running processes through ps.
func Processes() []*Process {
	out, err := exec.Command("ps", "-axo", "pid=,user=,comm=").Output()
	if err != nil {
		return nil
	}
	var ps []*Process
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		cmd := strings.Join(f[2:], " ")
		name := cmd
		if i := strings.LastIndexByte(cmd, '/'); i >= 0 {
			name = cmd[i+1:]
		}
		ps = append(ps, &Process{PID: pid, User: f[1], Name: name, Cmdline: cmd})
	}
	return ps
}
