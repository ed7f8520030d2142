package ports

import (
	"encoding/binary"
	"errors"
	"net"
)

// Parsing of the tables GetExtendedTcpTable and GetExtendedUdpTable fill
// (iphlpapi, TCP_TABLE_OWNER_PID_ALL / UDP_TABLE_OWNER_PID). It is plain
// byte work, so it builds and is tested on every OS; only the calls live in
// the windows file. Layouts (tcpmib.h, udpmib.h), all DWORDs little-endian,
// ports in network byte order in the low 16 bits of their DWORD:
//
//	MIB_TCPROW_OWNER_PID   state, localAddr, localPort, remoteAddr, remotePort, pid      24 bytes
//	MIB_TCP6ROW_OWNER_PID  localAddr[16], scope, localPort, remoteAddr[16], scope,
//	                       remotePort, state, pid                                       56 bytes
//	MIB_UDPROW_OWNER_PID   localAddr, localPort, pid                                    12 bytes
//	MIB_UDP6ROW_OWNER_PID  localAddr[16], scope, localPort, pid                         28 bytes
//
// The table starts with dwNumEntries (a DWORD); the rows follow at offset 4.

const (
	winTCPListen = 2 // MIB_TCP_STATE_LISTEN

	winTCP4Row = 24
	winTCP6Row = 56
	winUDP4Row = 12
	winUDP6Row = 28
)

var errWinTable = errors.New("socket table shorter than its entry count")

// winSocket is a row: a socket and its owning pid.
type winSocket struct {
	Socket
	PID int
}

// parseWinTable parses a table of proto ("tcp" or "udp") and family (4 or 6).
func parseWinTable(b []byte, proto string, family int) ([]winSocket, error) {
	if len(b) < 4 {
		return nil, errWinTable
	}
	n := int(binary.LittleEndian.Uint32(b))
	size := map[[2]int]int{{0, 4}: winTCP4Row, {0, 6}: winTCP6Row, {1, 4}: winUDP4Row, {1, 6}: winUDP6Row}[[2]int{boolInt(proto == "udp"), family}]
	if size == 0 {
		return nil, errors.New("unknown table kind")
	}
	if n < 0 || n > (len(b)-4)/size {
		return nil, errWinTable
	}
	out := make([]winSocket, 0, n)
	for i := 0; i < n; i++ {
		r := b[4+i*size : 4+(i+1)*size]
		var s winSocket
		s.Proto, s.UID = proto, -1
		u32 := func(off int) uint32 { return binary.LittleEndian.Uint32(r[off:]) }
		port := func(off int) int { return int(r[off])<<8 | int(r[off+1]) }
		switch {
		case proto == "tcp" && family == 4:
			s.IP = net.IPv4(r[4], r[5], r[6], r[7]).To4()
			s.Port = port(8)
			s.Listen = u32(0) == winTCPListen
			s.PID = int(u32(20))
		case proto == "tcp":
			s.IP = append(net.IP(nil), r[0:16]...)
			s.Port = port(20)
			s.Listen = u32(48) == winTCPListen
			s.PID = int(u32(52))
		case family == 4:
			s.IP = net.IPv4(r[0], r[1], r[2], r[3]).To4()
			s.Port = port(4)
			s.Listen = true
			s.PID = int(u32(8))
		default:
			s.IP = append(net.IP(nil), r[0:16]...)
			s.Port = port(20)
			s.Listen = true
			s.PID = int(u32(24))
		}
		out = append(out, s)
	}
	return out, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
