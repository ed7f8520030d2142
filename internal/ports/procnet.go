package ports

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"strconv"
	"strings"
)

// Linux socket states in /proc/net/tcp (include/net/tcp_states.h).
const (
	procTCPListen = 0x0A
	procUDPClose  = 0x07 // a bound, unconnected UDP socket
)

// parseProcNet parses one of Linux's /proc/net/{tcp,tcp6,udp,udp6} tables.
// It lives outside the linux-only file so it is tested on every OS; lines it
// cannot read are skipped, never fatal.
func parseProcNet(data []byte, proto string) []Socket {
	var out []Socket
	sc := bufio.NewScanner(bytes.NewReader(data))
	first := true
	for sc.Scan() {
		if first { // header: "sl local_address rem_address st ..."
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			continue
		}
		ip, port, err := parseProcAddr(f[1])
		if err != nil {
			continue
		}
		st, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil {
			continue
		}
		uid, err := strconv.Atoi(f[7])
		if err != nil {
			uid = -1
		}
		inode, _ := strconv.ParseUint(f[9], 10, 64)
		listen := st == procTCPListen
		if proto == "udp" {
			// Any UDP socket bound to the port blocks a bind, connected or not.
			listen = true
		}
		out = append(out, Socket{Proto: proto, IP: ip, Port: port, Listen: listen, UID: uid, Inode: inode})
	}
	return out
}

var errProcAddr = errors.New("malformed /proc/net address")

// parseProcAddr reads "0100007F:1F90": the address as the kernel's 32-bit
// words in host (little-endian) order, then the port in hex.
func parseProcAddr(s string) (net.IP, int, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return nil, 0, errProcAddr
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return nil, 0, errProcAddr
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return nil, 0, errProcAddr
	}
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.BigEndian.PutUint32(ip[i:], binary.LittleEndian.Uint32(raw[i:]))
	}
	if len(ip) == 4 {
		ip = net.IPv4(ip[0], ip[1], ip[2], ip[3]).To4()
	}
	return ip, int(port), nil
}
