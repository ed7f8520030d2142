package server

import (
	"time"

	"github.com/berthmedia/berth/internal/record"
)

// newPlayback makes the playback of recordings before the hub, whose
// observer it is (a reader of record/app/stream/day/file.mp4 starts it);
// Start sets its Hub.
func (s *Server) newPlayback() *record.Playback {
	return &record.Playback{
		Log: s.Log.With("component", "playback"),
		Settings: func() record.Settings {
			if s.record != nil {
				return s.record.Settings()
			}
			return recordSettings(s.CurrentConfig())
		},
		NoReaderDelay: func() time.Duration {
			return time.Duration(s.CurrentConfig().General.StreamNoneReaderDelayMS) * time.Millisecond
		},
	}
}

// Playback returns the playback of recordings; nil before Start.
func (s *Server) Playback() *record.Playback { return s.playback }
