package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/berthmedia/berth/internal/record"
)

// ZLMediaKit's recording calls (internal/record, docs/record.md). type is
// 0 for HLS, 1 for MP4.

func (h *Handler) recorder() (*record.Manager, error) {
	if h.Record == nil {
		return nil, fail(CodeOtherFailed, "recording is not available in this server")
	}
	return h.Record, nil
}

// recordType reads type: true for HLS (0), false for MP4 (1).
func recordType(p params) (hls bool, err error) {
	typ, err := p.int("type", -1)
	if err != nil {
		return false, fail(CodeInvalidArgs, "%v", err)
	}
	switch typ {
	case 0, 1:
		return typ == 0, nil
	}
	return false, fail(CodeInvalidArgs, "type=%q is not a recording type (0 HLS, 1 MP4)", p["type"])
}

// recordCall reads what startRecord, stopRecord and isRecording all take:
// the stream's vhost/app/stream and type, and the recorder.
func (h *Handler) recordCall(p params) (rec *record.Manager, hls bool, err error) {
	if err := p.require("type", "vhost", "app", "stream"); err != nil {
		return nil, false, err
	}
	if hls, err = recordType(p); err != nil {
		return nil, false, err
	}
	rec, err = h.recorder()
	return rec, hls, err
}

// startRecord records a live stream to MP4 files; customized_path replaces
// [record] filePath, max_second the file length ([record] fileSecond).
func (h *Handler) startRecord(_ *http.Request, p params) (map[string]any, error) {
	rec, hls, err := h.recordCall(p)
	if err != nil {
		return nil, err
	}
	maxSecond, err := p.int("max_second", 0)
	if err != nil || maxSecond < 0 {
		return nil, fail(CodeInvalidArgs, "max_second=%q is not a number of seconds (0 takes [record] fileSecond)", p["max_second"])
	}
	if _, err := rec.StreamDir(p["app"], p["stream"], p["customized_path"]); err != nil {
		return nil, fail(CodeInvalidArgs, "%v", err)
	}
	var s = h.Hub.Get(p["app"] + "/" + p["stream"])
	if s == nil {
		return nil, fail(CodeNotFound, "can not find the stream %s/%s: it is not live; publish it, then start recording (or set [protocol] enable_mp4=1 to record every stream)", p["app"], p["stream"])
	}
	o := record.Options{Root: p["customized_path"], FileSecond: time.Duration(maxSecond) * time.Second}
	if hls {
		err = rec.StartHLS(s, record.Options{Root: o.Root})
	} else {
		err = rec.Start(s, o)
	}
	if err != nil && !errors.Is(err, record.ErrRecording) {
		return map[string]any{"code": CodeOtherFailed, "result": false, "msg": err.Error()}, nil
	}
	return map[string]any{"result": true}, nil
}

// stopRecord ends a recording: its file is closed, renamed and reported
// (on_record_mp4).
func (h *Handler) stopRecord(_ *http.Request, p params) (map[string]any, error) {
	rec, hls, err := h.recordCall(p)
	if err != nil {
		return nil, err
	}
	stop := rec.Stop
	if hls {
		stop = rec.StopHLS
	}
	if !stop(p["app"] + "/" + p["stream"]) {
		return map[string]any{"code": CodeOtherFailed, "result": false, "msg": "stop record failed: the stream is not being recorded"}, nil
	}
	return map[string]any{"result": true, "msg": "success"}, nil
}

func (h *Handler) isRecording(_ *http.Request, p params) (map[string]any, error) {
	rec, hls, err := h.recordCall(p)
	if err != nil {
		return nil, err
	}
	is := rec.Recording
	if hls {
		is = rec.RecordingHLS
	}
	return map[string]any{"status": is(p["app"] + "/" + p["stream"])}, nil
}

// getMp4RecordFile lists a month's days (period YYYY-MM) or a day's files
// (YYYY-MM-DD) of a stream's recordings, as ZLMediaKit: data.paths and the
// directory listed, data.rootPath.
func (h *Handler) getMp4RecordFile(_ *http.Request, p params) (map[string]any, error) {
	if err := p.require("vhost", "app", "stream", "period"); err != nil {
		return nil, err
	}
	rec, err := h.recorder()
	if err != nil {
		return nil, err
	}
	dir, paths, err := rec.List(p["app"], p["stream"], p["period"], p["customized_path"])
	if errors.Is(err, record.ErrBadArgument) {
		return nil, fail(CodeInvalidArgs, "%v", err)
	}
	if err != nil {
		return nil, fail(CodeOtherFailed, "%v", err)
	}
	return map[string]any{"data": map[string]any{"rootPath": dir, "paths": paths}}, nil
}

// deleteRecordDirectory removes a day of a stream's recordings (period
// YYYY-MM-DD), or one file of it (name); a file being written stays.
func (h *Handler) deleteRecordDirectory(_ *http.Request, p params) (map[string]any, error) {
	if err := p.require("vhost", "app", "stream", "period"); err != nil {
		return nil, err
	}
	rec, err := h.recorder()
	if err != nil {
		return nil, err
	}
	path, err := rec.Delete(p["app"], p["stream"], p["period"], p["name"], p["customized_path"])
	if errors.Is(err, record.ErrBadArgument) {
		return nil, fail(CodeInvalidArgs, "%v", err)
	}
	if err != nil {
		return map[string]any{"code": CodeOtherFailed, "path": path, "msg": err.Error()}, nil
	}
	return map[string]any{"path": path}, nil
}

// seekRecordStamp moves the playback of a recording (app=record,
// stream=live/cam/2026-12-04/12-00-00.mp4, as ZLMediaKit names it) to the
// keyframe at or before stamp (ms from the file's start).
func (h *Handler) seekRecordStamp(_ *http.Request, p params) (map[string]any, error) {
	if err := p.require("vhost", "app", "stream", "stamp"); err != nil {
		return nil, err
	}
	stamp, err := p.int("stamp", -1)
	if err != nil || stamp < 0 {
		return nil, fail(CodeInvalidArgs, "stamp=%q is not a time in milliseconds from the file's start", p["stamp"])
	}
	if h.Playback == nil {
		return nil, fail(CodeOtherFailed, "playback of recordings is not available in this server")
	}
	at, err := h.Playback.Seek(p["app"]+"/"+p["stream"], time.Duration(stamp)*time.Millisecond)
	if err != nil {
		return nil, playbackFail(err)
	}
	return map[string]any{"result": true, "stamp": at.Milliseconds()}, nil
}

// setRecordSpeed sets the pace of the playback of a recording: speed 2
// plays it in half the time (0.1 to 20).
func (h *Handler) setRecordSpeed(_ *http.Request, p params) (map[string]any, error) {
	if err := p.require("vhost", "app", "stream", "speed"); err != nil {
		return nil, err
	}
	speed, err := strconv.ParseFloat(p["speed"], 64)
	if err != nil {
		return nil, fail(CodeInvalidArgs, "speed=%q is not a number (1 is the recording's pace)", p["speed"])
	}
	if h.Playback == nil {
		return nil, fail(CodeOtherFailed, "playback of recordings is not available in this server")
	}
	if err := h.Playback.SetSpeed(p["app"]+"/"+p["stream"], speed); err != nil {
		return nil, playbackFail(err)
	}
	return map[string]any{"result": true}, nil
}

func playbackFail(err error) error {
	switch {
	case errors.Is(err, record.ErrBadSpeed):
		return fail(CodeInvalidArgs, "%v", err)
	case errors.Is(err, record.ErrNotPlayback):
		return fail(CodeNotFound, "%v: play app=record stream=<app>/<stream>/<YYYY-MM-DD>/<HH-MM-SS>.mp4 first", err)
	}
	return fail(CodeOtherFailed, "%v", err)
}
