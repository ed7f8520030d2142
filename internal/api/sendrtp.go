package api

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/berthmedia/berth/internal/ports"
	"github.com/berthmedia/berth/internal/rtpsend"
)

func (h *Handler) sender() (*rtpsend.Manager, error) {
	if h.SendRTP == nil {
		return nil, fail(CodeOtherFailed, "RTP sending is not available in this server")
	}
	return h.SendRTP, nil
}

// sendOptions reads what startSendRtp and startSendRtpPassive share:
// vhost (any names the one there is), app, stream, ssrc, src_port, pt,
// the payload (type: 0 raw ES, 1 PS, 2 TS; use_ps, the older name, wins
// when given: 1 PS, 0 raw ES; PS when neither is), only_audio and
// close_delay_ms (how long a passive sender waits for its peer).
func sendOptions(p params) (rtpsend.Options, error) {
	var o rtpsend.Options
	o.Path = p["app"] + "/" + p["stream"]
	n, err := strconv.ParseUint(p["ssrc"], 10, 32)
	if err != nil {
		return o, fail(CodeInvalidArgs, "ssrc=%q is not a 32-bit decimal number (GB28181 SSRCs are 10 digits, as 0100000001)", p["ssrc"])
	}
	o.SSRC = uint32(n)
	if o.SrcPort, err = p.int("src_port", 0); err != nil {
		return o, fail(CodeInvalidArgs, "%v", err)
	}
	if o.SrcPort < 0 || o.SrcPort > 65535 {
		return o, fail(CodeInvalidArgs, "src_port=%d is out of range (0-65535; 0 picks a free port)", o.SrcPort)
	}
	pt, err := p.int("pt", 96)
	if err != nil {
		return o, fail(CodeInvalidArgs, "%v", err)
	}
	if pt < 0 || pt > 127 {
		return o, fail(CodeInvalidArgs, "pt=%d is not an RTP payload type (0-127; GB28181 uses 96 for PS)", pt)
	}
	o.PT = uint8(pt)
	typ, err := p.int("type", 1)
	if err != nil {
		return o, fail(CodeInvalidArgs, "%v", err)
	}
	if v := p["use_ps"]; v != "" {
		typ = 0
		if p.bool("use_ps") {
			typ = 1
		}
	}
	switch typ {
	case 0:
		o.ES = true
	case 1:
	case 2:
		return o, fail(CodeInvalidArgs, "type=2 (MPEG-TS over RTP) is not supported yet; use type=1 (PS) or type=0 (raw ES)")
	default:
		return o, fail(CodeInvalidArgs, "type=%d is not a payload: 0 raw ES, 1 PS", typ)
	}
	o.OnlyAudio = p.bool("only_audio")
	ms, err := p.int("close_delay_ms", 0)
	if err != nil {
		return o, fail(CodeInvalidArgs, "%v", err)
	}
	o.Wait = time.Duration(ms) * time.Millisecond
	return o, nil
}

// startSendRtp sends a stream as RTP to dst_url:dst_port: over UDP
// (is_udp=1) or TCP with RFC 4571 framing, Berth connecting. Reply
// {"code":0,"local_port":N}, the port it sends from.
func (h *Handler) startSendRtp(r *http.Request, p params) (map[string]any, error) {
	m, err := h.sender()
	if err != nil {
		return nil, err
	}
	if err := p.require("app", "stream", "ssrc", "dst_url", "dst_port", "is_udp"); err != nil {
		return nil, err
	}
	o, err := sendOptions(p)
	if err != nil {
		return nil, err
	}
	o.Host = p["dst_url"]
	if o.Port, err = p.int("dst_port", 0); err != nil || o.Port <= 0 || o.Port > 65535 {
		return nil, fail(CodeInvalidArgs, "dst_port=%q is not a port (1-65535)", p["dst_port"])
	}
	o.UDP = p.bool("is_udp")
	return h.startSend(r, m, o)
}

// startSendRtpPassive listens on src_port (0: a free port from
// [rtp_proxy] port_range) and sends the stream over TCP (RFC 4571) to the
// peer that connects within close_delay_ms. Reply {"code":0,"local_port":N}.
func (h *Handler) startSendRtpPassive(r *http.Request, p params) (map[string]any, error) {
	m, err := h.sender()
	if err != nil {
		return nil, err
	}
	if err := p.require("app", "stream", "ssrc"); err != nil {
		return nil, err
	}
	o, err := sendOptions(p)
	if err != nil {
		return nil, err
	}
	o.Passive = true
	return h.startSend(r, m, o)
}

func (h *Handler) startSend(r *http.Request, m *rtpsend.Manager, o rtpsend.Options) (map[string]any, error) {
	if h.Hub != nil && h.Hub.Get(o.Path) == nil {
		return nil, fail(CodeNotFound, "can not find the source stream %s", o.Path)
	}
	port, err := m.Start(r.Context(), o)
	if err != nil {
		var f *ports.Finding
		var dns *net.DNSError
		switch {
		case errors.Is(err, rtpsend.ErrNotFound):
			return nil, fail(CodeNotFound, "%v", err)
		case errors.Is(err, rtpsend.ErrNoTracks), errors.As(err, &dns):
			return nil, fail(CodeInvalidArgs, "%v", err)
		case errors.As(err, &f):
			return nil, fail(CodeOtherFailed, "%s", f.Error())
		}
		return nil, fail(CodeOtherFailed, "%v", err)
	}
	h.log().Info("startSendRtp", "path", o.Path, "ssrc", rtpsend.SSRCText(o.SSRC), "local_port", port, "passive", o.Passive)
	return map[string]any{"local_port": port}, nil
}

// stopSendRtp stops a stream's sender of ssrc, or all of its senders when
// ssrc is empty. ZLMediaKit answers -500 for a stream that is not there
// and -1 when nothing was stopped.
func (h *Handler) stopSendRtp(_ *http.Request, p params) (map[string]any, error) {
	m, err := h.sender()
	if err != nil {
		return nil, err
	}
	if err := p.require("app", "stream"); err != nil {
		return nil, err
	}
	path := p["app"] + "/" + p["stream"]
	var ssrc *uint32
	if v := p["ssrc"]; v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, fail(CodeInvalidArgs, "ssrc=%q is not a 32-bit decimal number", v)
		}
		s := uint32(n)
		ssrc = &s
	}
	stopped := m.Stop(path, ssrc)
	if stopped == 0 {
		if h.Hub != nil && h.Hub.Get(path) == nil {
			return nil, fail(CodeNotFound, "can not find the stream %s", path)
		}
		return nil, fail(CodeOtherFailed, "stopSendRtp failed: %s has no RTP sender with ssrc %q", path, p["ssrc"])
	}
	return map[string]any{"stopped": stopped}, nil
}

// listRtpSender lists a stream's senders (app and stream optional: all
// streams): ZLMediaKit's data is the list of SSRCs; Berth adds each
// sender's peer, transport, ports and counters.
func (h *Handler) listRtpSender(_ *http.Request, p params) (map[string]any, error) {
	m, err := h.sender()
	if err != nil {
		return nil, err
	}
	path := ""
	if p["app"] != "" || p["stream"] != "" {
		path = p["app"] + "/" + p["stream"]
	}
	data := []map[string]any{}
	for _, in := range m.List(path) {
		app, stream := splitPath(in.Path)
		data = append(data, map[string]any{"app": app, "stream": stream, "vhost": DefaultVhost,
			"ssrc": rtpsend.SSRCText(in.SSRC), "transport": in.Transport, "peer": in.Peer, "local_port": in.LocalPort,
			"payload": in.Payload, "packets": in.Packets, "bytes": in.Bytes, "aliveSecond": int64(time.Since(in.Since).Seconds())})
	}
	return map[string]any{"data": data}, nil
}
