package rtpproxy

import "time"

// SetTimeout changes how long a silent stream lives ([rtp_proxy]
// timeoutSec) while the server runs: the janitor reads it on every round,
// so it applies to every stream, running ones included. A hot reload calls
// it; TimeoutSec stays the start-up value.
func (s *Server) SetTimeout(d time.Duration) { s.liveTimeout.Store(int64(d)) }
