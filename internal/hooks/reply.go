package hooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Errors a hook call can end with. A *RefusedError is a decision; the others
// mean the hook server could not be asked (ZLMediaKit refuses then too).
var (
	ErrBadStatus = errors.New("hook server answered a status other than 200")
	ErrBadReply  = errors.New("hook reply is not a JSON object with an integer code")
)

// RefusedError is a hook reply with a code other than 0: the hook server's
// "no", with its msg.
type RefusedError struct {
	Hook string
	Code int64
	Msg  string
}

func (e *RefusedError) Error() string {
	if e.Msg == "" {
		return fmt.Sprintf("%s replied code %d", e.Hook, e.Code)
	}
	return fmt.Sprintf("%s replied code %d: %s", e.Hook, e.Code, e.Msg)
}

// Reply is a hook server's JSON reply, code 0. Its fields are read loosely,
// as ZLMediaKit does: a switch may come as true, 1 or "1".
type Reply map[string]json.RawMessage

// ParseReply reads a hook reply as ZLMediaKit does: status 200, a JSON
// object, an integer "code"; code 0 is a Reply, another code a
// *RefusedError carrying "msg". retry says whether another attempt could
// give another answer (not for a decision the server made).
func ParseReply(hook string, status int, body []byte) (r Reply, retry bool, err error) {
	if status != 200 {
		return nil, true, fmt.Errorf("%w: %d", ErrBadStatus, status)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil || r == nil {
		if err == nil {
			err = errors.New("null")
		}
		return nil, true, fmt.Errorf("%w: %v", ErrBadReply, err)
	}
	code, ok := r.integer("code")
	if !ok {
		return nil, true, fmt.Errorf("%w: code is %s", ErrBadReply, printable(r["code"]))
	}
	if code != 0 {
		return nil, false, &RefusedError{Hook: hook, Code: code, Msg: r.String("msg")}
	}
	return r, false, nil
}

func printable(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "missing"
	}
	s := string(raw)
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return s
}

// integer reads an integral JSON number (ZLMediaKit: isInt64).
func (r Reply) integer(key string) (int64, bool) {
	raw, ok := r[key]
	if !ok || len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return 0, false // a string is no number here (json.Number would take "0")
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return 0, false
	}
	if i, err := n.Int64(); err == nil {
		return i, true
	}
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<62 {
		return 0, false
	}
	return int64(f), true
}

// Has reports whether the reply has key.
func (r Reply) Has(key string) bool { _, ok := r[key]; return ok }

// String reads key as text: a string as is, a number or bool as written.
func (r Reply) String(key string) string {
	raw, ok := r[key]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	t := strings.TrimSpace(string(raw))
	if t == "null" || strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
		return ""
	}
	return t
}

// Bool reads a switch: true/false, a number (non-zero is true) or a string
// "1", "true", "yes", "on" (any case). ok is false when key is absent or
// not a switch.
func (r Reply) Bool(key string) (v, ok bool) {
	raw, has := r[key]
	if !has || string(raw) == "null" {
		return false, false
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b, true
	}
	s := r.String(key)
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "yes", "on":
		return true, true
	case "0", "false", "no", "off":
		return false, true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f != 0, true
	}
	return false, false
}

// Int reads a number written as a number or a string.
func (r Reply) Int(key string) (int64, bool) {
	if n, ok := r.integer(key); ok {
		return n, true
	}
	n, err := strconv.ParseInt(strings.TrimSpace(r.String(key)), 10, 64)
	return n, err == nil
}

// PublishOptions are the switches on_publish may answer with (ZLMediaKit's
// ProtocolOption). A nil field was not in the reply: the server's default
// applies. Berth keeps them on the stream (Client.PublishOptions) for the
// features that read them (HLS, MP4 recording, ...).
type PublishOptions struct {
	EnableHLS, EnableHLSFMP4, EnableMP4, EnableRTSP, EnableRTMP, EnableTS, EnableFMP4 *bool
	HLSDemand, RTSPDemand, RTMPDemand, TSDemand, FMP4Demand                           *bool
	EnableAudio, AddMuteAudio, MP4AsPlayer, AutoClose, ModifyStamp                    *bool
	MP4MaxSecond, ContinuePushMS, PacedSenderMS                                       *int64
	MP4SavePath, HLSSavePath                                                          string
	StreamReplace                                                                     string
}

// ParsePublishOptions reads on_publish's switches from a reply. ZLMediaKit
// also takes enableHls and enableMP4 (its older names).
func ParsePublishOptions(r Reply) PublishOptions {
	var o PublishOptions
	b := func(keys ...string) *bool {
		for _, k := range keys {
			if v, ok := r.Bool(k); ok {
				return &v
			}
		}
		return nil
	}
	n := func(k string) *int64 {
		if v, ok := r.Int(k); ok {
			return &v
		}
		return nil
	}
	o.EnableHLS = b("enable_hls", "enableHls")
	o.EnableHLSFMP4 = b("enable_hls_fmp4")
	o.EnableMP4 = b("enable_mp4", "enableMP4")
	o.EnableRTSP = b("enable_rtsp")
	o.EnableRTMP = b("enable_rtmp")
	o.EnableTS = b("enable_ts")
	o.EnableFMP4 = b("enable_fmp4")
	o.HLSDemand = b("hls_demand")
	o.RTSPDemand = b("rtsp_demand")
	o.RTMPDemand = b("rtmp_demand")
	o.TSDemand = b("ts_demand")
	o.FMP4Demand = b("fmp4_demand")
	o.EnableAudio = b("enable_audio")
	o.AddMuteAudio = b("add_mute_audio")
	o.MP4AsPlayer = b("mp4_as_player")
	o.AutoClose = b("auto_close")
	o.ModifyStamp = b("modify_stamp")
	o.MP4MaxSecond = n("mp4_max_second")
	o.ContinuePushMS = n("continue_push_ms")
	o.PacedSenderMS = n("paced_sender_ms")
	o.MP4SavePath = r.String("mp4_save_path")
	o.HLSSavePath = r.String("hls_save_path")
	o.StreamReplace = r.String("stream_replace")
	return o
}
