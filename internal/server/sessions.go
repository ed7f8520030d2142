package server

import (
	"net"

	"github.com/berthmedia/berth/internal/ports"
	"github.com/berthmedia/berth/internal/sessions"
)

// sessionTypes names the connections of each TCP listener as ZLMediaKit
// names its session classes (getAllSession's typeid, metrics' label).
var sessionTypes = map[string]string{
	"rtsp":      "RtspSession",
	"rtmp":      "RtmpSession",
	"http":      "HttpSession",
	"rtp_proxy": "RtpSession",
	"srt":       "SRT::SrtSession", // ZLMediaKit's class; SRT's connections are registered one by one (registerSRT)
	// ZLMediaKit's TLS sessions (HttpsSession, RtspSessionWithSSL, RtmpSessionWithSSL), as its typeid names them
	"https": "toolkit::SessionWithSSL<mediakit::HttpSession>",
	"rtsps": "toolkit::SessionWithSSL<mediakit::RtspSession>",
	"rtmps": "toolkit::SessionWithSSL<mediakit::RtmpSession>",
}

// registerSessions wraps every bound TCP listener in the session registry
// before its server gets it, so every connection can be listed and kicked
// through the API. The self-probe's own connections are registered but not
// counted as accepted.
func (s *Server) registerSessions(b *ports.Bound) {
	if s.Sessions == nil {
		s.Sessions = &sessions.Registry{Uncounted: ports.IsSelfProbe}
	}
	for name, l := range b.TCP {
		b.TCP[name] = s.sessionListener(name, l)
	}
}

// sessionListener wraps one listener of the named spec (hot reload wraps
// a moved listener with it too).
func (s *Server) sessionListener(name string, l net.Listener) net.Listener {
	typ := sessionTypes[name]
	if typ == "" {
		typ = "TcpSession"
	}
	return s.Sessions.Listener(s.limitListener(name, l), typ) // under the registry: a refused connection is never listed
}

// acceptedByListener is Sessions.Accepted keyed by listener name ("rtsp",
// "http", ...), the label metrics use.
func (s *Server) acceptedByListener() map[string]uint64 {
	if s.Sessions == nil {
		return nil
	}
	byType := s.Sessions.Accepted()
	out := make(map[string]uint64, len(byType))
	for name, typ := range sessionTypes {
		if n, ok := byType[typ]; ok {
			out[name] = n
		}
	}
	return out
}

// registerSRT lists an SRT connection with the TCP ones: gosrt accepts on
// its own UDP socket, so there is no listener to wrap. getAllSession lists
// it and kick_session closes it, which ends the SRT session.
func (s *Server) registerSRT(c net.Conn) (string, func()) {
	rc := s.Sessions.Register(c, sessionTypes["srt"])
	return rc.ID(), rc.Unregister
}
