package server

import "github.com/berthmedia/berth/internal/pusher"

// newPushers makes the push-out registry (addStreamPusherProxy): pushers
// are readers of the hub that publish to other servers.
func (s *Server) newPushers() *pusher.Manager {
	return &pusher.Manager{Hub: s.Hub, Log: s.Log.With("component", "pusher")}
}

// Pushers returns the push-out registry, for the status page and tests.
func (s *Server) Pushers() *pusher.Manager { return s.pushers }
