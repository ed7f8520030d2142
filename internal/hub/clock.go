package hub

import (
	"sync/atomic"
	"time"
)

// ClockRef ties a track's RTP clock to its sender's wall clock: the mapping
// an RTCP sender report carries (RFC 3550 section 6.4.1). All tracks of one
// sender share that wall clock, so refs line tracks up exactly, where
// arrival times carry each track's sending and network jitter.
type ClockRef struct {
	NTP       time.Time // the sender's wall clock at RTPTime
	RTPTime   uint32    // the track's RTP timestamp at NTP
	ClockRate int       // the track's RTP clock, ticks per second
	// Recv is when the server got the ref (its own wall clock). The first
	// ref of a stream fixes how the sender's clock maps onto the server's,
	// which may be off by any amount (cameras often send NTP from boot).
	Recv time.Time
}

// RTPAt returns the track's RTP timestamp at sender wall time t, carried
// modulo 2^32 as RTP timestamps are.
func (r ClockRef) RTPAt(t time.Time) uint32 {
	return r.RTPTime + uint32(DurationToTicks(t.Sub(r.NTP), int64(r.ClockRate)))
}

// NTPAt returns the sender wall time of RTP timestamp ts, taking ts within
// 2^31 ticks of RTPTime either way (wrap-around).
func (r ClockRef) NTPAt(ts uint32) time.Time {
	return r.NTP.Add(TicksToDuration(int64(int32(ts-r.RTPTime)), int64(r.ClockRate)))
}

// DurationToTicks converts d to ticks of a rate-Hz clock, rounded to the
// nearest tick, without overflowing for any duration.
func DurationToTicks(d time.Duration, rate int64) int64 {
	secs := int64(d / time.Second)
	rem := int64(d % time.Second)
	half := int64(time.Second) / 2
	if rem < 0 {
		half = -half
	}
	return secs*rate + (rem*rate+half)/int64(time.Second)
}

// TicksToDuration converts ticks of a rate-Hz clock to a duration.
func TicksToDuration(t, rate int64) time.Duration {
	if rate <= 0 {
		return 0
	}
	return time.Duration(t/rate)*time.Second + time.Duration(t%rate*int64(time.Second)/rate)
}

// streamClocks holds a stream's refs: one atomic pointer per track so
// readers (RTSP players sending their own reports, converters) load them
// without a lock while the publisher replaces them.
type streamClocks struct {
	refs []atomic.Pointer[ClockRef]
	// offset maps the sender's wall clock onto the server's (Recv - NTP of
	// the stream's first ref), the same for every track.
	offset time.Duration
}

// SetClockRef records the latest sender report mapping of a track. The
// publisher calls it for every sender report; out-of-range tracks and
// refs without a clock rate are ignored.
func (s *Stream) SetClockRef(track int, ref ClockRef) {
	if track < 0 || track >= len(s.Tracks) || ref.ClockRate <= 0 {
		return
	}
	c := s.clocks.Load()
	if c == nil {
		if ref.Recv.IsZero() {
			ref.Recv = time.Now()
		}
		c = &streamClocks{refs: make([]atomic.Pointer[ClockRef], len(s.Tracks)), offset: ref.Recv.Sub(ref.NTP)}
		if !s.clocks.CompareAndSwap(nil, c) {
			c = s.clocks.Load()
		}
	}
	c.refs[track].Store(&ref)
}

// ClockRef returns the latest sender report mapping of a track, if its
// publisher sent one.
func (s *Stream) ClockRef(track int) (ClockRef, bool) {
	c := s.clocks.Load()
	if c == nil || track < 0 || track >= len(c.refs) {
		return ClockRef{}, false
	}
	p := c.refs[track].Load()
	if p == nil {
		return ClockRef{}, false
	}
	return *p, true
}

// RTPTimeAt returns the track's RTP timestamp at server wall time now, from
// its publisher's sender reports: what an RTSP player's sender report
// should say, so players that sync on reports get the publisher's exact
// alignment instead of packet arrival times. ok is false without a ref.
func (s *Stream) RTPTimeAt(track int, now time.Time) (ts uint32, ok bool) {
	c := s.clocks.Load()
	if c == nil || track < 0 || track >= len(c.refs) {
		return 0, false
	}
	p := c.refs[track].Load()
	if p == nil {
		return 0, false
	}
	return p.RTPAt(now.Add(-c.offset)), true
}
