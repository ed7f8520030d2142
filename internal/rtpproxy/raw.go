package rtpproxy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/sdpunmarshaler"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
)

// rawDesc is the payload description of a port opened for raw RTP (H.264,
// H.265, AAC, Opus... as RTSP would carry them): an SDP whose media tell
// each payload type's codec. Such a stream is published as RTP, so RTSP
// readers get the packets as sent and the hub converts for the others.
type rawDesc struct {
	sdp    []byte
	tracks []*hub.Track
	byPT   map[uint8]int // payload type -> track
	codecs []string      // per track, for the keyframe detector
}

// ErrBadSDP is returned by OpenPort for a payload description that cannot be used.
var ErrBadSDP = errors.New("the payload description (SDP) is invalid")

func parseRawDesc(b []byte) (*rawDesc, error) {
	ss, err := sdpunmarshaler.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	var desc description.Session
	if err := desc.Unmarshal2(ss); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	d := &rawDesc{sdp: b, byPT: map[uint8]int{}}
	for _, m := range desc.Medias {
		if len(m.Formats) == 0 {
			continue
		}
		f := m.Formats[0]
		if _, dup := d.byPT[f.PayloadType()]; dup {
			return nil, fmt.Errorf("%w: payload type %d is used by two media; give each its own", ErrBadSDP, f.PayloadType())
		}
		d.byPT[f.PayloadType()] = len(d.tracks)
		d.tracks = append(d.tracks, &hub.Track{Format: f, Media: m, Video: m.Type == description.MediaTypeVideo})
		name := strings.ToUpper(f.Codec())
		switch name {
		case "H264":
			name = codec.H264
		case "H265":
			name = codec.H265
		}
		d.codecs = append(d.codecs, name)
	}
	if len(d.tracks) == 0 {
		return nil, fmt.Errorf("%w: it has no media with a format", ErrBadSDP)
	}
	return d, nil
}

// rawState is a raw RTP stream's publishing side. It keeps one reorderer
// per SSRC: audio and video sent to one port have their own sequence spaces.
type rawState struct {
	desc    *rawDesc
	pub     *hub.Publisher
	refused bool
	keys    []codec.KeyDetector
	reorder map[uint32]*reorderer
	now     time.Time
	lost    bool
}

// handleRaw takes one packet of a raw RTP stream; s.mu is held.
func (s *session) handleRaw(h codec.RTPHeader, pkt []byte, now time.Time) {
	r := s.raw
	if r.refused {
		return
	}
	if r.pub == nil {
		origin := hub.Origin{Proto: "rtp", Remote: s.remote, ID: ssrcHex(h.SSRC)}
		pub, err := s.srv.Hub.Publish(s.path, origin, hub.KindRTP, r.desc.tracks, r.desc.sdp)
		if err != nil {
			r.refused = true
			s.log.Warn("RTP stream refused by the hub; its packets are dropped until it stops",
				"path", s.path, "remote", s.remote, "err", err)
			return
		}
		r.pub = pub
		s.log.Info("RTP stream published", "path", s.path, "remote", s.remote, "tracks", r.desc.codecs, "payload", "rtp")
	}
	if _, ok := r.desc.byPT[h.PayloadType]; !ok {
		s.badPT++
		return
	}
	ro := r.reorder[h.SSRC]
	if ro == nil {
		if len(r.reorder) >= 8 { // a port carries a stream's few media, not a crowd of senders
			s.badPT++
			return
		}
		ro = &reorderer{delay: s.srv.reorderDelay}
		r.reorder[h.SSRC] = ro
	}
	r.now = now
	ro.push(h.Seq, pkt, h.Timestamp, h.Marker, now, s.deliverRaw)
}

// deliverRaw writes one packet, in sequence order, as a hub frame.
func (s *session) deliverRaw(pkt []byte, _ uint32, _, _ bool) {
	r := s.raw
	h, ok := codec.ParseRTP(pkt)
	if !ok || r.pub == nil {
		return
	}
	t, ok := r.desc.byPT[h.PayloadType]
	if !ok {
		return
	}
	key := r.keys[t].Key(h)
	r.pub.Write(hub.NewRTPFrame(t, pkt, key, r.now))
}

func (r *rawState) lostTotal() (n uint64) {
	for _, ro := range r.reorder {
		n += ro.lost
	}
	return n
}
