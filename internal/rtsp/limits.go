package rtsp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"

	"github.com/berthmedia/berth/internal/limits"
)

// Limits against abuse (docs/reliability.md#limits-against-abuse). Each is
// the Server field of the same meaning; zero takes the default.
const (
	defaultMaxHeaderBytes      = 16 << 10 // [rtsp] max_header_bytes
	defaultMaxBodyBytes        = 64 << 10 // [rtsp] max_body_bytes: an SDP with many tracks is a few KB
	defaultHeaderTimeout       = 10 * time.Second
	defaultMaxInterleavedBytes = 4096 // a player's RTCP compound packet is well below it
)

// errRefused ends a connection that broke a limit: it was answered and
// closed, and the reason is logged.
var errRefused = errors.New("rtsp: request over a limit; answered and closed")

func (s *Server) maxHeaderBytes() int { return orDefault(s.MaxHeaderBytes, defaultMaxHeaderBytes) }
func (s *Server) maxBodyBytes() int   { return orDefault(s.MaxBodyBytes, defaultMaxBodyBytes) }
func (s *Server) maxInterleavedBytes() int {
	return orDefault(s.MaxInterleavedBytes, defaultMaxInterleavedBytes)
}
func (s *Server) headerTimeout() time.Duration {
	if s.HeaderTimeout > 0 {
		return s.HeaderTimeout
	}
	return defaultHeaderTimeout
}

func orDefault(v, d int) int {
	if v > 0 {
		return v
	}
	return d
}

// warner is the rate-limited logger of the refusals: Warn, which Berth
// shares between every protocol, or else one of the server's own.
func (s *Server) warner() *limits.Warner { return s.ownWarn.Get(s.Warn, s.Log) }

// readRequest reads one request into req. Its head must be at most
// max_header_bytes (else 431), its body at most max_body_bytes (else 413,
// RFC 2326 section 7.1.1), and the whole request must arrive within
// header_timeout_sec of its first byte (else 408): a client that sends a
// byte a second (slowloris) cannot hold a connection and its goroutine. A
// refused request is answered, logged and the connection closed; the error
// is then errRefused. gortsplib parses the bytes once they are all here.
func (c *conn) readRequest(req *base.Request) error {
	c.nc.SetReadDeadline(time.Now().Add(c.s.headerTimeout()))
	defer c.nc.SetReadDeadline(time.Time{})
	maxHead := c.s.maxHeaderBytes()
	scratch := requestScratches.Get().(*requestScratch)
	defer scratch.put()
	buf := &scratch.buf
	for {
		if buf.Len() == 0 && !methodAhead(c.br) {
			return errNotRTSP
		}
		line, err := c.br.ReadSlice('\n')
		if buf.Len() == 0 && (string(line) == "\r\n" || string(line) == "\n") {
			continue // an empty line between requests is tolerated (as RFC 9112 section 2.2 asks of HTTP servers)
		}
		buf.Write(line)
		if buf.Len() > maxHead {
			return c.refuse(431, "Request Header Fields Too Large", "max_header_bytes",
				fmt.Sprintf("RTSP request from %s has a head over [rtsp] max_header_bytes=%d; answered 431 and closed. Raise [rtsp] max_header_bytes if real clients send heads that large", c.ip(), maxHead))
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return c.readFailed(err, buf.Len())
		}
		if string(line) == "\r\n" || string(line) == "\n" {
			break
		}
	}
	if n := contentLength(buf.Bytes()); n > 0 {
		if maxBody := c.s.maxBodyBytes(); n > maxBody {
			return c.refuse(base.StatusRequestEntityTooLarge, "", "max_body_bytes",
				fmt.Sprintf("RTSP request from %s has a %d-byte body, over [rtsp] max_body_bytes=%d; answered 413 and closed. Raise [rtsp] max_body_bytes if real clients send SDPs that large", c.ip(), n, maxBody))
		}
		if _, err := io.CopyN(buf, c.br, int64(n)); err != nil {
			return c.readFailed(err, buf.Len())
		}
	}
	scratch.rd.Reset(buf.Bytes())
	scratch.br.Reset(&scratch.rd)
	return req.Unmarshal(scratch.br)
}

// errNotRTSP is a request line that does not begin with a method: a TLS
// handshake on the plain port, an HTTP client's binary, garbage. It is
// answered 400 at once, as gortsplib's own parser did, rather than after
// the head's size or time limit.
var errNotRTSP = errors.New("the request does not begin with a method (a TLS handshake or binary data on the RTSP port?)")

// maxMethod is gortsplib's bound of a method name.
const maxMethod = 64

// methodAhead looks at the bytes already buffered, without waiting for
// more: false when they cannot begin a request line (a byte that is not a
// token character, RFC 2326 section 15.1, or a method longer than 64 bytes
// before its space). Leading empty lines are allowed.
func methodAhead(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	i := 0
	for i < len(b) && (b[i] == '\r' || b[i] == '\n') {
		i++
	}
	for n := 0; i < len(b); i, n = i+1, n+1 {
		ch := b[i]
		if ch == ' ' {
			return n > 0
		}
		if n >= maxMethod || ch <= 0x20 || ch >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", ch) >= 0 {
			return false
		}
	}
	return true
}

// readFailed turns a read that timed out in the middle of a request into
// a 408; other errors are the connection's end.
func (c *conn) readFailed(err error, got int) error {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	t := c.s.headerTimeout()
	return c.refuse(base.StatusRequestTimeout, "", "header_timeout_sec",
		fmt.Sprintf("RTSP request from %s did not arrive within [rtsp] header_timeout_sec=%d (%d bytes of it came); answered 408 and closed. Raise [rtsp] header_timeout_sec if real clients are that slow", c.ip(), int(t/time.Second), got))
}

// refuse answers status, logs msg (rate-limited per limit) and closes.
func (c *conn) refuse(status base.StatusCode, text, limit, msg string) error {
	c.s.warner().Warn("rtsp."+limit, "", msg, "remote", c.remote)
	c.writeResponse(&base.Response{StatusCode: status, StatusMessage: text, Header: base.Header{}}, nil)
	c.close(fmt.Sprintf("%d: over [rtsp] %s", status, limit))
	return errRefused
}

// ip is the client's address without its port.
func (c *conn) ip() string {
	if i := strings.LastIndexByte(c.remote, ':'); i > 0 {
		return strings.Trim(c.remote[:i], "[]")
	}
	return c.remote
}

// contentLength finds Content-Length in a request head; 0 when absent or
// not a number (gortsplib then refuses the request).
func contentLength(head []byte) int {
	for len(head) > 0 {
		var line []byte
		line, head, _ = bytes.Cut(head, []byte("\n"))
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok || !bytes.EqualFold(bytes.TrimSpace(k), []byte("Content-Length")) {
			continue
		}
		n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
		if err != nil || n < 0 {
			return 0
		}
		return n
	}
	return 0
}

// checkInterleaved refuses a '$' frame of n bytes from a connection that
// does not publish: a player sends RTCP only, so a large frame is garbage
// or abuse, and it would make the connection keep a buffer that large.
func (c *conn) checkInterleaved(n int) error {
	if c.sess.state == stateRecord || n <= c.s.maxInterleavedBytes() {
		return nil
	}
	msg := fmt.Sprintf("RTSP client %s sent a %d-byte interleaved frame without publishing, over [rtsp] max_interleaved_bytes=%d; connection closed. Raise [rtsp] max_interleaved_bytes if a player sends RTCP that large",
		c.ip(), n, c.s.maxInterleavedBytes())
	c.s.warner().Warn("rtsp.max_interleaved_bytes", "", msg, "remote", c.remote)
	c.close("interleaved frame over [rtsp] max_interleaved_bytes")
	return errRefused
}

// requestScratch is what readRequest needs for one request: the request's
// bytes, and the reader gortsplib parses them from. Pooled, a request costs
// no allocation of its own.
type requestScratch struct {
	buf bytes.Buffer
	rd  bytes.Reader
	br  *bufio.Reader
}

var requestScratches = sync.Pool{New: func() any { return &requestScratch{br: bufio.NewReaderSize(nil, 4096)} }}

func (r *requestScratch) put() {
	r.buf.Reset()
	r.rd.Reset(nil)
	r.br.Reset(nil)
	requestScratches.Put(r)
}

// malformed logs a request that does not parse. From a connection that never
// set up a session (a client that is not RTSP, a scan, a fuzzer) the line
// goes through the Warner: one per 10 s however many peers send garbage,
// where each used to log its own; the connection's closed line still names
// the cause. A client in a session gets its own line at once.
func (c *conn) malformed(err error) {
	if c.sess.state != stateInitial {
		c.log.Warn("malformed request; answered 400 and closed the connection", "err", err)
		return
	}
	c.s.warner().Hold("rtsp malformed", "malformed request from "+c.ip()+" on the RTSP port (not RTSP, or a scan); answered 400 and closed the connection",
		"listener", "rtsp", "remote", c.remote, "err", err.Error())
}
