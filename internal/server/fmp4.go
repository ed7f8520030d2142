package server

import (
	"time"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/fmp4"
	"github.com/berthmedia/berth/internal/httpstream"
)

// newFMP4 builds the HTTP-fMP4 / WS-fMP4 handler (/app/stream.live.mp4)
// and the shared muxers it reads; HLS-fMP4 and recording will read the
// same Muxers.
func (s *Server) newFMP4(checker *auth.Checker) *fmp4.Handler {
	ms := &fmp4.Muxers{
		Log: s.Log.With("component", "fmp4"),
		// A page's HEAD (for the codecs) then GET, or a player that
		// reconnects, finds its muxer still running for a moment; ZLMediaKit
		// keeps muxers streamNoneReaderDelayMS (20 s) after the last reader,
		// which here would hold a stream's fragments for no one: cap it.
		StopDelay: min(time.Duration(s.Config.General.StreamNoneReaderDelayMS)*time.Millisecond, 5*time.Second),
	}
	return &fmp4.Handler{Hub: s.Hub, Muxers: ms, Log: s.Log, Auth: checker, StreamWait: s.streamWait(), Players: httpstream.PlayersRef{Shared: &s.players}}
}

// FMP4Muxers returns the shared fMP4 muxers (nil without an HTTP port), for
// the status page and tests that count them.
func (s *Server) FMP4Muxers() *fmp4.Muxers {
	if s.fmp4 == nil {
		return nil
	}
	return s.fmp4.Muxers
}
