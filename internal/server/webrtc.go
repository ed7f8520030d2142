package server

import (
	"fmt"
	"net"
	"net/http"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/ports"
	"github.com/berthmedia/berth/internal/webrtc"
)

func init() {
	for k, why := range map[string]string{
		"rtc.port":     "the ICE socket is bound at start (docs/webrtc.md)",
		"rtc.externIP": "WebRTC takes its candidates' addresses when it starts",
		"rtc.tcpPort":  "the ICE-TCP listener is handed to pion at start",
	} {
		restartOnly[k] = why
	}
}

// startWebRTC serves WebRTC's ICE on the UDP sockets ports bound for [rtc]
// port; the offers come over the HTTP port (routeWebRTC).
func (s *Server) startWebRTC(bound *ports.Bound, checker *auth.Checker) error {
	pc := bound.UDP["rtc"]
	if pc == nil {
		return nil
	}
	var conns []net.PacketConn
	for _, c := range pc.Conns() {
		conns = append(conns, c)
	}
	rtc := &webrtc.Server{Hub: s.Hub, Log: s.Log.With("proto", "webrtc"), Auth: checker, StreamWait: s.streamWait(),
		UDP: conns, TCP: bound.TCP["rtc"], ExternIP: s.Config.RTC.ExternIP}
	if err := rtc.Start(); err != nil {
		return fmt.Errorf("[rtc]: %w", err)
	}
	s.rtc = rtc
	return nil
}

// routeWebRTC sends WHEP, WHIP and ZLMediaKit's webrtc call to the WebRTC
// server, or answers 404 naming the key when [rtc] port is 0.
func (s *Server) routeWebRTC(mux *http.ServeMux) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.rtc == nil {
			http.Error(w, "WebRTC is off: set [rtc] port (UDP) to serve it", http.StatusNotFound)
			return
		}
		s.rtc.ServeHTTP(w, r)
	})
	for _, p := range []string{webrtc.WHEPPath, webrtc.WHIPPath, webrtc.ZLMPath} {
		mux.Handle(p, h)
		mux.Handle(p+"/", h)
	}
}

// WebRTC returns the WebRTC server (nil when [rtc] port is 0), for tests.
func (s *Server) WebRTC() *webrtc.Server { return s.rtc }
