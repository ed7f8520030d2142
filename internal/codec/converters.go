package codec

import (
	"log/slog"

	"github.com/berthmedia/berth/internal/hub"
)

// Converters returns the conversions between RTP packets and access units,
// for hub.Options.Converters. log receives one line per track that cannot
// be converted and rate-limited lines about broken input; nil discards.
//
// RTP to AU (an RTSP publisher read as RTMP/FLV):
//   - Timestamps are durations from the stream's start, monotonic per
//     track, with audio and video aligned by the publisher's RTCP sender
//     reports where it sends them (hub.ClockRef), else by arrival time
//     (see timeline): when the converter starts it holds back each
//     track's first 500 ms (at most 1 s of arrivals) to place it by the
//     median arrival.
//   - H.264/H.265 DTS comes from the bitstream's picture order (B-frames).
//   - Every keyframe AU carries its parameter sets (SPS/PPS, and VPS for
//     H.265): the latest seen in-band, else the SDP's. hub.Track is
//     immutable after publish, so this is where a writer finds current ones.
//   - An AU with a lost packet is dropped; video resumes at the next
//     keyframe when its decoding order can no longer be followed.
//
// AU to RTP (an RTMP/MPEG-TS publisher read as RTSP): RTP timestamp = PTS
// in the track's clock, one random SSRC and gapless sequence numbers per
// track, keyframe AUs prefixed with the track's parameter sets when they
// lack them, and Key set on the first packet of a keyframe.
func Converters(log *slog.Logger) map[[2]hub.Kind]hub.Converter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return map[[2]hub.Kind]hub.Converter{
		{hub.KindRTP, hub.KindAU}: func(s *hub.Stream, src *hub.Reader, dst *hub.Writer) {
			d := newDepacketizer(s, log)
			run(src, dst, d.push, d.flush)
		},
		{hub.KindAU, hub.KindRTP}: func(s *hub.Stream, src *hub.Reader, dst *hub.Writer) {
			p := newPacketizer(s, log)
			run(src, dst, p.push, nil)
		},
	}
}

// run feeds src's frames through push into dst until src ends, then
// writes what flush still holds. The hub closes src when the converter
// returns.
func run(src *hub.Reader, dst *hub.Writer, push func(*hub.Frame, []*hub.Frame) []*hub.Frame, flush func([]*hub.Frame) []*hub.Frame) {
	in := make([]*hub.Frame, 64)
	var out []*hub.Frame
	for {
		n, err := src.Read(in)
		if err != nil {
			if flush != nil {
				for _, o := range flush(out[:0]) {
					dst.Write(o)
				}
			}
			return
		}
		for i, f := range in[:n] {
			out = push(f, out[:0])
			for _, o := range out {
				dst.Write(o)
			}
			in[i] = nil // let the ring's frames go when the ring does
		}
		clear(out)
	}
}
