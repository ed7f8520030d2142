package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/berthmedia/berth/internal/pusher"
)

// Pushers is the push-out registry behind addStreamPusherProxy and its
// siblings (internal/pusher's Manager).
type Pushers interface {
	Add(spec pusher.Spec) (key string, err error)
	Del(key string) bool
	List() []pusher.Info
}

func (h *Handler) pushers() (Pushers, error) {
	if h.Pushers == nil {
		return nil, fail(CodeOtherFailed, "push-out is not available in this server")
	}
	return h.Pushers, nil
}

// addStreamPusherProxy pushes app/stream to dst_url over schema (rtsp, srt or
// rtmp), as ZLMediaKit's: retry_count (-1, the default, retries forever),
// rtp_type (RTSP: 0 TCP, 1 UDP), timeout_sec (default 10). Reply
// {"code":0,"data":{"key":...}}; the same request again returns the same
// key. The stream need not be live yet: the pusher waits for it.
func (h *Handler) addStreamPusherProxy(_ *http.Request, p params) (map[string]any, error) {
	ps, err := h.pushers()
	if err != nil {
		return nil, err
	}
	if err := p.require("schema", "vhost", "app", "stream", "dst_url"); err != nil {
		return nil, err
	}
	retries, err := p.int("retry_count", -1)
	if err != nil {
		return nil, fail(CodeInvalidArgs, "%v", err)
	}
	rtpType, err := p.int("rtp_type", 0)
	if err != nil {
		return nil, fail(CodeInvalidArgs, "%v", err)
	}
	timeout := 10 * time.Second
	if v := p["timeout_sec"]; v != "" {
		sec, err := strconv.ParseFloat(v, 64)
		if err != nil || sec < 0 || sec > 3600 {
			return nil, fail(CodeInvalidArgs, "parameter timeout_sec=%q is not a number of seconds from 0 to 3600", v)
		}
		if sec > 0 {
			timeout = time.Duration(sec * float64(time.Second))
		}
	}
	spec := pusher.Spec{Schema: p["schema"], Vhost: p["vhost"], App: p["app"], Stream: p["stream"], DstURL: p["dst_url"],
		Retries: retries, RTPType: rtpType, Timeout: timeout}
	key, err := ps.Add(spec)
	if err != nil {
		if errors.Is(err, pusher.ErrBadSpec) {
			return nil, fail(CodeInvalidArgs, "%v", err)
		}
		return nil, fail(CodeOtherFailed, "%v", err)
	}
	return map[string]any{"data": map[string]any{"key": key}}, nil
}

// delStreamPusherProxy stops the pusher of key: {"code":0,"data":{"flag":true}},
// flag false when there was none.
func (h *Handler) delStreamPusherProxy(_ *http.Request, p params) (map[string]any, error) {
	ps, err := h.pushers()
	if err != nil {
		return nil, err
	}
	if err := p.require("key"); err != nil {
		return nil, err
	}
	return map[string]any{"data": map[string]any{"flag": ps.Del(p["key"])}}, nil
}

// listStreamPusherProxy lists the pushers (pusherItem).
func (h *Handler) listStreamPusherProxy(_ *http.Request, _ params) (map[string]any, error) {
	ps, err := h.pushers()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	data := []map[string]any{}
	for _, in := range ps.List() {
		data = append(data, pusherItem(in, now))
	}
	return map[string]any{"data": data}, nil
}

// getProxyPusherInfo is one pusher by key, as listStreamPusherProxy lists
// it: {"code":0,"data":{...}}; -500 "can not find pusher" for an unknown key.
func (h *Handler) getProxyPusherInfo(_ *http.Request, p params) (map[string]any, error) {
	ps, err := h.pushers()
	if err != nil {
		return nil, err
	}
	if err := p.require("key"); err != nil {
		return nil, err
	}
	for _, in := range ps.List() {
		if in.Key == p["key"] {
			return map[string]any{"data": pusherItem(in, time.Now())}, nil
		}
	}
	return nil, fail(CodeNotFound, "can not find pusher %s (listStreamPusherProxy lists the keys)", p["key"])
}

// pusherItem is a pusher in ZLMediaKit's shape (its ToJson of a
// PusherProxy: url, status, liveSecs, rePublishCount, bytesSpeed,
// totalBytes, src) plus the key and Berth's words for the state:
// status_str is "live", "connecting", "waiting for the stream",
// "retrying N: cause" or "stopped: cause".
func pusherItem(in pusher.Info, now time.Time) map[string]any {
	live, speed := int64(0), uint64(0)
	if !in.LiveSince.IsZero() {
		d := now.Sub(in.LiveSince)
		live = int64(d.Seconds())
		if d >= time.Second {
			speed = uint64(float64(in.SessionBytes) / d.Seconds()) // the session's mean: no sampler runs per pusher
		}
	}
	vhost := in.Spec.Vhost
	if vhost == "" {
		vhost = DefaultVhost
	}
	status := 0 // ZLMediaKit: 0 while pushing, else the last error's code; Berth says -1 (Err_other) and why in status_str
	if in.State != pusher.StateLive {
		status = -1
	}
	return map[string]any{
		"key": in.Key, "url": pusher.Redact(in.Spec.DstURL), "status": status, "status_str": in.Status(),
		"liveSecs": live, "rePublishCount": in.Republish, "bytesSpeed": speed, "totalBytes": in.Bytes,
		"src":    map[string]any{"vhost": vhost, "app": in.Spec.App, "stream": in.Spec.Stream, "params": ""},
		"schema": in.Spec.Schema, "retry_count": in.Spec.Retries, "rtp_type": in.Spec.RTPType,
		"timeout_sec": in.Spec.Timeout.Seconds(), "state": in.State.String(), "cause": in.Cause,
		"retries": in.Attempt, "createStamp": in.Created.Unix(),
	}
}
