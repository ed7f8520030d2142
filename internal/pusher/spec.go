// Package pusher pushes live streams out to other servers: ZLMediaKit's
// addStreamPusherProxy. A pusher is a reader of the hub (it counts as one
// in getMediaList and the hooks) that publishes what it reads to an RTSP
// server (ANNOUNCE/RECORD, RFC 2326 section 10.11) or an RTMP server
// (publish), retries a target that goes away with capped exponential
// backoff, and waits for its stream when the stream ends, then resumes.
// See docs/pusher.md.
package pusher

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/berthmedia/berth/internal/srtclient"
)

// DefaultVhost is ZLMediaKit's name for "no virtual host".
const DefaultVhost = "__defaultVhost__"

// ErrBadSpec is wrapped by every error Validate returns: the request is
// wrong, not the target.
var ErrBadSpec = errors.New("bad pusher request")

// Spec is what addStreamPusherProxy asks for.
type Spec struct {
	Schema  string        // "rtsp", "rtmp" or "srt": the protocol pushed, the same as DstURL's scheme
	Vhost   string        // ZLMediaKit's vhost; Berth has one, any name selects it
	App     string        // the stream pushed: App/Stream on this server
	Stream  string        //
	DstURL  string        // where to: rtsp://host[:port]/path, rtmp://host[:port]/app/stream, srt://host:port?streamid=...
	Retries int           // retries after a failure before giving up: -1 = forever (the API's default), 0 = none, as ZLMediaKit
	RTPType int           // RTSP only: 0 = TCP interleaved, 1 = UDP
	Timeout time.Duration // dial and each request; 0 = 10 s
}

// Path is the hub path of the stream pushed.
func (s Spec) Path() string { return s.App + "/" + s.Stream }

// Key is ZLMediaKit's pusher key (WebApi.cpp getPusherKey):
// schema/vhost/app/stream/md5(dst_url) in hex, stable across restarts and
// different for each destination of one stream.
func (s Spec) Key() string {
	sum := md5.Sum([]byte(s.DstURL))
	return s.Schema + "/" + s.vhost() + "/" + s.App + "/" + s.Stream + "/" + hex.EncodeToString(sum[:])
}

func (s Spec) vhost() string {
	if s.Vhost == "" {
		return DefaultVhost
	}
	return s.Vhost
}

// Validate checks a request before anything is started, with messages that
// say what to change.
func (s *Spec) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadSpec, fmt.Sprintf(format, a...))
	}
	if s.Schema != "rtsp" && s.Schema != "rtmp" && s.Schema != "srt" {
		return bad("schema=%q: Berth pushes rtsp, rtmp or srt", s.Schema)
	}
	if s.App == "" || s.Stream == "" || strings.Contains(s.App, "/") {
		return bad("app=%q stream=%q: both are needed, and app has no '/'", s.App, s.Stream)
	}
	u, err := url.Parse(s.DstURL)
	if err != nil {
		return bad("dst_url=%q does not parse: %v", s.DstURL, err)
	}
	switch u.Scheme {
	case "rtsps", "rtmps":
		return bad("dst_url=%q: %s is not supported yet; push to an %s:// URL", s.DstURL, u.Scheme, s.Schema)
	case s.Schema:
	default:
		return bad("dst_url=%q: with schema=%s it must be an %s:// URL (the schema is the protocol pushed)", s.DstURL, s.Schema, s.Schema)
	}
	if u.Hostname() == "" {
		return bad("dst_url=%q has no host", s.DstURL)
	}
	if s.Schema == "rtmp" {
		if _, _, err := splitRTMP(u); err != nil {
			return bad("dst_url=%q: %v", s.DstURL, err)
		}
	}
	if s.Schema == "srt" {
		// ffmpeg's URL shape: the stream id's '#' is not a fragment (srtclient).
		if _, err := srtclient.ParseURL(s.DstURL); err != nil {
			return bad("dst_url=%q: %v", srtclient.Redact(s.DstURL), err)
		}
	}
	if s.RTPType != 0 && s.RTPType != 1 {
		return bad("rtp_type=%d: use 0 (TCP interleaved) or 1 (UDP); multicast does not push", s.RTPType)
	}
	if s.Retries < -1 {
		return bad("retry_count=%d: use -1 (forever) or a count", s.Retries)
	}
	if s.Timeout < 0 {
		return bad("timeout_sec must not be negative")
	}
	if s.Timeout == 0 {
		s.Timeout = 10 * time.Second
	}
	return nil
}

// splitRTMP splits an RTMP URL into the app to connect to and the stream
// name to publish (with the query, where servers read credentials and
// tokens): rtmp://h/live/cam?k=v -> "live", "cam?k=v". The app is the
// first path element, as ffmpeg and OBS split it.
func splitRTMP(u *url.URL) (app, name string, err error) {
	p := strings.TrimPrefix(u.Path, "/")
	i := strings.IndexByte(p, '/')
	if i <= 0 || i == len(p)-1 {
		return "", "", errors.New("an RTMP URL names an app and a stream: rtmp://host[:port]/app/stream")
	}
	app, name = p[:i], p[i+1:]
	if u.RawQuery != "" {
		name += "?" + u.RawQuery
	}
	return app, name, nil
}
