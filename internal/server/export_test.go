package server

import "time"

// SetRestartExec replaces how RestartServer executes Berth again, and its delay.
func SetRestartExec(s *Server, delay time.Duration, exec func(exe string, args, env []string) error) {
	s.live.restartExec = exec
	s.live.restartDelay = delay
}
