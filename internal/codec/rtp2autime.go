// Timing of the RTP to AU conversion: audio arrival samples, holding AUs while a
// track's timeline settles, and sender-report clock references.

package codec

import (
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/berthmedia/berth/internal/hub"
)

// audioSample records the arrival of an audio packet of n AAC frames (or
// one frame of another codec) starting at raw ticks. Senders pack several
// AAC frames into one packet and send it when the next frame does not fit
// (ffmpeg's rtpenc_aac; a live encoder cannot send a frame before its last
// sample either), so an AAC packet arrives at the end of its last frame.
// Other codecs put one frame in a packet, sent at its start by a file
// pusher such as ffmpeg -re.
func (d *depacketizer) audioSample(t *depackTrack, raw int64, n int, recv time.Time) {
	if t.kind == kindAAC || t.kind == kindLATM {
		raw += int64(n) * mpeg4audio.SamplesPerAccessUnit
	}
	t.clock.sample(raw, d.tl.pos(recv))
}

// emit outputs an AU with raw timestamps, or holds it while the timeline
// settles (see timeline).
func (d *depacketizer) emit(t *depackTrack, f *hub.Frame, pts, dts int64, recv time.Time, out []*hub.Frame) []*hub.Frame {
	if d.settled {
		if !t.clock.settled {
			t.clock.settle()
			if t.clock.hasRef {
				d.adoptRefs()
			}
		}
		return append(out, d.finish(t, f, pts, dts))
	}
	if len(d.held) == 0 {
		d.holdStart = recv
	}
	d.held = append(d.held, heldAU{t: t, f: f, pts: pts, dts: dts})
	ready := recv.Sub(d.holdStart) >= 2*settleWindow || len(d.held) >= 4096
	if !ready {
		ready = true
		for _, t := range d.tracks {
			if t != nil && !t.clock.ready() {
				ready = false
			}
		}
	}
	if ready {
		out = d.flush(out)
	}
	return out
}

// flush settles every track and releases the held AUs in arrival order.
// The converter calls it at the end of the stream too.
func (d *depacketizer) flush(out []*hub.Frame) []*hub.Frame {
	d.settled = true
	for _, t := range d.tracks {
		if t != nil && len(t.clock.cands) > 0 {
			t.clock.settle()
		}
	}
	for _, h := range d.held {
		h.t.clock.settle()
	}
	d.adoptRefs()
	for _, h := range d.held {
		d.shift = max(d.shift, -hub.TicksToDuration(h.dts+h.t.clock.offset, h.t.clock.rate))
	}
	for i, h := range d.held {
		out = append(out, d.finish(h.t, h.f, h.pts, h.dts))
		d.held[i] = heldAU{}
	}
	d.held = d.held[:0]
	return out
}

// syncRef takes the publisher's latest sender report for t, if it sent a
// new one since the last packet.
func (d *depacketizer) syncRef(t *depackTrack) {
	ref, ok := d.stream.ClockRef(t.index)
	if !ok || !t.clock.started || int64(ref.ClockRate) != t.clock.rate ||
		(t.clock.hasRef && ref.RTPTime == t.clock.ref.RTPTime && ref.NTP.Equal(t.clock.ref.NTP)) {
		return
	}
	if !d.tl.anchored {
		d.tl.anchor, d.tl.anchored = ref.NTP, true
	}
	t.clock.applyRef(ref, d.tl.anchor)
	if d.settled && t.clock.settled {
		d.adoptRefs()
	}
}

// adoptRefs places every settled track that has a sender report on the
// sender's axis (see timeline). A track joins that axis where its arrival
// put it, unless it has sent nothing yet and the axis is already placed;
// the shift only grows, so tracks that already sent frames only move
// later and stay monotonic. Reports that come later update their track.
func (d *depacketizer) adoptRefs() {
	placed := d.tl.hasShift
	for _, t := range d.tracks {
		if t == nil || !t.clock.hasRef || !t.clock.settled || t.clock.onRef {
			continue
		}
		t.clock.onRef = true
		if placed && !t.emitted {
			continue
		}
		if c := t.clock.refShift(); !d.tl.hasShift || c > d.tl.ntpShift {
			d.tl.ntpShift, d.tl.hasShift = c, true
		}
	}
	for _, t := range d.tracks {
		if t != nil && t.clock.onRef {
			t.clock.offset = t.clock.refOffset(d.tl.ntpShift)
		}
	}
}

// finish places f on the stream's clock.
func (d *depacketizer) finish(t *depackTrack, f *hub.Frame, pts, dts int64) *hub.Frame {
	f.PTS, f.DTS = t.monotonic(d.shift+hub.TicksToDuration(pts+t.clock.offset, t.clock.rate), d.shift+hub.TicksToDuration(dts+t.clock.offset, t.clock.rate))
	return f
}
