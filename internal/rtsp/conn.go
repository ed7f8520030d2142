package rtsp

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"

	"github.com/berthmedia/berth/internal/fanout"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/ports"
)

const (
	// readBufferSize is the request buffer. A connection holds one only
	// while it reads (see awaitInput); a publisher's media reads bypass it
	// in ReadFull for large frames.
	readBufferSize = 8 * 1024
	writeTimeout   = 10 * time.Second // a reader whose socket takes longer is dropped
)

// conn is one RTSP control connection and the session it carries.
type conn struct {
	s      *Server
	nc     net.Conn
	br     *bufio.Reader // nil while an idle connection waits (awaitInput)
	lead   leadReader
	log    logging.Attrs // conn and remote on every line, formatted only when one is written
	remote string
	nonce  string
	// lifeLevel is the level of the accepted/closed lines: debug for
	// Berth's own self-probe, info for clients.
	lifeLevel slog.Level

	// Decisions made once per connection (see auth.go).
	user       string     // the name the client authenticated with
	hookRealm  *hookRealm // on_rtsp_realm's answer for a path
	hookPassed string     // path whose on_rtsp_auth check passed
	gated      string     // "action path" the Gate allowed
	params     string     // the URL query of DESCRIBE/ANNOUNCE, credentials removed

	wmu sync.Mutex // serialises responses and interleaved media on nc

	sess *session

	closeOnce sync.Once
	reason    atomic.Pointer[string]
	bytesIn   atomic.Uint64
	bytesOut  atomic.Uint64
	lastSeen  atomic.Int64 // unix nanos of the last request or packet from the client
	started   time.Time
	keepAlive time.Duration // the server's at accept: a reload changes it for new sessions only

	frame []byte // reusable buffer for one interleaved frame, grown on demand

	// parking holds a playing connection on the server's poller while it
	// waits for its next message (Server.park); resume, the poller's ready
	// function, serves the connection again on a new goroutine.
	parking fanout.Parking
	resume  func()
}

func newConn(s *Server, nc net.Conn, id uint64) *conn {
	c := &conn{
		s: s, nc: nc, remote: nc.RemoteAddr().String(), started: time.Now(), keepAlive: s.keepAlive(),
	}
	c.lead.nc = nc
	c.log = logging.WithAttrs(s.Log, slog.Uint64("conn", id), slog.String("remote", c.remote))
	if ports.IsSelfProbe(nc) {
		c.lifeLevel = slog.LevelDebug
	}
	c.sess = &session{}
	c.resume = func() { go s.handle(c, false) }
	c.touch()
	return c
}

func (c *conn) touch() { c.lastSeen.Store(time.Now().UnixNano()) }

// close ends the connection once, with a reason for the log line.
func (c *conn) close(reason string) {
	c.closeOnce.Do(func() {
		c.reason.Store(&reason)
		c.parking.Stop() // a parked connection resumes and meets the close
		c.nc.Close()
	})
}

// run logs the accept, serves requests until the connection ends, and
// cleans up the session.
func (c *conn) run() (moved bool) {
	err := c.readLoop()
	if errors.Is(err, errMoved) {
		return true
	}
	c.parking.Stop() // closed before it was watched: the watch is still registered
	c.sess.teardown(c)
	reason := "client closed the connection"
	if r := c.reason.Load(); r != nil {
		reason = *r
	} else if errors.Is(err, syscall.ECONNRESET) {
		// Normal when a player tears down and closes with media still unread.
		reason = "client reset the connection"
	} else if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		reason = err.Error()
	}
	c.close(reason)
	c.log.Log(context.Background(), c.lifeLevel, "connection closed", "reason", reason, "bytes_in", c.bytesIn.Load(), "bytes_out", c.bytesOut.Load(),
		"duration", time.Since(c.started).Round(time.Millisecond).String())
	return false
}

// errMoved ends readLoop on a goroutine whose connection goes on on a new one.
var errMoved = errors.New("rtsp: the connection goes on on a new goroutine")

// checkIdle closes a connection whose session has been silent past the
// keep-alive (RFC 2326 12.37): UDP sessions must send RTCP or requests,
// publishers must send media, and a connection without a session must not
// idle forever. A TCP player's liveness is its socket. The server's one
// watchdog goroutine calls it for every connection.
func (c *conn) checkIdle(now time.Time) {
	idle := now.Sub(time.Unix(0, c.lastSeen.Load()))
	if idle < c.keepAlive {
		return
	}
	sess := c.sess.snapshot()
	if sess.playing && !sess.udp {
		return
	}
	msg := fmt.Sprintf("session timed out: nothing received for %s ([rtsp] keepAliveSecond=%d)", idle.Round(time.Second), int(c.keepAlive/time.Second))
	if sess.recording && sess.udp && sess.packetsIn == 0 {
		msg = "no UDP packets received from the publisher; a firewall or NAT is likely; try TCP (ffmpeg: -rtsp_transport tcp)"
	}
	c.log.Warn(msg, "path", sess.path)
	c.close(msg)
}

// readLoop reads requests and interleaved frames until the connection ends.
func (c *conn) readLoop() error {
	defer c.releaseBuffer()
	for {
		if err := c.awaitInput(); err != nil {
			return err
		}
		b, err := c.br.Peek(1)
		if err != nil {
			return err
		}
		if b[0] == '$' {
			if err := c.readInterleaved(); err != nil {
				return err
			}
			continue
		}
		var req base.Request
		if err := c.readRequest(&req); err != nil { // size and time limits (limits.go)
			if errors.Is(err, errRefused) {
				return nil
			}
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) {
				return err
			}
			// The stream position is lost after a malformed request, so
			// answer 400 and close, as HTTP servers do.
			c.malformed(err)
			c.writeResponse(&base.Response{StatusCode: base.StatusBadRequest, Header: base.Header{}}, nil)
			c.close("malformed request: " + err.Error())
			return nil
		}
		// A publisher's sign of life is its media: one that sends only
		// keep-alive requests (GET_PARAMETER, OPTIONS) is a stream with
		// no pictures, or a UDP push whose packets a firewall drops, and
		// it must time out with that hint rather than hold the path.
		if c.sess.state != stateRecord {
			c.touch()
		}
		c.bytesIn.Add(uint64(requestSize(&req)))
		if c.log.Enabled(context.Background(), logging.LevelTrace) {
			c.log.Trace("request", "head", headString(req.String()))
		}
		res := c.handle(&req)
		after := res.after
		c.writeResponse(res.Response, &req)
		if after != nil {
			after()
		}
		if res.closeConn {
			c.close(res.closeReason)
			return nil
		}
		// A player waits for its next request on a new goroutine. This one
		// grew its stack handling requests (SDP, auth, logging), and a stack
		// only shrinks at a garbage collection, which a fan-out that does not
		// allocate seldom has: at 400 players that was 9.4 KB each. A new
		// goroutine starts at the runtime's average stack size.
		if c.sess.state == statePlay && c.br.Buffered() == 0 {
			return errMoved
		}
	}
}

// readBuffers holds the request buffers of connections that are waiting.
var readBuffers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// awaitInput makes c.br ready for the next request or frame. Most
// connections are players, which send a request or an RTCP report every few
// seconds: while one waits with nothing buffered it holds no buffer and
// blocks on a one-byte read, then borrows a buffer that starts with that
// byte. That is 8 KB less per idle player for one extra read syscall per
// request. A recording session keeps its buffer: its media flows
// continuously, and publish.go flushes by what the buffer holds.
func (c *conn) awaitInput() error {
	if c.br != nil && (c.br.Buffered() > 0 || c.sess.state == stateRecord) {
		return nil
	}
	c.releaseBuffer()
	if _, err := io.ReadFull(c.nc, c.lead.b[:]); err != nil {
		return err
	}
	c.lead.has = true
	c.br = readBuffers.Get().(*bufio.Reader)
	c.br.Reset(&c.lead)
	return nil
}

func (c *conn) releaseBuffer() {
	if c.br != nil {
		c.br.Reset(nil)
		readBuffers.Put(c.br)
		c.br = nil
	}
}

// leadReader reads the byte that ended a wait, then the connection.
type leadReader struct {
	nc  net.Conn
	b   [1]byte
	has bool
}

func (l *leadReader) Read(p []byte) (int, error) {
	if l.has && len(p) > 0 {
		l.has = false
		p[0] = l.b[0]
		return 1, nil
	}
	return l.nc.Read(p)
}

// readInterleaved reads one '$' frame (RFC 2326 10.12).
func (c *conn) readInterleaved() error {
	var hdr [4]byte
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint16(hdr[2:]))
	if err := c.checkInterleaved(n); err != nil { // limits.go
		return err
	}
	if cap(c.frame) < n {
		// Doubling from 64 B: a player's RTCP reports stay small, a
		// publisher's buffer reaches its largest packet in a few steps.
		c.frame = make([]byte, max(n, 2*cap(c.frame), 64))
	}
	buf := c.frame[:n]
	if _, err := io.ReadFull(c.br, buf); err != nil {
		return err
	}
	c.touch()
	c.bytesIn.Add(uint64(4 + n))
	c.sess.onInterleaved(c, int(hdr[1]), buf)
	return nil
}

type response struct {
	*base.Response
	after       func() // runs after the response is written (start of media)
	closeConn   bool
	closeReason string
}

func (c *conn) writeResponse(res *base.Response, req *base.Request) {
	if res.Header == nil {
		res.Header = base.Header{}
	}
	if req != nil {
		if cseq, ok := req.Header["CSeq"]; ok && len(cseq) == 1 {
			res.Header["CSeq"] = cseq
		}
	}
	res.Header["Server"] = base.HeaderValue{"Berth/" + c.s.Version}
	res.Header["X-Berth-Instance"] = base.HeaderValue{c.s.Instance}
	if id := c.sess.snapshot().id; id != "" && res.Header["Session"] == nil && res.StatusCode < 300 {
		res.Header["Session"] = base.HeaderValue{id + ";timeout=" + strconv.Itoa(int(c.keepAlive/time.Second))}
	}
	buf, err := res.Marshal()
	if err != nil {
		c.log.Error("cannot marshal response", "err", err)
		return
	}
	if c.log.Enabled(context.Background(), logging.LevelTrace) {
		c.log.Trace("response", "head", headString(res.String()))
	}
	c.wmu.Lock()
	c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	n, _ := c.nc.Write(buf)
	c.wmu.Unlock()
	c.bytesOut.Add(uint64(n))
}

// headString keeps the head of a request or response dump, not its body,
// with credentials cut: a Basic Authorization header is the password in
// base64, and trace logs get pasted into bug reports.
func headString(s string) string {
	if i := strings.Index(s, "\r\n\r\n"); i >= 0 {
		s = s[:i]
	}
	lines := strings.Split(s, "\r\n")
	for i, l := range lines {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Authorization") {
			scheme, _, _ := strings.Cut(strings.TrimSpace(v), " ")
			lines[i] = k + ": " + scheme + " (redacted)"
		}
	}
	return strings.Join(lines, " | ")
}

func requestSize(req *base.Request) int { return req.MarshalSize() }
