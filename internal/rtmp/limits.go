package rtmp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/berthmedia/berth/internal/limits"
)

// Limits against abuse (docs/reliability.md#limits-against-abuse).
const defaultHandshakeTimeout = 15 * time.Second // ZLMediaKit's [rtmp] handshakeSecond

func (s *Server) handshakeTimeout() time.Duration {
	if s.HandshakeTimeout > 0 {
		return s.HandshakeTimeout
	}
	return defaultHandshakeTimeout
}

func (s *Server) maxMessage() uint32 {
	if s.MaxMessageBytes > 0 {
		return uint32(min(s.MaxMessageBytes, MaxChunkSize))
	}
	return DefaultMaxMessage
}

// errHandshake wraps the error of a handshake that failed, so a time-out
// there is told from one later in the connection (logLimit).
var errHandshake = errors.New("handshake failed")

// warner is the rate-limited logger of the refusals: Warn, which Berth
// shares between every protocol, or else one of the server's own.
func (s *Server) warner() *limits.Warner { return s.ownWarn.Get(s.Warn, s.log()) }

// logLimit logs err, the end of c, when a limit ended it: with the key to
// raise, at most once per cause every few seconds however many peers break
// it. It reports whether err was such an end.
func (c *conn) logLimit(err error) bool {
	ip := c.ip()
	attrs := []any{"remote", c.remote, "err", err.Error(), "bytes_in", c.bytesIn.Load()}
	switch {
	case errors.Is(err, ErrMessageTooLarge), errors.Is(err, ErrTooMuchPartial):
		c.s.warner().Warn("rtmp.max_message_bytes", "", fmt.Sprintf("RTMP peer %s sent or announced more than [rtmp] max_message_bytes=%d allows; connection closed. Raise [rtmp] max_message_bytes if a real encoder sends frames that large",
			ip, c.s.maxMessage()), attrs...)
	case errors.Is(err, os.ErrDeadlineExceeded) && errors.Is(err, errHandshake):
		c.s.warner().Warn("rtmp.handshakeSecond", "", fmt.Sprintf("RTMP peer %s did not finish the handshake within [rtmp] handshakeSecond=%d; connection closed. Raise [rtmp] handshakeSecond if real clients are that slow",
			ip, int(c.s.handshakeTimeout()/time.Second)), attrs...)
	default:
		return false
	}
	return true
}

// closedByError logs the error that ended c. A connection that published or
// played gets its warning at once. One that never did (a client that is
// not RTMP, a scan, a fuzzer) logs its closed line at the connection's level
// and warns through the Warner: one warning per 10 s however many peers
// send garbage, where each used to warn on its own.
func (c *conn) closedByError(err error) {
	if c.pub != nil || c.play != nil {
		c.log.Warn("rtmp connection closed: "+err.Error(), "bytes_in", c.bytesIn.Load(), "bytes_out", c.bytesOut.Load())
		return
	}
	c.log.Log(context.Background(), c.lifeLevel, "rtmp connection closed", "err", err.Error(), "bytes_in", c.bytesIn.Load(), "bytes_out", c.bytesOut.Load())
	ip := c.ip()
	c.s.warner().Hold("rtmp error", "RTMP connection from "+ip+" ended before it published or played: "+err.Error(),
		"listener", "rtmp", "remote", c.remote)
}

// ip is the peer's address without its port.
func (c *conn) ip() string {
	if i := strings.LastIndexByte(c.remote, ':'); i > 0 {
		return strings.Trim(c.remote[:i], "[]")
	}
	return c.remote
}
