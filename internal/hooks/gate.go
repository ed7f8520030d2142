package hooks

import (
	"context"
	"errors"
	"fmt"

	"github.com/berthmedia/berth/internal/auth"
)

// ZLMediaKit's origin types (MediaOriginType) of the publishers Berth has.
var originTypes = map[string]int{"rtmp": 1, "rtsp": 2, "rtp": 3, "webrtc": 8, "srt": 9}

var originNames = map[int]string{0: "unknown", 1: "rtmp_push", 2: "rtsp_push", 3: "rtp_push", 8: "rtc_push", 9: "srt_push"}

// schemaOf maps a Berth protocol (hub.Origin.Proto, auth.Request.Proto) to
// ZLMediaKit's schema and protocol fields: an HTTP-FLV or WS-FLV player
// reads ZLMediaKit's rtmp source, so its schema is rtmp; HTTP-fMP4 and
// HTTP-TS players (and their WebSocket forms) read the fmp4 and ts ones.
func schemaOf(proto string) (schema, protocol string) {
	switch proto {
	case "http-flv", "ws-flv":
		return "rtmp", proto
	case "http-fmp4", "ws-fmp4":
		return "fmp4", proto
	case "http-ts", "ws-ts":
		return "ts", proto
	case "":
		return "", ""
	}
	return proto, proto
}

// mediaBody is ZLMediaKit's make_json(MediaInfo): where the client wants
// to publish or play.
func mediaBody(proto, app, stream, params string) map[string]any {
	schema, protocol := schemaOf(proto)
	return map[string]any{"schema": schema, "protocol": protocol, "vhost": DefaultVhost,
		"app": app, "stream": stream, "params": params}
}

// withPeer adds the client's ip, port and id.
func withPeer(body map[string]any, remote, id string) map[string]any {
	ip, port := peer(remote)
	body["ip"], body["port"], body["id"] = ip, port, id
	return body
}

func requestBody(r auth.Request) map[string]any {
	return withPeer(mediaBody(r.Proto, r.App, r.Stream, r.Params), r.Remote, r.ID)
}

// Authorize is the auth.Gate of the web hooks: on_publish for a publish,
// on_play for a play. An unconfigured hook allows. A reply with code 0
// allows (on_publish's switches are kept for the stream, PublishOptions);
// another code refuses with the reply's msg; a hook server that cannot be
// asked (down, slow beyond timeoutSec, not JSON) refuses, as ZLMediaKit's
// invoker gets the error then.
func (c *Client) Authorize(ctx context.Context, r auth.Request) error {
	hook := "on_play"
	body := requestBody(r)
	if r.Action == auth.Publish {
		hook = "on_publish"
		ot := originTypes[r.Proto]
		body["originType"], body["originTypeStr"] = ot, originNames[ot]
	}
	reply, asked, err := c.Call(ctx, hook, body)
	if !asked {
		return nil
	}
	if err != nil {
		var refused *RefusedError
		if errors.As(err, &refused) {
			return refused
		}
		return fmt.Errorf("%s could not be asked (ZLMediaKit refuses then): %w", hook, err)
	}
	if r.Action == auth.Publish {
		c.streams.Store(pendingKey(r.App, r.Stream), ParsePublishOptions(reply))
	}
	return nil
}

func pendingKey(app, stream string) string {
	if app == "" {
		return "publish " + stream
	}
	return "publish " + app + "/" + stream
}

// RTSPAuth asks on_rtsp_realm and on_rtsp_auth for the credentials of an
// RTSP player; it satisfies rtsp.HookAuth.
type RTSPAuth struct{ C *Client }

// Realm asks on_rtsp_realm; "" (the hook not configured, or its reply's
// realm empty) means the play needs no RTSP authentication.
func (a RTSPAuth) Realm(ctx context.Context, r auth.Request) (string, error) {
	reply, asked, err := a.C.Call(ctx, "on_rtsp_realm", requestBody(r))
	if !asked {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return reply.String("realm"), nil
}

// Password asks on_rtsp_auth for user's password in realm. An unconfigured
// on_rtsp_auth refuses (ZLMediaKit answers a random password then).
func (a RTSPAuth) Password(ctx context.Context, r auth.Request, realm, user string, mustNoEncrypt bool) (string, bool, error) {
	body := requestBody(r)
	body["user_name"], body["must_no_encrypt"], body["realm"] = user, mustNoEncrypt, realm
	reply, asked, err := a.C.Call(ctx, "on_rtsp_auth", body)
	if !asked {
		return "", false, errors.New("on_rtsp_realm asked for credentials but on_rtsp_auth is not configured")
	}
	if err != nil {
		return "", false, err
	}
	enc, _ := reply.Bool("encrypted")
	return reply.String("passwd"), enc, nil
}
