//go:build linux

package ports

import (
	"bufio"
	"bytes"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// listSockets reads /proc/net/{proto,proto6} and finds the owner of each
// socket on port through /proc/*/fd (socket:[inode] links). Without root the
// fds of other users' processes are unreadable: those sockets keep Proc nil
// but still carry the owner's uid from the table.
func listSockets(proto string, port int) ([]Socket, error) {
	var all []Socket
	var firstErr error
	read := 0
	for _, name := range []string{proto, proto + "6"} {
		data, err := os.ReadFile("/proc/net/" + name)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		read++
		for _, s := range parseProcNet(data, proto) {
			if port == 0 || s.Port == port {
				all = append(all, s)
			}
		}
	}
	if read == 0 {
		return nil, firstErr
	}
	want := map[uint64]*Process{}
	for _, s := range all {
		if s.Inode != 0 {
			want[s.Inode] = nil
		}
	}
	if len(want) > 0 {
		findInodeOwners(want)
	}
	for i := range all {
		all[i].Proc = want[all[i].Inode]
		if all[i].Proc != nil && all[i].Proc.User == "" {
			all[i].Proc.User = userName(all[i].UID)
		}
	}
	return all, nil
}

// findInodeOwners fills want[inode] with the process holding that socket.
func findInodeOwners(want map[uint64]*Process) {
	procs, _ := os.ReadDir("/proc")
	left := len(want)
	for _, d := range procs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join("/proc", d.Name(), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		var p *Process
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(dir, fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			ino, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]"), 10, 64)
			if err != nil {
				continue
			}
			if cur, ok := want[ino]; ok && cur == nil {
				if p == nil {
					p = readProcess(pid)
				}
				want[ino] = p
				if left--; left == 0 {
					return
				}
			}
		}
	}
}

// readProcess reads name, command line and user of pid from /proc.
func readProcess(pid int) *Process {
	dir := "/proc/" + strconv.Itoa(pid)
	p := &Process{PID: pid}
	if b, err := os.ReadFile(dir + "/comm"); err == nil {
		p.Name = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile(dir + "/cmdline"); err == nil {
		p.Cmdline = strings.TrimSpace(string(bytes.ReplaceAll(bytes.TrimRight(b, "\x00"), []byte{0}, []byte{' '})))
	}
	if b, err := os.ReadFile(dir + "/status"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
				if f := strings.Fields(rest); len(f) > 0 {
					if uid, err := strconv.Atoi(f[0]); err == nil {
						p.User = userName(uid)
					}
				}
				break
			}
		}
	}
	return p
}

// Processes lists running processes (pid, name, command line, user), for
// doctor and probe to find other media servers on this host.
func Processes() []*Process {
	procs, _ := os.ReadDir("/proc")
	var out []*Process
	for _, d := range procs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		out = append(out, readProcess(pid))
	}
	return out
}

func userName(uid int) string {
	if uid < 0 {
		return ""
	}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return "uid " + strconv.Itoa(uid)
}
