package rtsp

import (
	"sync/atomic"
	"time"
)

// liveSettings are the settings a hot reload changes while sessions run.
// They are atomics because connection goroutines read them; the exported
// fields stay the start-up values, so a Server literal works as before.
type liveSettings struct {
	keepAlive atomic.Int64 // nanoseconds; 0 = the KeepAlive field
	authBasic atomic.Int32 // 0 = the AuthBasic field, 1 = off, 2 = on
}

// SetKeepAlive changes the session timeout ([rtsp] keepAliveSecond) for
// sessions accepted from now on; running ones keep the timeout they
// announced in their Session header.
func (s *Server) SetKeepAlive(d time.Duration) { s.live.keepAlive.Store(int64(d)) }

// SetAuthBasic changes whether Basic is offered besides Digest ([rtsp]
// authBasic), from the next challenge on.
func (s *Server) SetAuthBasic(on bool) {
	v := int32(1)
	if on {
		v = 2
	}
	s.live.authBasic.Store(v)
}

func (s *Server) keepAlive() time.Duration {
	if d := s.live.keepAlive.Load(); d > 0 {
		return time.Duration(d)
	}
	return s.KeepAlive
}

func (s *Server) authBasic() bool {
	switch s.live.authBasic.Load() {
	case 1:
		return false
	case 2:
		return true
	}
	return s.AuthBasic
}

// watchdogPeriod checks a third of the keep-alive apart, so a silent
// session ends at most a third late.
func watchdogPeriod(keepAlive time.Duration) time.Duration {
	return max(keepAlive/3, 100*time.Millisecond)
}
