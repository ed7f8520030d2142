//go:build windows

package ports

import (
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/windows"
)

var (
	iphlpapi                = windows.NewLazySystemDLL("iphlpapi.dll")
	procGetExtendedTcpTable = iphlpapi.NewProc("GetExtendedTcpTable")
	procGetExtendedUdpTable = iphlpapi.NewProc("GetExtendedUdpTable")
)

const (
	tcpTableOwnerPIDAll = 5 // TCP_TABLE_OWNER_PID_ALL
	udpTableOwnerPID    = 1 // UDP_TABLE_OWNER_PID
)

// listSockets reads the TCP or UDP tables of both families through
// iphlpapi and names each owner by its image.
func listSockets(proto string, port int) ([]Socket, error) {
	var out []Socket
	var firstErr error
	names := map[int]*Process{}
	for _, fam := range []int{4, 6} {
		b, err := winTable(proto, fam)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		rows, err := parseWinTable(b, proto, fam)
		if err != nil {
			firstErr = err
			continue
		}
		for _, r := range rows {
			if port != 0 && r.Port != port {
				continue
			}
			p, ok := names[r.PID]
			if !ok {
				p = winProcess(r.PID)
				names[r.PID] = p
			}
			r.Socket.Proc = p
			out = append(out, r.Socket)
		}
	}
	if out == nil && firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

func winTable(proto string, family int) ([]byte, error) {
	af := uintptr(windows.AF_INET)
	if family == 6 {
		af = windows.AF_INET6
	}
	proc, class := procGetExtendedTcpTable, uintptr(tcpTableOwnerPIDAll)
	if proto == "udp" {
		proc, class = procGetExtendedUdpTable, udpTableOwnerPID
	}
	size := uint32(64 << 10)
	for tries := 0; tries < 4; tries++ {
		buf := make([]byte, size)
		r, _, _ := proc.Call(uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0, af, class, 0)
		switch windows.Errno(r) {
		case 0:
			return buf[:size], nil
		case windows.ERROR_INSUFFICIENT_BUFFER:
			size += 16 << 10
			continue
		default:
			return nil, windows.Errno(r)
		}
	}
	return nil, windows.ERROR_INSUFFICIENT_BUFFER
}

// winProcess names pid by its image; pid 4 is the kernel ("System"), where
// HTTP.sys listens for IIS and other services.
func winProcess(pid int) *Process {
	switch pid {
	case 0:
		return &Process{PID: 0, Name: "System Idle Process"}
	case 4:
		return &Process{PID: 4, Name: "System"}
	}
	p := &Process{PID: pid}
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return p
	}
	defer windows.CloseHandle(h)
	buf := make([]uint16, windows.MAX_LONG_PATH)
	n := uint32(len(buf))
	if windows.QueryFullProcessImageName(h, 0, &buf[0], &n) == nil {
		p.Cmdline = windows.UTF16ToString(buf[:n])
		p.Name = filepath.Base(p.Cmdline)
	}
	return p
}

// Processes lists running processes by image name.
func Processes() []*Process {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPPROCESS, 0)
	if err != nil {
		return nil
	}
	defer windows.CloseHandle(snap)
	var out []*Process
	var e windows.ProcessEntry32
	e.Size = uint32(unsafe.Sizeof(e))
	for err := windows.Process32First(snap, &e); err == nil; err = windows.Process32Next(snap, &e) {
		out = append(out, &Process{PID: int(e.ProcessID), Name: windows.UTF16ToString(e.ExeFile[:])})
	}
	return out
}
