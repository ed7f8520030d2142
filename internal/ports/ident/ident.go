// Package ident holds tiny protocol clients that ask a listener who it is:
// an RTSP OPTIONS/DESCRIBE, an HTTP health GET, an RTMP handshake and
// connect. Berth's self-probe and `berth probe` share them, so both judge an
// answer the same way. Every reply is untrusted bytes: parsers are bounded
// and fuzzed.
package ident

import (
	"fmt"
	"strings"
)

// Identity is what answered on a port.
type Identity struct {
	// Protocol is what the peer spoke: "RTSP", "HTTP", "RTMP", or "" when
	// the bytes were none of those (or nothing came back).
	Protocol string
	// Status is the reply's first line ("RTSP/1.0 200 OK",
	// "HTTP/1.0 400 Bad request version ('RTSP/1.0')") or an RTMP summary.
	Status string
	Code   int
	// Server is the Server header (RTSP, HTTP) or fmsVer (RTMP).
	Server string
	// Instance is the X-Berth-Instance token ("" when not a Berth).
	Instance string
	// Raw holds the first bytes of a reply in no known protocol, quoted.
	Raw string
}

// IsBerth reports whether a Berth answered.
func (id *Identity) IsBerth() bool {
	return id != nil && (id.Instance != "" || strings.HasPrefix(strings.ToLower(id.Server), "berth/"))
}

// Version is Berth's version from "Berth/0.1.0", "" otherwise.
func (id *Identity) Version() string {
	if v, ok := strings.CutPrefix(id.Server, "Berth/"); ok {
		return v
	}
	return ""
}

// Describe names the answering server in a few words: `Berth 0.1.0
// (instance 3fa2...)`, `RTSP server "WMServer/9.1"`, `HTTP server
// "SimpleHTTP/0.6 Python/3.11.2"`, `something that is not RTSP, HTTP or
// RTMP: "SSH-2.0-OpenSSH_9.2"`.
func (id *Identity) Describe() string {
	if id == nil {
		return "nothing"
	}
	if id.IsBerth() {
		s := "Berth"
		if v := id.Version(); v != "" {
			s += " " + v
		}
		if id.Instance != "" {
			s += " (instance " + id.Instance + ")"
		}
		return s
	}
	if id.Protocol == "" {
		if id.Raw == "" {
			return "a peer that answered nothing"
		}
		return "something that speaks neither RTSP, HTTP nor RTMP: " + id.Raw
	}
	name := id.Protocol + " server"
	if id.Server != "" {
		name += fmt.Sprintf(" %q", id.Server)
		if k := KnownServer(id.Server); k != "" && !strings.Contains(strings.ToLower(id.Server), strings.ToLower(k)) {
			name += " (" + k + ")"
		}
	} else {
		name += " without a Server header"
	}
	return name
}

// KnownServer maps a Server header or fmsVer to the product users know.
func KnownServer(server string) string {
	s := strings.ToLower(server)
	switch {
	case strings.HasPrefix(s, "berth"):
		return "Berth"
	case strings.Contains(s, "zlmediakit"):
		return "ZLMediaKit"
	case strings.Contains(s, "mediamtx") || strings.Contains(s, "rtsp-simple-server") || strings.Contains(s, "gortsplib"):
		return "MediaMTX"
	case strings.HasPrefix(s, "lal"):
		return "lal"
	case strings.HasPrefix(s, "wmserver"):
		return "Windows Media Services (wmpnetwk)"
	case strings.Contains(s, "simplehttp"):
		return "Python http.server"
	case strings.Contains(s, "microsoft-httpapi") || strings.Contains(s, "microsoft-iis"):
		return "IIS / HTTP.sys"
	case strings.HasPrefix(s, "nginx"):
		return "nginx"
	case strings.Contains(s, "gstreamer"):
		return "GStreamer"
	case strings.Contains(s, "live555"):
		return "live555"
	case strings.HasPrefix(s, "vlc"):
		return "VLC"
	case strings.HasPrefix(s, "fms"):
		return "Flash Media Server (or a server imitating it)"
	}
	return ""
}

func quoteHead(b []byte) string {
	if len(b) > 48 {
		b = b[:48]
	}
	return fmt.Sprintf("%q", b)
}
