package rtpproxy

import "time"

// Reordering limits: a packet that arrives out of order is waited for up to
// reorderWindow packets or reorderDelay, whichever comes first; then the gap
// is declared lost. UDP on a LAN rarely reorders more than a few packets,
// and a reader would rather see a glitch than 100 ms more latency.
const (
	reorderWindow = 32
	reorderDelay  = 100 * time.Millisecond
	reorderSlots  = 64 // power of two > reorderWindow
	// A jump this far (either way) is a restarted sender, not reordering.
	reorderResync = 1000
)

type heldPacket struct {
	ok      bool
	seq     uint16
	payload []byte
	ts      uint32
	marker  bool
	at      time.Time
}

// reorderer puts RTP packets back in sequence order (RFC 3550 A.1) and
// counts the ones that never came. deliver gets each payload in order;
// lost is true when packets are missing just before it.
type reorderer struct {
	delay   time.Duration // 0 = reorderDelay
	started bool
	next    uint16 // sequence number expected next
	held    [reorderSlots]heldPacket
	nHeld   int

	lost      uint64
	late      uint64 // duplicates and packets that came after their gap was given up
	reordered uint64
}

type deliverFunc func(payload []byte, ts uint32, marker, lost bool)

// push takes one packet. payload may be reused by the caller after push
// returns: a held packet is copied.
func (r *reorderer) push(seq uint16, payload []byte, ts uint32, marker bool, now time.Time, deliver deliverFunc) {
	if !r.started {
		r.started, r.next = true, seq+1
		deliver(payload, ts, marker, false)
		return
	}
	d := int16(seq - r.next)
	switch {
	case d == 0:
		r.next++
		deliver(payload, ts, marker, false)
		r.drain(deliver)
	case d < 0 && d > -reorderResync:
		r.late++
	case d < 0 || d >= reorderResync:
		// The sender restarted its sequence: forget what is held.
		r.flushAll(deliver)
		r.next = seq + 1
		deliver(payload, ts, marker, true)
	default:
		slot := &r.held[seq%reorderSlots]
		if slot.ok && slot.seq == seq {
			r.late++
			return
		}
		if slot.ok || int(d) >= reorderWindow {
			// Out of room: give up on the gap up to this packet.
			r.skipTo(seq-reorderWindow+1, deliver)
			slot = &r.held[seq%reorderSlots]
		}
		if seq == r.next {
			r.next++
			deliver(payload, ts, marker, true)
			r.drain(deliver)
			return
		}
		r.reordered++
		*slot = heldPacket{ok: true, seq: seq, payload: append(slot.payload[:0], payload...), ts: ts, marker: marker, at: now}
		r.nHeld++
	}
	r.expire(now, deliver)
}

// expire gives up on a gap once its oldest held packet has waited long enough.
func (r *reorderer) expire(now time.Time, deliver deliverFunc) {
	for r.nHeld > 0 {
		oldest := time.Time{}
		for i := range r.held {
			if h := &r.held[i]; h.ok && (oldest.IsZero() || h.at.Before(oldest)) {
				oldest = h.at
			}
		}
		d := r.delay
		if d == 0 {
			d = reorderDelay
		}
		if now.Sub(oldest) < d {
			return
		}
		r.skipToFirstHeld(deliver)
	}
}

// skipToFirstHeld declares the gap before the earliest held packet lost and delivers from there.
func (r *reorderer) skipToFirstHeld(deliver deliverFunc) {
	for i := 1; i < reorderSlots; i++ {
		s := r.next + uint16(i)
		if h := &r.held[s%reorderSlots]; h.ok && h.seq == s {
			r.lost += uint64(i)
			r.next = s
			r.drainLost(deliver, true)
			return
		}
	}
	// Nothing findable: drop the holdings.
	r.clear()
}

// skipTo declares everything before seq lost, delivering held packets on the way.
func (r *reorderer) skipTo(seq uint16, deliver deliverFunc) {
	gap := false
	for int16(seq-r.next) > 0 {
		h := &r.held[r.next%reorderSlots]
		if h.ok && h.seq == r.next {
			h.ok = false
			r.nHeld--
			deliver(h.payload, h.ts, h.marker, gap)
			gap = false
		} else {
			r.lost++
			gap = true
		}
		r.next++
	}
	r.drainLost(deliver, gap)
}

func (r *reorderer) drain(deliver deliverFunc) { r.drainLost(deliver, false) }

func (r *reorderer) drainLost(deliver deliverFunc, lost bool) {
	for r.nHeld > 0 {
		h := &r.held[r.next%reorderSlots]
		if !h.ok || h.seq != r.next {
			return
		}
		h.ok = false
		r.nHeld--
		r.next++
		deliver(h.payload, h.ts, h.marker, lost)
		lost = false
	}
}

// flushAll delivers every held packet in order (at the end of a stream).
func (r *reorderer) flushAll(deliver deliverFunc) {
	for r.nHeld > 0 {
		r.skipToFirstHeld(deliver)
	}
}

func (r *reorderer) clear() {
	for i := range r.held {
		r.held[i].ok = false
	}
	r.nHeld = 0
}
