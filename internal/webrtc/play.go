package webrtc

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/pion/rtcp"
	pion "github.com/pion/webrtc/v4"

	"github.com/berthmedia/berth/internal/hub"
)

// player is a WebRTC peer reading one stream: a hub reader of access
// units (an RTP-published stream is depacketized by the hub's converter
// and packetized again here, so every source gets packetization-mode 1
// with SPS/PPS in front of each IDR, as browsers need).
type player struct {
	s      *Server
	ss     *session
	reader *hub.Reader
	tracks []*outTrack                 // by hub track index; nil = left out
	locals []*pion.TrackLocalStaticRTP // same index
}

// play subscribes to path and answers offer with a track per hub track the
// offer can take.
func (s *Server) play(ctx context.Context, path string, who hub.Origin, offer string) (*session, string, error) {
	r, err := s.Hub.SubscribeWait(ctx, path, hub.KindAU, who, s.StreamWait)
	if err != nil {
		status := http.StatusServiceUnavailable
		if errors.Is(err, hub.ErrNotFound) {
			status = http.StatusNotFound
		}
		s.Log.Info("webrtc play refused", "path", path, "err", err)
		return nil, "", &httpError{status, "stream " + path + ": " + err.Error()}
	}
	pc, err := s.api.NewPeerConnection(pion.Configuration{})
	if err != nil {
		r.Close()
		return nil, "", &httpError{http.StatusInternalServerError, err.Error()}
	}
	p := &player{s: s, reader: r}
	ss := &session{id: who.ID, path: path, pc: pc, done: make(chan struct{}), close: r.Close, connected: make(chan struct{})}
	p.ss = ss
	answer, err := s.negotiate(pc, offer, p.addTracks(offer))
	if err == nil {
		err = s.add(ss)
	}
	if err != nil {
		r.Close()
		pc.Close()
		return nil, "", err
	}
	s.Log.Info("webrtc play started", "path", path, "remote", who.Remote, "id", ss.id)
	go p.run()
	return ss, answer, nil
}

// addTracks returns negotiate's setup: a local track per hub track whose
// codec the offer lists. An AAC track is left out with one line: WebRTC
// has no AAC and Berth does not transcode.
func (p *player) addTracks(offer string) func() error {
	return func() error {
		st := p.reader.Stream()
		p.tracks = make([]*outTrack, len(st.Tracks))
		p.locals = make([]*pion.TrackLocalStaticRTP, len(st.Tracks))
		n := 0
		for i, t := range st.Tracks {
			ot, err := newOutTrack(i, t.Format)
			if err != nil {
				p.s.Log.Info("webrtc play: track left out", "path", st.Path, "track", i, "codec", codecName(t.Format), "cause", err,
					"fix", "publish Opus or G.711 audio (ffmpeg -c:a libopus) for WebRTC players")
				continue
			}
			if !offered(offer, ot.mime) {
				p.s.Log.Info("webrtc play: track left out: the player's offer does not list its codec", "path", st.Path, "track", i, "codec", ot.mime)
				continue
			}
			kind := "audio"
			if ot.video() {
				kind = "video"
			}
			lt, err := pion.NewTrackLocalStaticRTP(ot.capability(), kind, "berth")
			if err != nil {
				return &httpError{http.StatusInternalServerError, err.Error()}
			}
			sender, err := p.ss.pc.AddTrack(lt)
			if err != nil {
				return &httpError{http.StatusNotAcceptable, "track " + ot.mime + ": " + err.Error()}
			}
			go p.readRTCP(sender)
			p.tracks[i], p.locals[i] = ot, lt
			n++
		}
		if n == 0 {
			return &httpError{http.StatusNotAcceptable, "stream " + st.Path + " has no track this offer can play (WebRTC takes H.264, H.265, AV1, Opus, G.711; no AAC)"}
		}
		return nil
	}
}

// readRTCP drains a sender's RTCP, which runs pion's interceptors (NACKs
// are answered from their buffer). A PLI or FIR goes to a WHIP publisher
// of the path; an RTSP or RTMP publisher cannot be asked: the player
// started on the cached keyframe and gets the next of the GOP.
func (p *player) readRTCP(sender *pion.RTPSender) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, pk := range pkts {
			switch pk.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				if p.s.requestKeyframe(p.ss.path) {
					p.s.Log.Debug("webrtc player asked for a keyframe; asked the WHIP publisher", "path", p.ss.path, "id", p.ss.id)
					continue
				}
				p.s.Log.Debug("webrtc player asked for a keyframe; the publisher cannot be asked, the next keyframe comes with the GOP",
					"path", p.ss.path, "id", p.ss.id)
			}
		}
	}
}

// run waits for the peer to connect, then sends the stream from the
// keyframe the reader started on until either side ends.
func (p *player) run() {
	select {
	case <-p.ss.connected:
	case <-p.ss.done:
		return
	case <-time.After(15 * time.Second):
		p.s.Log.Warn("webrtc player never connected; ended (a firewall may block [rtc] port over UDP, or externIP is wrong)", "path", p.ss.path, "id", p.ss.id)
		p.s.end(p.ss)
		return
	}
	buf := make([]*hub.Frame, 64)
	var drops int
	for {
		n, err := p.reader.Read(buf)
		if err != nil {
			if errors.Is(err, hub.ErrEnded) {
				p.s.Log.Info("webrtc play ended: the stream ended", "path", p.ss.path, "id", p.ss.id)
			}
			p.s.end(p.ss)
			return
		}
		for _, f := range buf[:n] {
			if f.Track < 0 || f.Track >= len(p.tracks) || p.tracks[f.Track] == nil {
				continue
			}
			pkts, err := p.tracks[f.Track].packets(f)
			if err != nil {
				if drops++; drops == 1 {
					p.s.Log.Warn("webrtc play: a frame could not be packetized; dropped (further ones silently)", "path", p.ss.path, "err", err)
				}
				continue
			}
			for _, pkt := range pkts {
				if err := p.locals[f.Track].WriteRTP(pkt); err != nil && !strings.Contains(err.Error(), "closed") {
					p.s.end(p.ss)
					return
				}
			}
		}
	}
}
