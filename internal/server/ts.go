package server

import (
	"time"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/httpstream"
	"github.com/berthmedia/berth/internal/mpegts"
)

// newTS builds the HTTP-TS / WS-TS handler (/app/stream.live.ts) and the
// shared MPEG-TS muxers it reads; HLS-TS, SRT and TS recording will read
// the same Muxers.
func (s *Server) newTS(checker *auth.Checker) *mpegts.Handler {
	ms := &mpegts.Muxers{
		Log: s.Log.With("component", "mpegts"),
		// As for fMP4: a player that reconnects finds its muxer running for
		// a moment, without holding a stream's chunks for no one for
		// ZLMediaKit's 20 s.
		StopDelay: min(time.Duration(s.Config.General.StreamNoneReaderDelayMS)*time.Millisecond, 5*time.Second),
	}
	return &mpegts.Handler{Hub: s.Hub, Muxers: ms, Log: s.Log, Auth: checker, StreamWait: s.streamWait(), Players: httpstream.PlayersRef{Shared: &s.players}}
}

// TSMuxers returns the shared MPEG-TS muxers (nil without an HTTP port),
// for the status page, HLS-TS and tests that count them.
func (s *Server) TSMuxers() *mpegts.Muxers {
	if s.ts == nil {
		return nil
	}
	return s.ts.Muxers
}
