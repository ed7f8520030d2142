package codec

import (
	"slices"
	"time"

	"github.com/pion/rtp"
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
// sender reports (the hub does not carry them) the evidence is arrival
// time, taken from Frame.Recv rather than the converter's clock so that
// frames read from the ring's backlog line up too. Each track compares the
// decoding time of what it receives with when it arrived, and takes the
// median offset over its first settleWindow: one sample would carry the
// sender's and the network's jitter (ffmpeg -re sends its aggregated AAC
// packets up to 30 ms early or late, and bursts the first video frames).
// Once every track that has data is settled, the held AUs go out in arrival
// order; a track that starts later settles on its first sample.
//
// After its start a track advances by signed 32-bit differences of its RTP
// timestamps, which carries it across timestamp wrap-around.
type timeline struct {
	since time.Time // the stream's start
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
	c.cands = append(c.cands, durToTicks(pos, c.rate)-dec)
}

// ready reports whether the track has watched enough to settle.
func (c *trackClock) ready() bool {
	return c.settled || len(c.cands) == 0 || c.last-c.first >= durToTicks(settleWindow, c.rate) || len(c.cands) >= 64
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
