package server

import (
	"sync"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/muxring"
	"github.com/berthmedia/berth/internal/pusher"
	"github.com/berthmedia/berth/internal/srt"
	"github.com/berthmedia/berth/internal/web"
)

// newPushers makes the push-out registry (addStreamPusherProxy): pushers
// are readers of the hub that publish to other servers.
func (s *Server) newPushers() *pusher.Manager {
	// SRT pushers send the shared TS muxer SRT players read (srt.go); it is
	// looked up at the first SRT push, once the HTTP-TS muxers exist.
	var once sync.Once
	var open srt.TSOpener
	ts := func(st *hub.Stream) (*muxring.Cursor, error) {
		once.Do(func() { open = s.tsOpenerSRT() })
		return open(st)
	}
	return &pusher.Manager{Hub: s.Hub, Log: s.Log.With("component", "pusher"), TS: ts}
}

// Pushers returns the push-out registry, for the status page and tests.
func (s *Server) Pushers() *pusher.Manager { return s.pushers }

// pusherRows are the pushers as the status page lists them.
func (s *Server) pusherRows() []web.Pusher {
	rows := []web.Pusher{}
	if s.pushers == nil {
		return rows
	}
	for _, in := range s.pushers.List() {
		rows = append(rows, web.Pusher{Key: in.Key, Path: in.Spec.Path(), URL: pusher.Redact(in.Spec.DstURL),
			Status: in.Status(), Bytes: in.Bytes})
	}
	return rows
}
