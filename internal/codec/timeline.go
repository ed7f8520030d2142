package codec

import (
	"time"

	"github.com/pion/rtp"
)

// timeline puts each track's 32-bit RTP timestamps on one clock shared by
// all tracks, as durations from the stream's start.
//
// RTP timestamps of different tracks start at random values (RFC 3550
// section 5.1), so they say nothing about how tracks line up. Without RTCP
// sender reports (the hub does not carry them) the best evidence is arrival
// time, taken from Frame.Recv rather than the converter's clock so that
// frames read from the ring's backlog line up too. The first track to
// start (the leading track) starts at its arrival relative to the stream's
// start; every other track starts where the leading track is when that
// track's first frame arrives, like gortsplib's rtptime.GlobalDecoder.
//
// A frame arrives at its decoding time, not at its presentation time. For
// audio the two are equal. Video with B-frames presents its first frame
// one reorder delay after decoding it; the RTP timestamp is the
// presentation time, so a video track starts only at its first access
// unit, once that delay is known (see reorderDelay264), and is placed so
// that its decoding time is its arrival. Anchoring on the PTS instead would
// put video one reorder delay (often 80 ms) early against audio.
//
// After the start a track advances by signed 32-bit differences of its RTP
// timestamps, which carries it across timestamp wrap-around.
type timeline struct {
	since time.Time // the stream's start

	lead     *trackClock
	leadRecv time.Time
	leadPos  time.Duration // the leading track's decoding position at leadRecv
}

// trackClock is one track's position on the timeline.
type trackClock struct {
	rate     int64 // RTP clock rate, ticks per second
	started  bool
	prev     uint32
	raw      int64 // unwrapped RTP time since the track's first packet
	anchored bool
	offset   int64 // raw + offset = ticks from the stream's start
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

// pos is the timeline position of an arrival at recv.
func (tl *timeline) pos(recv time.Time) time.Duration {
	if tl.lead == nil {
		return max(recv.Sub(tl.since), 0)
	}
	return max(tl.leadPos+recv.Sub(tl.leadRecv), 0)
}

// anchor places a track, the first time, so that raw decoding time dts
// falls at recv; it makes the first track placed the leading one, and
// follows the leading track's progress. It returns the track's offset.
func (tl *timeline) anchor(c *trackClock, dts int64, recv time.Time) int64 {
	if recv.IsZero() {
		recv = time.Now()
	}
	if !c.anchored {
		c.anchored = true
		c.offset = durToTicks(tl.pos(recv), c.rate) - dts
		if tl.lead == nil {
			tl.lead = c
		}
	}
	if c == tl.lead {
		tl.leadRecv, tl.leadPos = recv, ticksToDur(dts+c.offset, c.rate)
	}
	return c.offset
}

// durToTicks converts d to ticks of a rate-Hz clock, rounded to the
// nearest tick so that ticksToDur and back is lossless, without overflowing
// for any duration a stream lasts.
func durToTicks(d time.Duration, rate int64) int64 {
	secs := int64(d / time.Second)
	rem := int64(d % time.Second)
	half := int64(time.Second) / 2
	if rem < 0 {
		half = -half
	}
	return secs*rate + (rem*rate+half)/int64(time.Second)
}

// ticksToDur converts ticks of a rate-Hz clock to a duration.
func ticksToDur(t, rate int64) time.Duration {
	if rate <= 0 {
		return 0
	}
	secs := t / rate
	rem := t % rate
	return time.Duration(secs)*time.Second + time.Duration(rem*int64(time.Second)/rate)
}
