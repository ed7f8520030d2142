package codec

import (
	"slices"
	"time"

	"github.com/pion/rtp"

	"github.com/berthmedia/berth/internal/hub"
)

// settleWindow is how much of each track the RTP to AU conversion watches
// before it fixes where the track sits on the stream's clock; the access
// units of that span are held back, once, when the converter starts.
const settleWindow = 500 * time.Millisecond

// timeline puts the tracks' 32-bit RTP timestamps on one clock, as
// durations from the stream's start.
//
// RTP timestamps of different tracks start at random values (RFC 3550
// section 5.1), so they say nothing about how tracks line up. Without RTCP
// sender reports the evidence is arrival time, taken from Frame.Recv
// rather than the converter's clock so that frames read from the ring's
// backlog line up too. Each track compares the
// decoding time of what it receives with when it arrived, and takes the
// median offset over its first settleWindow: one sample would carry the
// sender's and the network's jitter (ffmpeg -re sends its aggregated AAC
// packets up to 30 ms early or late, and bursts the first video frames).
// Once every track that has data is settled, the held AUs go out in arrival
// order; a track that starts later settles on its first sample.
//
// After its start a track advances by signed 32-bit differences of its RTP
// timestamps, which carries it across timestamp wrap-around.
//
// Sender reports (RTCP SR, RFC 3550 section 6.4.1), where the publisher
// sends them, replace the evidence of arrival: they tie each track's RTP
// clock to the sender's wall clock, the same for all its tracks, so tracks
// with a report sit on one axis, the sender's, exactly as it captured them.
// One shift, the same for all of them, moves that axis onto the stream's
// clock; it comes from the arrival medians (the largest, so that no track
// is placed before it arrived). A report that comes after a track's frames
// went out only ever moves tracks later, never back.
type timeline struct {
	since time.Time // the stream's start

	// anchor is the sender wall time of the first report; reports are
	// kept relative to it, so that ticks never overflow.
	anchor   time.Time
	anchored bool
	ntpShift time.Duration // stream position = sender time - anchor + ntpShift
	hasShift bool
}

// pos is an arrival's position on the stream's clock.
func (tl *timeline) pos(recv time.Time) time.Duration {
	if recv.IsZero() {
		recv = time.Now()
	}
	return recv.Sub(tl.since)
}

// trackClock is one track's position on the timeline.
type trackClock struct {
	rate    int64 // RTP clock rate, ticks per second
	started bool
	prev    uint32
	raw     int64 // unwrapped RTP time since the track's first packet

	settled bool
	offset  int64   // raw + offset = ticks from the stream's start
	cands   []int64 // candidate offsets while not settled
	first   int64   // decoding time of the first sample, raw
	last    int64

	ref    hub.ClockRef // the sender report in use, when hasRef
	hasRef bool
	refRaw int64         // ref.RTPTime as raw ticks of this track
	refNTP time.Duration // ref.NTP - timeline.anchor
	onRef  bool          // offset follows ref and timeline.ntpShift
}

// applyRef takes a sender report; the track must have started. RTPTime is
// read within 2^31 ticks of the latest packet, across wrap-around.
func (c *trackClock) applyRef(ref hub.ClockRef, anchor time.Time) {
	c.ref, c.hasRef = ref, true
	c.refRaw = c.raw + int64(int32(ref.RTPTime-c.prev))
	c.refNTP = ref.NTP.Sub(anchor)
}

// refShift is the timeline shift that keeps the track where its current
// offset puts it.
func (c *trackClock) refShift() time.Duration {
	return hub.TicksToDuration(c.offset+c.refRaw, c.rate) - c.refNTP
}

// refOffset is the track's offset on the sender's axis moved by shift.
func (c *trackClock) refOffset(shift time.Duration) int64 {
	return hub.DurationToTicks(c.refNTP+shift, c.rate) - c.refRaw
}

// unwrap returns the packet's RTP timestamp as raw ticks since the track's
// first packet, carried across wrap-around.
func (c *trackClock) unwrap(pkt *rtp.Packet) int64 {
	if !c.started {
		c.started, c.prev, c.raw = true, pkt.Timestamp, 0
		return 0
	}
	c.raw += int64(int32(pkt.Timestamp - c.prev))
	c.prev = pkt.Timestamp
	return c.raw
}

// sample records that media with raw decoding time dec arrived at pos.
func (c *trackClock) sample(dec int64, pos time.Duration) {
	if c.settled || len(c.cands) >= 256 {
		return
	}
	if len(c.cands) == 0 {
		c.first = dec
	}
	c.last = dec
	c.cands = append(c.cands, hub.DurationToTicks(pos, c.rate)-dec)
}

// ready reports whether the track has watched enough to settle. A track
// with the publisher's sender report needs no more: the report, not the
// arrival median, places it against the other tracks, so a converter that
// starts on a running stream does not hold its first frames.
func (c *trackClock) ready() bool {
	return c.settled || len(c.cands) == 0 || (c.hasRef && len(c.cands) > 0) ||
		c.last-c.first >= hub.DurationToTicks(settleWindow, c.rate) || len(c.cands) >= 64
}

// settle fixes the track's offset at the median of its samples.
func (c *trackClock) settle() {
	if c.settled {
		return
	}
	c.settled = true
	if len(c.cands) == 0 {
		return
	}
	slices.Sort(c.cands)
	c.offset = c.cands[len(c.cands)/2]
	c.cands = nil
}
