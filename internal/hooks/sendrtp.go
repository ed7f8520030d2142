package hooks

import (
	"github.com/berthmedia/berth/internal/api"
	"github.com/berthmedia/berth/internal/hub"
)

// SendRTPStopped sends on_send_rtp_stopped for a startSendRtp sender that
// stopped by itself (its receiver went away, its stream ended), in
// ZLMediaKit's body: vhost, app, stream, params (its media tuple), ssrc, the source's originType,
// originTypeStr and originUrl (when it is still live), msg and err
// (ZLToolKit's error code). s may be nil.
func (c *Client) SendRTPStopped(app, stream, ssrc string, s *hub.Stream, code int, msg string) {
	body := map[string]any{"vhost": DefaultVhost, "app": app, "stream": stream, "params": "", "ssrc": ssrc,
		"originType": 0, "originTypeStr": "unknown", "originUrl": "", "msg": msg, "err": code}
	if s != nil {
		m := api.MediaJSON(s, "rtsp")
		body["originType"], body["originTypeStr"], body["originUrl"] = m["originType"], m["originTypeStr"], m["originUrl"]
		body["params"] = s.Origin.Params
	}
	c.Notify("on_send_rtp_stopped", body, nil)
}
