package ports

import (
	"bufio"
	"bytes"
	"net"
	"strconv"
	"strings"
)

// parseLsof reads `lsof -nP -F pcuLnPT` output: lines tagged by their first
// character (p pid, c command, u uid, L login, f fd, P protocol, n name,
// T TCP info such as "TST=LISTEN"). Used on macOS and the BSDs, tested on
// every OS.
func parseLsof(data []byte, port int) []Socket {
	var out []Socket
	var cur *Process
	uid := -1
	var pending *Socket
	flush := func() {
		if pending != nil {
			out = append(out, *pending)
			pending = nil
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		v := line[1:]
		switch line[0] {
		case 'p':
			flush()
			pid, _ := strconv.Atoi(v)
			cur = &Process{PID: pid}
			uid = -1
		case 'c':
			if cur != nil {
				cur.Name = v
			}
		case 'u':
			uid, _ = strconv.Atoi(v)
		case 'L':
			if cur != nil {
				cur.User = v
			}
		case 'f':
			flush()
		case 'P':
			flush()
			pending = &Socket{Proto: strings.ToLower(v), UID: uid, Proc: cur}
		case 'n':
			if pending == nil {
				continue
			}
			// "*:554", "127.0.0.1:8554", "[::1]:8554", "127.0.0.1:50000->127.0.0.1:8554"
			local, _, _ := strings.Cut(v, "->")
			i := strings.LastIndexByte(local, ':')
			if i < 0 {
				pending = nil
				continue
			}
			h, p := strings.Trim(local[:i], "[]"), local[i+1:]
			pn, err := strconv.Atoi(p)
			if err != nil {
				pending = nil
				continue
			}
			ip := net.ParseIP(h)
			if h == "*" {
				ip = net.IPv4zero.To4()
			}
			if ip == nil {
				pending = nil
				continue
			}
			pending.IP, pending.Port = ip, pn
			pending.Listen = pending.Proto == "udp" || !strings.Contains(v, "->")
		case 'T':
			if pending != nil && strings.HasPrefix(v, "ST=") {
				pending.Listen = v == "ST=LISTEN"
			}
		}
	}
	flush()
	var keep []Socket
	for _, s := range out {
		if s.IP != nil && (port == 0 || s.Port == port) {
			keep = append(keep, s)
		}
	}
	return keep
}
