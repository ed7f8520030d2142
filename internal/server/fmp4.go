package server

import (
	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/fmp4"
)

// newFMP4 builds the HTTP-fMP4 / WS-fMP4 handler (/app/stream.live.mp4)
// and the shared muxers it reads; HLS-fMP4 and recording will read the
// same Muxers.
func (s *Server) newFMP4(checker *auth.Checker) *fmp4.Handler {
	ms := &fmp4.Muxers{
		Log: s.Log.With("component", "fmp4"),
		// TODO(reload): StopDelay from [general] streamNoneReaderDelayMS once
		// the config catalogue has it; 0 stops a muxer with its last reader.
	}
	return &fmp4.Handler{Hub: s.Hub, Muxers: ms, Log: s.Log, Auth: checker}
}

// FMP4Muxers returns the shared fMP4 muxers (nil without an HTTP port), for
// the status page and tests that count them.
func (s *Server) FMP4Muxers() *fmp4.Muxers {
	if s.fmp4 == nil {
		return nil
	}
	return s.fmp4.Muxers
}
