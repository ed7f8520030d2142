package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/rtspclient"
)

// maxRedirects bounds the 3xx answers an RTSP source may chain (RFC 2326
// section 11.3.3: a redirect names the new URL in Location).
const maxRedirects = 3

// pullRTSP plays an RTSP source and forwards its RTP as is (renumbered for
// continuity) into a KindRTP stream: RTSP readers get the camera's own
// payloads, other protocols the hub's converted view.
func (p *Proxy) pullRTSP(ctx context.Context) error {
	raw := p.src
	for hop := 0; ; hop++ {
		err := p.rtspSession(ctx, raw)
		var se *rtspclient.StatusError
		if hop < maxRedirects && errors.As(err, &se) && se.Code >= 300 && se.Code < 400 {
			if loc := se.Header["Location"]; len(loc) == 1 {
				next := carryCredentials(raw, loc[0])
				p.m.log().Info("pull: the RTSP source redirects", "key", p.key, "from", Redact(raw), "to", Redact(next))
				raw = next
				continue
			}
		}
		return err
	}
}

// carryCredentials gives a redirect target the user and password of the
// URL it came from, when it names none itself.
func carryCredentials(from, to string) string {
	f, err1 := url.Parse(from)
	t, err2 := url.Parse(to)
	if err1 != nil || err2 != nil || f.User == nil || t.User != nil {
		return to
	}
	t.User = f.User
	return t.String()
}

func (p *Proxy) rtspSession(ctx context.Context, raw string) error {
	tr := rtspclient.TCP
	switch p.spec.Transport {
	case UDP:
		tr = rtspclient.UDP
	case Multicast:
		tr = rtspclient.Multicast
	}
	// rtsps: cameras carry self-signed certificates, and ZLMediaKit does
	// not verify them either; TLS still keeps the stream and the Digest
	// exchange private on the wire.
	c, err := rtspclient.Dial(ctx, raw, rtspclient.Options{Transport: tr, Timeout: p.spec.Timeout,
		ReadTimeout: p.spec.Timeout, UserAgent: "berth-proxy", TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		return err
	}
	defer c.Close()
	// OPTIONS tells whether the server takes GET_PARAMETER as keep-alive;
	// a server that refuses OPTIONS may still play.
	if _, err := c.Options(); err != nil {
		var se *rtspclient.StatusError
		if !errors.As(err, &se) {
			return err
		}
	}
	desc, _, err := c.Describe()
	if err != nil {
		return err
	}
	play, tracks, left := playableMedias(desc, c.Unreadable())
	p.logLeftOut(left)
	if len(tracks) == 0 {
		return fmt.Errorf("%w: the SDP has %d media, none audio or video with a known codec (%s)", errNoTracks, len(desc.Medias), strings.Join(left, "; "))
	}
	if err := c.SetupAll(play); err != nil {
		var se *rtspclient.StatusError
		if tr == rtspclient.Multicast && errors.As(err, &se) && se.Code == base.StatusUnsupportedTransport {
			return fmt.Errorf("%w: %w", errMulticastRefused, err)
		}
		return err
	}
	if tr == rtspclient.Multicast {
		p.logJoined(c.Multicast())
	}
	// The hub generates the SDP readers get from the tracks: the source's
	// own may carry its absolute URLs and media Berth left out.
	done, err := p.out.begin(hub.KindRTP, tracks, nil)
	if err != nil {
		return err
	}
	bye := make(chan struct{}, 1)
	c.OnPacket = func(track int, pkt []byte) { p.out.writeRTP(track, pkt, time.Now()) }
	c.OnRTCP = func(track int, pkt []byte) {
		if p.out.writeRTCP(track, pkt, time.Now()) {
			select {
			case bye <- struct{}{}:
			default:
			}
		}
	}
	if _, err := c.Play(); err != nil {
		return err
	}
	select {
	case <-c.Done():
		return c.Err()
	case <-done:
		return errStreamClosed
	case <-bye:
		// RFC 3550 section 6.6: the source left. Some servers keep the
		// connection open after it; waiting for the read timeout would
		// only delay the reconnect.
		return errSourceBye
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errSourceBye ends a session whose source sent an RTCP BYE.
var errSourceBye = errors.New("the source ended its stream (RTCP BYE)")

// errMulticastRefused is a 461 to a multicast SETUP.
var errMulticastRefused = errors.New("the camera refuses multicast")

// logJoined says which multicast groups a pull joined, once, and again only
// when they change (a camera may hand out another group on reconnect).
func (p *Proxy) logJoined(groups []string) {
	if s := strings.Join(groups, "; "); p.swapLogged(&p.joined, s) {
		p.m.log().Info("pull: joined the camera's multicast groups", "key", p.key, "groups", s)
	}
}

// playableMedias keeps the first video and the first audio media with a
// codec Berth knows, with the first format of each (as the RTSP server
// does), and makes a track of each; left names the medias left out (ONVIF
// metadata, back-channels, a camera's sub stream). One video track, as
// ZLMediaKit carries: the hub's keyframe index spans every video track, so a
// reader starting on the sub stream's keyframe would get the main stream
// mid-GOP (ffprobe then reports "non-existing PPS"), and FLV, TS and fMP4
// readers carry one video track anyway. Not set up, the medias left out
// cost no bandwidth from the camera either.
//
// unreadable are the medias the client could not parse: they are named with
// the rest, and every media by its place in the source's SDP.
func playableMedias(desc *description.Session, unreadable []rtspclient.UnreadableMedia) (play *description.Session, tracks []*hub.Track, left []string) {
	out := *desc
	out.Medias = nil
	var haveVideo, haveAudio bool
	sdpIndex, bad := 0, unreadable
	for _, m := range desc.Medias {
		for len(bad) > 0 && bad[0].Index == sdpIndex {
			left = append(left, bad[0].String())
			bad, sdpIndex = bad[1:], sdpIndex+1
		}
		i := sdpIndex
		sdpIndex++
		why := ""
		switch {
		case len(m.Formats) == 0:
			why = "no format"
		case m.IsBackChannel:
			why = "a back channel"
		case m.Type != description.MediaTypeVideo && m.Type != description.MediaTypeAudio:
			why = "neither audio nor video"
		case isGeneric(m.Formats[0]):
			why = "a codec Berth does not know"
		case m.Type == description.MediaTypeVideo && haveVideo:
			why = "a second video track"
		case m.Type == description.MediaTypeAudio && haveAudio:
			why = "a second audio track"
		}
		if why != "" {
			left = append(left, fmt.Sprintf("media %d %s %s (%s)", i+1, m.Type, mediaCodec(m), why))
			continue
		}
		haveVideo = haveVideo || m.Type == description.MediaTypeVideo
		haveAudio = haveAudio || m.Type == description.MediaTypeAudio
		mm := *m
		mm.Formats = m.Formats[:1]
		out.Medias = append(out.Medias, &mm)
		tracks = append(tracks, &hub.Track{Format: mm.Formats[0], Media: &mm, Video: m.Type == description.MediaTypeVideo})
	}
	for _, u := range bad {
		left = append(left, u.String())
	}
	return &out, tracks, left
}

func isGeneric(f format.Format) bool {
	_, ok := f.(*format.Generic)
	return ok
}

// mediaCodec names a media's first format for a log line: the codec, or
// the rtpmap of one gortsplib does not know (vnd.onvif.metadata/90000).
func mediaCodec(m *description.Media) string {
	if len(m.Formats) == 0 {
		return "-"
	}
	if g, ok := m.Formats[0].(*format.Generic); ok {
		if g.RTPMa != "" {
			return g.RTPMa
		}
		return fmt.Sprintf("payload type %d", g.PayloadTyp)
	}
	return m.Formats[0].Codec()
}

// logLeftOut says once per proxy which medias of the source Berth leaves
// out, again only when that changes (a reconnect that finds the same SDP
// stays quiet).
func (p *Proxy) logLeftOut(left []string) {
	if s := strings.Join(left, "; "); p.swapLogged(&p.leftOut, s) && s != "" {
		p.m.log().Info("pull: left out medias of the source", "key", p.key, "left", s)
	}
}

// swapLogged stores s as what was last logged in *last (one of p's fields,
// under p.mu) and reports whether it changed.
func (p *Proxy) swapLogged(last *string, s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	changed := *last != s
	*last = s
	return changed
}

// statusText is the RTSP status line of code, for causes.
func statusText(code base.StatusCode) string {
	return fmt.Sprintf("%d %s", int(code), base.StatusMessages[code])
}
