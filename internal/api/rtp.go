package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/berthmedia/berth/internal/ports"
	"github.com/berthmedia/berth/internal/rtpproxy"
)

func (h *Handler) rtp() (*rtpproxy.Server, error) {
	if h.RTP == nil {
		return nil, fail(CodeOtherFailed, "the RTP proxy is off: set [rtp_proxy] port to a non-zero value")
	}
	return h.RTP, nil
}

// openRtpServer opens a port for one stream, <app>/<stream_id> (app
// defaults to rtp):
// port (0 = a free one from [rtp_proxy] port_range), tcp_mode (0 = UDP,
// 1 = UDP and TCP passive; ZLMediaKit's older enable_tcp=1 means 1), ssrc
// (optional: only that SSRC is accepted), sdp (optional, Berth's own: raw
// RTP as the SDP describes). Reply {"code":0,"port":N}.
func (h *Handler) openRtpServer(_ *http.Request, p params) (map[string]any, error) {
	srv, err := h.rtp()
	if err != nil {
		return nil, err
	}
	id := p["stream_id"]
	if id == "" {
		return nil, fail(CodeInvalidArgs, "missing stream_id: the stream is published as rtp/<stream_id>")
	}
	port, err := p.int("port", 0)
	if err != nil {
		return nil, fail(CodeInvalidArgs, "%v", err)
	}
	if port < 0 || port > 65535 {
		return nil, fail(CodeInvalidArgs, "port=%d is out of range (0-65535; 0 picks one from [rtp_proxy] port_range)", port)
	}
	mode, err := p.int("tcp_mode", -1)
	if err != nil {
		return nil, fail(CodeInvalidArgs, "%v", err)
	}
	if mode < 0 {
		mode = 0
		if p["enable_tcp"] == "1" || p["enable_tcp"] == "true" {
			mode = 1
		}
	}
	if mode == 2 {
		return nil, fail(CodeInvalidArgs, "tcp_mode=2 (TCP active: Berth connects to the sender) is not supported yet; use 0 (UDP) or 1 (TCP passive)")
	}
	var ssrc uint32
	if v := p["ssrc"]; v != "" && v != "0" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, fail(CodeInvalidArgs, "ssrc=%q is not a 32-bit decimal number", v)
		}
		ssrc = uint32(n)
	}
	// Berth's extension: sdp= (an SDP, URL-encoded) says the port gets raw
	// RTP of the codecs it describes rather than MPEG-TS or PS.
	got, err := srv.Open(rtpproxy.PortOptions{StreamID: id, App: p["app"], Port: port, TCPMode: mode, SSRC: ssrc, SDP: []byte(p["sdp"])})
	if err != nil {
		var f *ports.Finding
		switch {
		case errors.Is(err, rtpproxy.ErrBadSDP):
			return nil, fail(CodeInvalidArgs, "%v", err)
		case errors.Is(err, rtpproxy.ErrStreamIDExists):
			return nil, fail(CodeInvalidArgs, "stream_id %q already has a port: close it with closeRtpServer first", id)
		case errors.Is(err, rtpproxy.ErrBadTCPMode):
			return nil, fail(CodeInvalidArgs, "%v", err)
		case errors.As(err, &f):
			return nil, fail(CodeOtherFailed, "%s", f.Error())
		}
		return nil, fail(CodeOtherFailed, "%v", err)
	}
	return map[string]any{"port": got}, nil
}

// closeRtpServer closes the port of stream_id and ends its stream. Reply
// {"code":0,"hit":1} (0 when there was no such port).
func (h *Handler) closeRtpServer(_ *http.Request, p params) (map[string]any, error) {
	srv, err := h.rtp()
	if err != nil {
		return nil, err
	}
	id := p["stream_id"]
	if id == "" {
		return nil, fail(CodeInvalidArgs, "missing stream_id")
	}
	hit := 0
	if srv.ClosePort(id) {
		hit = 1
	}
	return map[string]any{"hit": hit}, nil
}

// listRtpServer lists the ports opened with openRtpServer.
func (h *Handler) listRtpServer(_ *http.Request, _ params) (map[string]any, error) {
	srv, err := h.rtp()
	if err != nil {
		return nil, err
	}
	data := []map[string]any{}
	for _, pi := range srv.Ports() {
		data = append(data, map[string]any{"port": pi.Port, "app": pi.App, "stream_id": pi.StreamID, "tcp_mode": pi.TCPMode, "ssrc": pi.SSRC})
	}
	return map[string]any{"data": data}, nil
}

// getRtpInfo tells whether an RTP stream is live and where it comes from:
// {"code":0,"exist":true,"peer_ip":...,"peer_port":...,"local_port":...},
// plus Berth's counters (packets, bytes, lost, payload).
func (h *Handler) getRtpInfo(_ *http.Request, p params) (map[string]any, error) {
	srv, err := h.rtp()
	if err != nil {
		return nil, err
	}
	id := p["stream_id"]
	if id == "" {
		return nil, fail(CodeInvalidArgs, "missing stream_id")
	}
	app := p["app"]
	if app == "" {
		app = "rtp"
	}
	for _, ss := range srv.Stats().Sessions {
		if ss.Path != app+"/"+id {
			continue
		}
		ip, port := splitHostPort(ss.Remote)
		return map[string]any{"exist": true, "peer_ip": ip, "peer_port": port, "local_port": ss.LocalPort,
			"transport": ss.Transport, "ssrc": ss.SSRC, "payload": ss.Payload,
			"packets": ss.Packets, "bytes": ss.Bytes, "lost": ss.Lost}, nil
	}
	return map[string]any{"exist": false}, nil
}
