package rtmp

import (
	"time"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/flv"
	"github.com/berthmedia/berth/internal/hub"
)

// An AV1 publisher (enhanced RTMP, FourCC av01) sends its sequence header
// OBU in the sequence start's AV1CodecConfigurationRecord, and may leave it
// out of its keyframes. The AV1 track format has no room for it (RTP sends
// it in-band), so every keyframe that lacks one gets the latest: RTSP and
// RTMP/FLV readers start decoding at any keyframe.

func (p *publishSession) onAV1Config(pkt flv.VideoPacket) error {
	seq, err := flv.ParseAV1Config(pkt.Data)
	if err != nil {
		p.warnOnce("vconf", "rtmp publisher sent a bad AV1 sequence start; video dropped", "err", err)
		return nil
	}
	if p.pub != nil && (p.videoTrack < 0 || p.vcodec != flv.VideoAV1) {
		p.warnOnce("vlate", "rtmp publisher changed or added video after the stream started; ignored")
		return nil
	}
	p.vcodec = flv.VideoAV1
	if seq != nil { // else it comes in-band, with the first keyframe
		p.av1Seq = seq
	}
	return p.maybePublish()
}

func (p *publishSession) onAV1Frame(m *Message, pkt flv.VideoPacket) error {
	if p.vcodec != flv.VideoAV1 {
		p.warnOnce("vnoconf", "rtmp publisher sent video frames before the sequence header; dropped until it comes")
		return nil
	}
	tu, err := flv.SplitOBUs(pkt.Data, make([][]byte, 0, 4))
	if err != nil || len(tu) == 0 {
		if err != nil {
			p.warnOnce("vobu", "rtmp publisher sent an AV1 frame with malformed OBUs; dropped", "err", err)
		}
		return nil
	}
	if seq := codec.AV1SequenceHeader(tu); seq != nil {
		p.av1Seq = seq // the frame owns the message body; nothing writes it again
	} else if pkt.Key && p.av1Seq != nil {
		tu = append([][]byte{p.av1Seq}, tu...)
	}
	if p.av1Seq == nil {
		p.warnOnce("vnoconf", "rtmp publisher sent AV1 frames before any sequence header; dropped until it comes")
		return nil
	}
	dts := p.timestamp(m.Timestamp)
	f := &hub.Frame{Key: pkt.Key, AU: tu, DTS: dts, PTS: dts, Recv: time.Now()}
	p.videoSeen = true
	return p.write(true, f)
}
