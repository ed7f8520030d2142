package bench

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"time"
)

// The campaign's bad inputs are well-formed messages of each protocol
// (requests, handshakes, chunks, packets) that a mutator then damages, so
// they get past the first byte and into the parsers behind it.

// mutate returns a damaged copy of b: one to three of bit flips,
// truncations, insertions, deletions, duplications, boundary values and
// junk tails.
func mutate(r *rand.Rand, b []byte) []byte {
	out := append([]byte(nil), b...)
	for n := 1 + r.IntN(3); n > 0; n-- {
		if len(out) == 0 {
			out = append(out, junk(r, 1+r.IntN(16))...)
			continue
		}
		i := r.IntN(len(out))
		switch r.IntN(9) {
		case 0, 1:
			out[i] ^= 1 << r.IntN(8)
		case 2:
			out = out[:i]
		case 3:
			out = append(out[:i], append(junk(r, 1+r.IntN(16)), out[i:]...)...)
		case 4:
			out[i] = interesting8[r.IntN(len(interesting8))]
		case 5:
			out = append(out[:i], out[min(len(out), i+1+r.IntN(32)):]...)
		case 6:
			j := min(len(out), i+1+r.IntN(64))
			out = append(out[:j], append(append([]byte(nil), out[i:j]...), out[j:]...)...)
		case 7:
			if i+4 <= len(out) {
				binary.BigEndian.PutUint32(out[i:], interesting32[r.IntN(len(interesting32))])
			}
		case 8:
			out = append(out, junk(r, 1+r.IntN(4096))...)
		}
	}
	return out
}

// maybeMutate damages b most of the time, and leaves it whole sometimes so
// that later steps of an exchange are reached with the earlier ones intact.
func maybeMutate(r *rand.Rand, b []byte) []byte {
	if r.IntN(4) == 0 {
		return b
	}
	return mutate(r, b)
}

var (
	interesting8  = []byte{0, 1, 0x7f, 0x80, 0xff, '\r', '\n', ' ', '$', ':', ';', '=', '%', '"'}
	interesting32 = []uint32{0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff}
)

func junk(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// oneOf picks a string.
func oneOf(r *rand.Rand, s ...string) string { return s[r.IntN(len(s))] }

// weirdNumber is a number a parser may not expect.
func weirdNumber(r *rand.Rand) string {
	return oneOf(r, "0", "-1", "1", "65535", "65536", "2147483647", "2147483648", "-2147483649",
		"4294967296", "9223372036854775807", "99999999999999999999999", "1e9", "0x10", "NaN", " 1", "1.5", "",
		strconv.Itoa(r.IntN(100000)))
}

// weirdString is a text value a parser may not expect.
func weirdString(r *rand.Rand) string {
	switch r.IntN(8) {
	case 0:
		return string(junk(r, 1+r.IntN(64)))
	case 1:
		return string(make([]byte, 1+r.IntN(70000))) // NULs, oversized
	case 2:
		return "../../../../etc/passwd"
	case 3:
		return "%00%ff%zz\u202e\xff\xfe"
	case 4:
		return weirdNumber(r)
	case 5:
		return ""
	case 6:
		return "a/b/c?d=e&f#g"
	}
	return "chaos" + strconv.Itoa(r.IntN(64))
}

var chaosDialer = net.Dialer{Timeout: 2 * time.Second}

// chaosConn is a TCP connection, or TLS over one.
type chaosConn interface {
	net.Conn
	CloseWrite() error
}

// dial opens a TCP connection for one input.
func dial(ctx context.Context, addr string) (chaosConn, error) {
	c, err := chaosDialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// dial opens a connection for one input: TLS for the campaign's TLS
// targets (the certificate is not checked: the server's is the one under
// test, often self-signed).
func (c *chaosRun) dial(ctx context.Context, addr string) (chaosConn, error) {
	conn, err := dial(ctx, addr)
	if err != nil || !c.tls {
		return conn, err
	}
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	if err := tc.HandshakeContext(ctx); err != nil {
		hangUp(conn)
		return nil, err
	}
	return tc, nil
}

// hangUp closes with a reset, not a FIN: the campaign opens a hundred
// thousand connections and must not fill the ephemeral port range with
// TIME_WAIT.
func hangUp(c chaosConn) {
	raw := net.Conn(c)
	if tc, ok := c.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	c.Close()
}

// exchange writes b, half-closes, and reads what comes back for up to
// readFor (or 64 KiB): a server must answer or hang up, not wait.
func exchange(ctx context.Context, c chaosConn, b []byte, readFor time.Duration) error {
	defer hangUp(c)
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := c.Write(b); err != nil {
		return err
	}
	c.CloseWrite()
	return drain(c, readFor)
}

// drain reads for up to d (or 64 KiB).
func drain(c net.Conn, d time.Duration) error {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	return err
}

// readReply reads one RTSP or HTTP response head and its body (by
// Content-Length, at most 64 KiB) and returns the head.
func readReply(c net.Conn, d time.Duration) (string, error) {
	c.SetReadDeadline(time.Now().Add(d))
	var head []byte
	buf := make([]byte, 1)
	for len(head) < 16<<10 {
		if _, err := c.Read(buf); err != nil {
			return string(head), err
		}
		head = append(head, buf[0])
		if n := len(head); n >= 4 && string(head[n-4:]) == "\r\n\r\n" {
			break
		}
	}
	if n := headerInt(string(head), "Content-Length"); n > 0 {
		io.CopyN(io.Discard, c, int64(min(n, 64<<10)))
	}
	return string(head), nil
}
