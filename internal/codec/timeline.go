package codec

import (
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
)

// timeline turns each track's 32-bit RTP timestamps into durations from the
// stream's start on one clock shared by all tracks.
//
// RTP timestamps of different tracks start at random values (RFC 3550
// section 5.1), so they say nothing about how tracks line up. Without RTCP
// sender reports (the hub does not carry them) the best evidence is arrival
// time: the first track seen (the leading track) starts at its arrival
// relative to the stream's start, and every other track starts where the
// leading track is at that track's first arrival, like gortsplib's
// rtptime.GlobalDecoder, but with the frame's receive time instead of the
// converter's clock, so frames read from the ring's backlog align too.
// After its start each track advances by signed 32-bit differences, which
// carries it across timestamp wrap-around.
type timeline struct {
	since time.Time // the stream's start

	lead     *trackClock
	leadRecv time.Time
	leadPTS  time.Duration
}

// trackClock is one track's position on the timeline.
type trackClock struct {
	rate    int64 // RTP clock rate, ticks per second
	format  format.Format
	started bool
	prev    uint32
	ticks   int64 // position in the track's clock, from the stream's start
}

// at returns the track position, in the track's clock ticks, of a packet
// with RTP timestamp ts received at recv.
func (tl *timeline) at(c *trackClock, pkt *rtp.Packet, recv time.Time) int64 {
	if recv.IsZero() {
		recv = time.Now()
	}
	if !c.started {
		var start time.Duration
		if tl.lead == nil {
			tl.lead = c
			start = max(recv.Sub(tl.since), 0)
		} else {
			start = max(tl.leadPTS+recv.Sub(tl.leadRecv), 0)
		}
		c.started, c.prev, c.ticks = true, pkt.Timestamp, durToTicks(start, c.rate)
	} else {
		c.ticks += int64(int32(pkt.Timestamp - c.prev))
		c.prev = pkt.Timestamp
	}
	// Re-anchor on the leading track's packets whose timestamp is a
	// decoding time too (all audio; video keyframes), so a track that
	// starts late lines up with where the leader is now.
	if c == tl.lead && (tl.leadRecv.IsZero() || c.format.PTSEqualsDTS(pkt)) {
		tl.leadRecv, tl.leadPTS = recv, ticksToDur(c.ticks, c.rate)
	}
	return c.ticks
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
