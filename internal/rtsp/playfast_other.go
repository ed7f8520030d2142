//go:build !linux

package rtsp

// Elsewhere every player runs loop in a goroutine of its own (see
// playfast_linux.go for the event-driven one).
type fastState struct{}

type senders struct{}

func (p *player) startFast() bool { return false }

func (s *senders) close() {}
