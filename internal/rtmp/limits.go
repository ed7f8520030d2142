package rtmp

import (
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
func (s *Server) warner() *limits.Warner {
	s.warnOnce.Do(func() {
		if s.Warn == nil {
			s.Warn = &limits.Warner{Log: s.log()}
		}
	})
	return s.Warn
}

// logLimit logs err, the end of c, when a limit ended it: with the key to
// raise, at most once per cause every few seconds however many peers break
// it. It reports whether err was such an end.
func (c *conn) logLimit(err error) bool {
	ip := c.remote
	if i := strings.LastIndexByte(ip, ':'); i > 0 {
		ip = strings.Trim(ip[:i], "[]")
	}
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
