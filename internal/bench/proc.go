package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ProcSample is a process's CPU time and resident memory at one moment,
// read from /proc (Linux).
type ProcSample struct {
	At     time.Time
	CPU    time.Duration // user + system
	RSSKiB int64
	// AnonKiB is the anonymous part of RSS (heap, stacks), without the
	// file-backed pages of the executable.
	AnonKiB int64
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// ReadProc samples process pid.
func ReadProc(pid int) (ProcSample, error) {
	s := ProcSample{At: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("reading server CPU time: %w (is -pid %d a running process on this machine?)", err, pid)
	}
	utime, stime, err := parseStatTimes(stat)
	if err != nil {
		return s, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	s.CPU = time.Duration(utime+stime) * time.Second / clockTicks
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("reading server memory: %w", err)
	}
	s.RSSKiB, err = parseVmRSS(status)
	if err != nil {
		return s, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	// RssAnon leaves out the pages of the executable and the libraries the
	// process first touches while serving readers (code of the play path:
	// a fixed cost, not a reader's). Kernels before 4.5 lack it: 0.
	s.AnonKiB, _ = parseStatusKiB(status, "RssAnon:")
	return s, nil
}

// parseStatTimes reads utime and stime (fields 14 and 15) of
// /proc/PID/stat. The command name (field 2) may hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseStatTimes(stat []byte) (utime, stime int64, err error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("no ')' after the command name")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("%d fields after the command name; want at least 13", len(f))
	}
	if utime, err = strconv.ParseInt(f[11], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("utime: %w", err)
	}
	if stime, err = strconv.ParseInt(f[12], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("stime: %w", err)
	}
	return utime, stime, nil
}

// parseVmRSS reads "VmRSS:   1234 kB" from /proc/PID/status.
func parseVmRSS(status []byte) (int64, error) { return parseStatusKiB(status, "VmRSS:") }

// parseStatusKiB reads the kB figure of one /proc/PID/status line, named
// by key with its colon.
func parseStatusKiB(status []byte, key string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, key) {
			continue
		}
		f := strings.Fields(line[len(key):])
		if len(f) < 1 {
			break
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	return 0, fmt.Errorf("no %s line", strings.TrimSuffix(key, ":"))
}
