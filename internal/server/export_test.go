package server

import "time"

// SetRestartExec replaces how RestartServer executes Berth again, and its delay.
func SetRestartExec(s *Server, delay time.Duration, exec func(exe string, args, env []string) error) {
	s.live.restartExec = exec
	s.live.restartDelay = delay
}

// UDPAddr is Addr of a listener's UDP socket: with Ephemeral ports the UDP
// side of rtp_proxy has a port of its own.
func (s *Server) UDPAddr(name string) string {
	s.live.mu.RLock()
	defer s.live.mu.RUnlock()
	if pc := s.bound.UDP[name]; pc != nil {
		return pc.LocalAddr().String()
	}
	return ""
}
