package server

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/fmp4"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/mpegts"
	"github.com/berthmedia/berth/internal/muxring"
	"github.com/berthmedia/berth/internal/record"
)

// newRecorder builds the MP4 recorder before the hub (it is one of the
// hub's publish observers) and finalises what a previous run left in
// progress, before any recording starts.
func (s *Server) newRecorder() *record.Manager {
	cfg := s.Config
	m := &record.Manager{Log: s.Log.With("component", "record"), Open: s.recordCursor, OpenTS: s.recordTSCursor,
		OnFile: func(f record.File) {
			s.hooks.RecordMP4(f.App, f.Stream, f.Path, f.Name, f.Folder, f.URL, f.Size, f.Start, f.Duration)
		},
		OnSegment: func(f record.File) {
			s.hooks.RecordTS(f.App, f.Stream, f.Path, f.Name, f.Folder, f.URL, f.Size, f.Start, f.Duration)
		}}
	m.SetSettings(recordSettings(cfg))
	// enable_mp4 is read at each publish (CurrentConfig); the rest from the next file.
	s.OnReload([]string{"record", "protocol.enable_mp4", "protocol.mp4_save_path", "protocol.mp4_max_second", "hls.segDur",
		"hls.segKeep", "hls.segNum", "hls.segRetain", "hls.deleteDelaySec"},
		func(c *config.Config) { m.SetSettings(recordSettings(c)) })
	record.Recover(cfg.Record.FilePath, cfg.Record.AppName, m.Log)
	m.StartRetention() // [record] maxDays: now and every hour
	return m
}

func recordSettings(c *config.Config) record.Settings {
	return record.Settings{Root: c.Record.FilePath, AppName: c.Record.AppName, FileSecond: time.Duration(c.Record.FileSecond) * time.Second,
		MaxDays: c.Record.MaxDays, Segment: time.Duration(c.HLS.SegDur) * time.Second, FastStart: c.Record.FastStart,
		FileRepeat: c.Record.FileRepeat, Window: hlsWindow(c)}
}

// hlsWindow is [hls] segKeep=0's rolling window for HLS recordings; nil
// (segKeep=1, Berth's default) keeps every segment.
func hlsWindow(c *config.Config) *record.Window {
	if c.HLS.SegKeep {
		return nil
	}
	return &record.Window{Num: c.HLS.SegNum, Retain: c.HLS.SegRetain, DeleteDelay: time.Duration(c.HLS.DeleteSec) * time.Second}
}

// recordCursor opens the stream's shared fMP4 muxer, the one HTTP-fMP4
// players read; without an HTTP port the recorder has muxers of its own.
func (s *Server) recordCursor(st *hub.Stream) (*muxring.Cursor, error) {
	if s.fmp4 != nil {
		return s.fmp4.Muxers.Open(st)
	}
	s.recordMu.Lock()
	if s.recordMuxers == nil {
		s.recordMuxers = &fmp4.Muxers{Log: s.Log.With("component", "fmp4")}
	}
	ms := s.recordMuxers
	s.recordMu.Unlock()
	return ms.Open(st)
}

// recordTSCursor opens the stream's shared MPEG-TS muxer (HTTP-TS's and
// live HLS's) for an HLS recording; without an HTTP port, muxers of the
// recorder's own.
func (s *Server) recordTSCursor(st *hub.Stream) (*muxring.Cursor, error) {
	if s.ts != nil {
		return s.ts.Muxers.Open(st)
	}
	s.recordMu.Lock()
	if s.recordTS == nil {
		s.recordTS = &mpegts.Muxers{Log: s.Log.With("component", "mpegts")}
	}
	ms := s.recordTS
	s.recordMu.Unlock()
	return ms.Open(st)
}

// recordPublished starts a stream's MP4 recording when [protocol]
// enable_mp4 is set or on_publish answered enable_mp4 (with its
// mp4_save_path and mp4_max_second), and its HLS recording when [record]
// enable_hls is set or on_publish answered enable_hls (ZLMediaKit writes
// such a stream's HLS to disk; Berth's live HLS stays in memory).
func (s *Server) recordPublished(st *hub.Stream) {
	if s.record == nil {
		return
	}
	enable, enableHLS := s.CurrentConfig().Record.EnableMP4, s.CurrentConfig().Record.EnableHLS
	var o, ho record.Options
	if po, ok := s.hooks.PublishOptions(st); ok {
		if po.EnableMP4 != nil {
			enable = *po.EnableMP4
		}
		if po.EnableHLS != nil {
			enableHLS = *po.EnableHLS
		}
		ho.Root = po.HLSSavePath
		o.Root = po.MP4SavePath
		if po.MP4MaxSecond != nil && *po.MP4MaxSecond > 0 {
			o.FileSecond = time.Duration(*po.MP4MaxSecond) * time.Second
		}
	}
	if enableHLS {
		if err := s.record.StartHLS(st, ho); err != nil {
			s.Log.Warn("HLS recording not started", "path", st.Path, "err", err)
		}
	}
	if !enable {
		return
	}
	if err := s.record.Start(st, o); err != nil {
		s.Log.Warn("MP4 recording not started", "path", st.Path, "err", err)
	}
}

// stopRecorder closes the recordings' files; Shutdown calls it before the
// hub closes.
func (s *Server) stopRecorder(ctx context.Context) {
	if s.record != nil {
		s.record.Close(ctx)
	}
}

// Recorder returns the MP4 recorder, for tests.
func (s *Server) Recorder() *record.Manager { return s.record }

// newFiles serves [http] rootPath as static files (recordings), as
// ZLMediaKit's HTTP server does; nil when rootPath is empty.
func (s *Server) newFiles() http.Handler {
	root := s.Config.Record.RootPath
	if root == "" {
		return nil
	}
	s.filesPrefix = "/" + s.Config.Record.AppName + "/" // fixed at start, as the handler
	return &record.Files{Root: root, DirMenu: s.Config.Record.DirMenu, Log: s.Log.With("component", "http-files")}
}

// filesFirst reports whether a path belongs to the static files before the
// live handlers: recordings under /<appName>/ (a recording's .mp4 would
// otherwise look like an HLS fMP4 segment).
func (s *Server) filesFirst(urlPath string) bool {
	if strings.Contains(urlPath, ".mp4/") || strings.HasSuffix(urlPath, ".flv") {
		return false // a recording played back: /record/.../12-00-00.mp4/hls.m3u8, .mp4.live.flv (playback.go)
	}
	return s.files != nil && strings.HasPrefix(urlPath, s.filesPrefix)
}
