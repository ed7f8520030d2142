package server

import (
	"strings"

	"github.com/berthmedia/berth/internal/rtpsend"
)

// newRTPSender makes the senders of startSendRtp: they bind on listen_ip,
// a passive one on a port of [rtp_proxy] port_range as in ZLMediaKit, and
// one that stops by itself fires on_send_rtp_stopped.
func (s *Server) newRTPSender() *rtpsend.Manager {
	return &rtpsend.Manager{Hub: s.Hub, Log: s.Log.With("proto", "rtp-send"), Host: s.Config.General.ListenIP,
		PortRange: s.Config.RTPProxy.PortRange, OnStopped: s.sendRTPStopped}
}

func (s *Server) sendRTPStopped(in rtpsend.Info, err error) {
	app, stream, _ := strings.Cut(in.Path, "/")
	s.hooks.SendRTPStopped(app, stream, rtpsend.SSRCText(in.SSRC), s.Hub.Get(in.Path), rtpsend.Code(err), err.Error())
}
