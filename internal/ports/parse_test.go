package ports

import (
	"encoding/hex"
	"net"
	"strconv"
	"strings"
	"testing"
)

// A real /proc/net/tcp6 and tcp excerpt (Debian 12, kernel 6.1).
const procTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2162 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123456 1 0000000000000000 100 0 0 10 0
   1: 00000000:0227 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 7890 1 0000000000000000 100 0 0 10 0
   2: 0100007F:2162 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 20 4 30 10 -1
   3: garbage
`

const procTCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:2162 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 555 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:2163 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 556 1 0000000000000000 100 0 0 10 0
`

func TestParseProcNet(t *testing.T) {
	cases := []struct {
		data, proto string
		want        []string // addr listen uid inode
	}{
		{procTCP, "tcp", []string{"127.0.0.1:8546/tcp true 0 123456", "0.0.0.0:551/tcp true 1000 7890", "127.0.0.1:8546/tcp false 0 0"}},
		{procTCP6, "tcp", []string{"[::]:8546/tcp true 0 555", "[::1]:8547/tcp true 0 556"}},
		{strings.ReplaceAll(procTCP, " 01 ", " 07 "), "udp", []string{"127.0.0.1:8546/udp true 0 123456", "0.0.0.0:551/udp true 1000 7890", "127.0.0.1:8546/udp true 0 0"}},
		{"", "tcp", nil},
	}
	for _, c := range cases {
		var got []string
		for _, s := range parseProcNet([]byte(c.data), c.proto) {
			got = append(got, strings.Join([]string{s.Addr(), boolStr(s.Listen), itoa(s.UID), itoa(int(s.Inode))}, " "))
		}
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
}

func FuzzParseProcNet(f *testing.F) {
	f.Add([]byte(procTCP))
	f.Add([]byte(procTCP6))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, s := range parseProcNet(b, "tcp") {
			if s.Port < 0 || s.Port > 65535 {
				t.Fatal(s.Port)
			}
		}
	})
}

// Rows as GetExtendedTcpTable(TCP_TABLE_OWNER_PID_ALL) and
// GetExtendedUdpTable(UDP_TABLE_OWNER_PID) return them, byte for byte in the
// tcpmib.h/udpmib.h layout: wmpnetwk.exe (pid 812) listening on 0.0.0.0:554,
// an established client connection, System (pid 4) on [::]:80, and a UDP
// socket on 0.0.0.0:5004.
var winTCP4Capture = mustHex(`02000000` +
	`02000000` + `00000000` + `022a0000` + `00000000` + `00000000` + `2c030000` + // LISTEN 0.0.0.0:554 pid 812
	`05000000` + `7f000001` + `c3500000` + `7f000001` + `022a0000` + `10270000`) // ESTAB 127.0.0.1:50000 -> :554 pid 10000

var winTCP6Capture = mustHex(`01000000` +
	`00000000000000000000000000000000` + `00000000` + `00500000` + // [::]:80, scope 0
	`00000000000000000000000000000000` + `00000000` + `00000000` + `02000000` + `04000000`) // LISTEN pid 4

var winUDP4Capture = mustHex(`01000000` + `00000000` + `138c0000` + `a00f0000`) // 0.0.0.0:5004 pid 4000

var winUDP6Capture = mustHex(`01000000` + `00000000000000000000000000000001` + `00000000` + `138d0000` + `a10f0000`) // [::1]:5005 pid 4001

func TestParseWinTable(t *testing.T) {
	cases := []struct {
		b      []byte
		proto  string
		family int
		want   []string
	}{
		{winTCP4Capture, "tcp", 4, []string{"0.0.0.0:554/tcp true 812", "127.0.0.1:50000/tcp false 10000"}},
		{winTCP6Capture, "tcp", 6, []string{"[::]:80/tcp true 4"}},
		{winUDP4Capture, "udp", 4, []string{"0.0.0.0:5004/udp true 4000"}},
		{winUDP6Capture, "udp", 6, []string{"[::1]:5005/udp true 4001"}},
	}
	for _, c := range cases {
		rows, err := parseWinTable(c.b, c.proto, c.family)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rows {
			got = append(got, r.Addr()+" "+boolStr(r.Listen)+" "+itoa(r.PID))
		}
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
	if _, err := parseWinTable(winTCP4Capture[:30], "tcp", 4); err == nil {
		t.Error("a truncated table parsed")
	}
}

func FuzzParseWinTable(f *testing.F) {
	f.Add(winTCP4Capture, 0, 4)
	f.Add(winTCP6Capture, 0, 6)
	f.Add(winUDP4Capture, 1, 4)
	f.Add(winUDP6Capture, 1, 6)
	f.Fuzz(func(t *testing.T, b []byte, udp, fam int) {
		proto := "tcp"
		if udp%2 == 1 {
			proto = "udp"
		}
		parseWinTable(b, proto, 4+2*(fam%2))
	})
}

// `lsof -nP -iTCP -FpcuLfPnT` output from macOS 14.
const lsofOut = `p812
cnc
u501
Lalice
f3
PTCP
n*:8554
TST=LISTEN
TQR=0
f4
PTCP
n127.0.0.1:8554->127.0.0.1:50123
TST=ESTABLISHED
p900
cmediamtx
u0
Lroot
f7
PTCP
n[::1]:8554
TST=LISTEN
f8
PUDP
n*:8000
`

func TestParseLsof(t *testing.T) {
	var got []string
	for _, s := range parseLsof([]byte(lsofOut), 0) {
		got = append(got, s.Addr()+" "+boolStr(s.Listen)+" "+s.Proc.Name+" "+s.Proc.User+" "+itoa(s.UID))
	}
	want := []string{"0.0.0.0:8554/tcp true nc alice 501", "127.0.0.1:8554/tcp false nc alice 501", "[::1]:8554/tcp true mediamtx root 0", "0.0.0.0:8000/udp true mediamtx root 0"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if n := len(parseLsof([]byte(lsofOut), 8000)); n != 1 {
		t.Errorf("port filter kept %d", n)
	}
}

func FuzzParseLsof(f *testing.F) {
	f.Add([]byte(lsofOut))
	f.Fuzz(func(t *testing.T, b []byte) { parseLsof(b, 0) })
}

func TestConflicts(t *testing.T) {
	ip := net.ParseIP
	cases := []struct {
		bind, holder string
		want         bool
	}{
		{"0.0.0.0", "127.0.0.1", true},
		{"127.0.0.1", "0.0.0.0", true},
		{"127.0.0.1", "127.0.0.2", false},
		{"0.0.0.0", "::", true}, // a dual-stack [::] may hold the IPv4 side
		{"0.0.0.0", "::1", false},
		{"::", "::1", true},
		{"::", "127.0.0.1", false},
	}
	for _, c := range cases {
		h := ip(c.holder)
		if h.To4() != nil {
			h = h.To4()
		}
		if got := Conflicts(ip(c.bind), Socket{IP: h}); got != c.want {
			t.Errorf("Conflicts(%s, %s) = %v", c.bind, c.holder, got)
		}
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func itoa(n int) string { return strconv.Itoa(n) }
