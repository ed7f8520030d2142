package webrtc

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtcp"
	pion "github.com/pion/webrtc/v4"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
)

// pliEvery is how often a WHIP publisher is asked for a keyframe. A
// browser encoder sends keyframes only when asked, and a new reader of any
// protocol starts on the newest keyframe in the ring: this bounds its wait.
const pliEvery = 2 * time.Second

// publisher is a WHIP peer whose RTP goes into the hub as an RTSP
// publisher's would (one frame per packet, keyframes marked).
type publisher struct {
	s      *Server
	ss     *session
	pub    *hub.Publisher
	mu     sync.Mutex        // the hub's writer takes one goroutine at a time; each remote track has its own
	tracks map[string]int    // transceiver mid -> hub track index
	codecs map[string]string // mid -> codec.H264 etc. for keyframe detection
	pts    map[string]uint8  // mid -> the hub track's payload type
}

// choice is the one codec a publisher's transceiver is answered with, so
// the browser sends that codec and the hub's track is known before media.
type choice struct {
	params pion.RTPCodecParameters
	track  func() *hub.Track
	key    string // keyframe detector codec, "" for audio
}

// The choices carry no payload type: pion then answers with the number
// the offer gave the codec (a number of Berth's own is one the browser
// never agreed to send with).
func publishChoices() map[pion.RTPCodecType][]choice {
	h264 := pion.RTPCodecParameters{RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: videoFeedback}, PayloadType: 106}
	h265 := pion.RTPCodecParameters{RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeH265, ClockRate: 90000, RTCPFeedback: videoFeedback}}
	av1 := pion.RTPCodecParameters{RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeAV1, ClockRate: 90000, RTCPFeedback: videoFeedback}}
	opus := pion.RTPCodecParameters{RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}}
	pcmu := pion.RTPCodecParameters{RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypePCMU, ClockRate: 8000}}
	pcma := pion.RTPCodecParameters{RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypePCMA, ClockRate: 8000}}
	return map[pion.RTPCodecType][]choice{
		pion.RTPCodecTypeVideo: {
			{h264, func() *hub.Track { return codec.H264Track(nil, nil) }, codec.H264},
			{h265, func() *hub.Track { return codec.H265Track(nil, nil, nil) }, codec.H265},
			// AV1 last: a browser offers it after H.264, and the SDP gets no
			// profile or level (the sequence header travels in-band, in the
			// keyframes, which is where the RTP-to-AU converter reads it).
			{av1, func() *hub.Track { return codec.AV1Track(nil) }, codec.AV1},
		},
		pion.RTPCodecTypeAudio: {
			{opus, func() *hub.Track { return codec.OpusTrack(2) }, ""},
			{pcmu, func() *hub.Track { return codec.G711Track(false, 8000, 1) }, ""},
			{pcma, func() *hub.Track { return codec.G711Track(true, 8000, 1) }, ""},
		},
	}
}

// pick returns the first choice the offer has, with the offer's own
// parameters (its payload type: the answer must use the offer's number).
// H.264 must be packetization-mode 1; the exact profile line is preferred.
func pick(choices []choice, offered []pion.RTPCodecParameters) (*choice, pion.RTPCodecParameters) {
	for i, c := range choices {
		var loose *pion.RTPCodecParameters
		for j, o := range offered {
			if !strings.EqualFold(o.MimeType, c.params.MimeType) {
				continue
			}
			if c.params.MimeType == pion.MimeTypeH264 && !strings.Contains(o.SDPFmtpLine, "packetization-mode=1") {
				continue
			}
			if o.SDPFmtpLine == c.params.SDPFmtpLine {
				return &choices[i], o
			}
			if loose == nil {
				loose = &offered[j]
			}
		}
		if loose != nil {
			return &choices[i], *loose
		}
	}
	return nil, pion.RTPCodecParameters{}
}

// publish answers a WHIP offer and claims path in the hub.
func (s *Server) publish(path string, who hub.Origin, offer string) (*session, string, error) {
	pc, err := s.api.NewPeerConnection(pion.Configuration{})
	if err != nil {
		return nil, "", &httpError{http.StatusInternalServerError, err.Error()}
	}
	p := &publisher{s: s, tracks: map[string]int{}, codecs: map[string]string{}, pts: map[string]uint8{}}
	ss := &session{id: who.ID, publish: true, path: path, pc: pc, done: make(chan struct{}), keyframe: make(chan struct{}, 1), connected: make(chan struct{})}
	p.ss = ss
	var tracks []*hub.Track
	setup := func() error {
		choices := publishChoices()
		for _, tr := range pc.GetTransceivers() {
			var picked *choice
			var params pion.RTPCodecParameters
			if tr.Receiver() != nil {
				picked, params = pick(choices[tr.Kind()], tr.Receiver().GetParameters().Codecs)
			}
			if picked == nil || tr.Mid() == "" {
				s.Log.Info("webrtc publish: a track is left out: its codecs are none Berth carries (H.264, H.265, AV1, Opus, G.711)", "path", path, "kind", tr.Kind().String())
				tr.Stop()
				continue
			}
			if err := tr.SetCodecPreferences([]pion.RTPCodecParameters{params}); err != nil {
				return &httpError{http.StatusNotAcceptable, "codec " + params.MimeType + ": " + err.Error()}
			}
			t := picked.track()
			p.tracks[tr.Mid()] = len(tracks)
			p.codecs[tr.Mid()] = picked.key
			p.pts[tr.Mid()] = t.Format.PayloadType()
			tracks = append(tracks, t)
		}
		if len(tracks) == 0 {
			return &httpError{http.StatusNotAcceptable, "the offer has no track Berth can carry (send H.264, H.265 or AV1 video, Opus or G.711 audio)"}
		}
		return nil
	}
	pc.OnTrack(p.onTrack)
	answer, err := s.negotiate(pc, offer, setup)
	if err != nil {
		pc.Close()
		return nil, "", err
	}
	pub, err := s.Hub.Publish(path, who, hub.KindRTP, tracks, nil)
	if err != nil {
		pc.Close()
		var be *hub.BusyError
		if errors.As(err, &be) {
			return nil, "", &httpError{http.StatusConflict, err.Error() + " (stop the other publisher, or set [general] allow_takeover=1)"}
		}
		return nil, "", &httpError{http.StatusServiceUnavailable, err.Error()}
	}
	p.mu.Lock()
	p.pub = pub
	p.mu.Unlock()
	ss.close = pub.Close
	if err := s.add(ss); err != nil {
		pub.Close()
		pc.Close()
		return nil, "", err
	}
	go func() {
		select {
		case <-pub.Done(): // taken over, or the server shuts down
			s.end(ss)
		case <-ss.done:
		}
	}()
	s.Log.Info("webrtc publish started", "path", path, "remote", who.Remote, "id", ss.id, "tracks", len(tracks))
	return ss, answer, nil
}

// onTrack copies a remote track's packets into the hub. Read returns what
// pion's interceptors passed (NACKs for losses go out from them).
func (p *publisher) onTrack(remote *pion.TrackRemote, recv *pion.RTPReceiver) {
	mid := ""
	for _, tr := range p.ss.pc.GetTransceivers() {
		if tr.Receiver() == recv {
			mid = tr.Mid()
		}
	}
	idx, ok := p.tracks[mid]
	if !ok {
		return
	}
	pt := p.pts[mid]
	p.s.Log.Info("webrtc publish: track started", "path", p.ss.path, "track", idx, "codec", remote.Codec().MimeType, "fmtp", remote.Codec().SDPFmtpLine)
	det := &codec.KeyDetector{Codec: p.codecs[mid]}
	if det.Codec != "" {
		go p.askKeyframes(uint32(remote.SSRC()))
	}
	buf := make([]byte, 1500)
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			return
		}
		pkt := buf[:n]
		h, ok := codec.ParseRTP(pkt)
		if !ok {
			continue
		}
		key := det.Key(h)
		f := hub.NewRTPFrame(idx, pkt, key, time.Now())
		// The hub track's payload type, whatever number the offer used.
		f.Data[hub.RTPPrefix+1] = f.Data[hub.RTPPrefix+1]&0x80 | pt&0x7f
		p.mu.Lock()
		if p.pub != nil {
			p.pub.Write(f)
		}
		p.mu.Unlock()
	}
}

// minPLIGap keeps players' forwarded keyframe requests from making the
// publisher send nothing but keyframes.
const minPLIGap = 500 * time.Millisecond

// askKeyframes sends a PLI at once, every pliEvery, and when a player
// asks (at most every minPLIGap), until the session ends.
func (p *publisher) askKeyframes(ssrc uint32) {
	t := time.NewTicker(pliEvery)
	defer t.Stop()
	var last time.Time
	for {
		if time.Since(last) >= minPLIGap {
			if err := p.ss.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
				return
			}
			last = time.Now()
		}
		select {
		case <-t.C:
		case <-p.ss.keyframe:
		case <-p.ss.done:
			return
		}
	}
}
