package server

import (
	"time"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/hls"
	"github.com/berthmedia/berth/internal/hub"
)

// newHLS builds the HLS handler (/app/stream/hls.m3u8 and
// /app/stream/hls.fmp4.m3u8): its TS segments are cut from the shared TS
// muxer HTTP-TS reads, its fMP4 form is gohlslib's LL-HLS muxer.
func (s *Server) newHLS(checker *auth.Checker) *hls.Handler {
	h := &hls.Handler{Hub: s.Hub, Log: s.Log.With("component", "hls"), Auth: checker, StreamWait: s.streamWait(),
		// A player that reloads its page, or the next viewer, finds the
		// segments still there; as for fMP4, capped.
		StopDelay: min(time.Duration(s.Config.General.StreamNoneReaderDelayMS)*time.Millisecond, 5*time.Second),
		TS:        s.tsOpener(),
	}
	h.SetSettings(hlsSettings(s.Config))
	s.OnReload([]string{"hls", "protocol.enable_hls", "protocol.enable_hls_fmp4", "protocol.hls_demand"}, func(c *config.Config) { h.SetSettings(hlsSettings(c)) })
	return h
}

func hlsSettings(c *config.Config) hls.Settings {
	return hls.Settings{Enable: c.HLS.Enable, EnableFMP4: c.HLS.EnableFMP4, SegDur: time.Duration(c.HLS.SegDur) * time.Second,
		SegNum: c.HLS.SegNum, SegRetain: c.HLS.SegRetain, PartDur: time.Duration(c.HLS.PartMS) * time.Millisecond,
		OnDemand: c.HLS.Demand}
}

// hlsPublished is the hub's publish observer for HLS ([protocol]
// hls_demand=0 keeps a stream's muxers from its publish). The handler is
// made after the hub, before any listener serves.
func (s *Server) hlsPublished(st *hub.Stream) {
	if s.hls != nil {
		s.hls.Published(st)
	}
}

// HLS returns the HLS handler (nil without an HTTP port), for tests and
// the status page.
func (s *Server) HLS() *hls.Handler { return s.hls }

// tsOpener opens the shared TS muxer HLS-TS cuts its segments from: the
// one HTTP-TS players read (newTS runs first).
func (s *Server) tsOpener() hls.TSOpener {
	if s.ts == nil {
		return nil
	}
	return s.ts.Muxers.Open
}
