package api

import (
	"net"
	"net/http"

	"github.com/berthmedia/berth/internal/sessions"
)

// sessionFilter is getAllSession's and kick_sessions' local_port and
// peer_ip (each optional; local_port 0 = any).
func sessionFilter(p params) (func(sessions.Info) bool, error) {
	port, err := p.int("local_port", 0)
	if err != nil || port < 0 || port > 65535 {
		return nil, fail(CodeInvalidArgs, "local_port=%q is not a port number (0-65535; 0 or none = any)", p["local_port"])
	}
	ip := p["peer_ip"]
	return func(in sessions.Info) bool {
		return (port == 0 || in.LocalPort == port) && (ip == "" || in.PeerIP == ip)
	}, nil
}

func sessionJSON(in sessions.Info) map[string]any {
	return map[string]any{"id": in.ID, "identifier": in.ID, "typeid": zlmTypeID(in.Type),
		"local_ip": in.LocalIP, "local_port": in.LocalPort, "peer_ip": in.PeerIP, "peer_port": in.PeerPort}
}

func (h *Handler) sessionList() []sessions.Info {
	if h.Sessions == nil {
		return nil
	}
	return h.Sessions.List()
}

// getAllSession lists every TCP connection of every listener, filtered by
// local_port and peer_ip.
func (h *Handler) getAllSession(_ *http.Request, p params) (map[string]any, error) {
	keep, err := sessionFilter(p)
	if err != nil {
		return nil, err
	}
	data := []map[string]any{}
	for _, in := range h.sessionList() {
		if keep(in) {
			data = append(data, sessionJSON(in))
		}
	}
	return map[string]any{"data": data}, nil
}

// kick_session closes connection id: a publisher's stream ends, a player
// stops, as if the peer had gone.
func (h *Handler) kickSession(r *http.Request, p params) (map[string]any, error) {
	if err := p.require("id"); err != nil {
		return nil, err
	}
	if h.Sessions == nil || !h.Sessions.Kick(p["id"]) {
		return nil, fail(CodeOtherFailed, "can not find the target")
	}
	h.log().Info("session kicked by the API", "id", p["id"], "by", r.RemoteAddr)
	return nil, nil
}

// kick_sessions closes every connection local_port and peer_ip select,
// except the one this call came on (as ZLMediaKit). count_hit counts them.
func (h *Handler) kickSessions(r *http.Request, p params) (map[string]any, error) {
	keep, err := sessionFilter(p)
	if err != nil {
		return nil, err
	}
	self := callerSession(r)
	hit := 0
	for _, in := range h.sessionList() {
		if !keep(in) || self(in) {
			continue
		}
		if h.Sessions.Kick(in.ID) {
			hit++
		}
	}
	if hit > 0 {
		h.log().Info("sessions kicked by the API", "count", hit, "local_port", p["local_port"], "peer_ip", p["peer_ip"], "by", r.RemoteAddr)
	}
	return map[string]any{"count_hit": hit}, nil
}

// callerSession tells the connection r came on by its two addresses.
func callerSession(r *http.Request) func(sessions.Info) bool {
	peerIP, peerPort := splitHostPort(r.RemoteAddr)
	la, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	localPort := 0
	if t, ok := la.(*net.TCPAddr); ok {
		localPort = t.Port
	}
	return func(in sessions.Info) bool {
		return in.PeerPort == peerPort && in.LocalPort == localPort && net.ParseIP(in.PeerIP).Equal(net.ParseIP(peerIP))
	}
}
