package hub

import (
	"sync"
	"sync/atomic"
	"time"
)

// Kind says what a ring's frames carry. A stream is published in one kind;
// readers of another kind get a view filled by a converter on demand.
type Kind uint8

const (
	// KindRTP frames carry one RTP packet each (RTSP, raw RTP ingest).
	KindRTP Kind = iota
	// KindAU frames carry one access unit each (RTMP, MPEG-TS, PS ingest).
	KindAU
	numKinds
)

func (k Kind) String() string {
	switch k {
	case KindRTP:
		return "rtp"
	case KindAU:
		return "au"
	}
	return "kind?"
}

// RTPPrefix is the room reserved in front of an RTP frame's packet for the
// RTSP interleaved header ('$', channel, length), so a TCP reader can send
// Data as is, without building a header per packet per reader.
const RTPPrefix = 4

// Frame is one immutable unit in a stream's ring. The writer fills it before
// Write; after that nobody changes it, so every reader shares it.
type Frame struct {
	Track int  // index into Stream.Tracks
	Key   bool // a reader may start here (a video keyframe, or any frame of an audio-only stream)
	mid   bool // set by Write: a video RTP packet whose frame's last packet is still to come (in Key's padding)

	// KindRTP: Data is RTPPrefix bytes of room followed by the marshalled RTP
	// packet; Data[0:4] is the interleaved header for channel 2*Track.
	Data []byte

	// KindAU: AU holds the access unit: NAL units without start codes for
	// H.264/H.265, one frame for audio codecs. PTS and DTS are in the track's
	// clock from the stream's start.
	AU  [][]byte
	PTS time.Duration
	DTS time.Duration

	// Recv is when the frame reached the server (monotonic), for sender
	// reports and latency measurement.
	Recv time.Time

	seq uint64 // position in the ring, set by Write
	enc [maxEncodings]encSlot
}

// encSlot caches one encoding of a frame. mu makes the build run once even
// when a thousand readers reach a new frame together; it is per encoding so
// a build may itself use another encoding of the same frame.
type encSlot struct {
	p  atomic.Pointer[[]byte]
	mu sync.Mutex
}

// MidFrame reports a video RTP packet that is not the last of its video
// frame (no marker bit, on a track whose packets carry markers): more of the
// same frame is on its way, so a reader gains nothing by writing it alone.
// Set by Write; false for every other frame.
func (f *Frame) MidFrame() bool { return f.mid }

// RTP returns the RTP packet of a KindRTP frame.
func (f *Frame) RTP() []byte { return f.Data[RTPPrefix:] }

// NewRTPFrame copies pkt into a new frame with the interleaved header filled for
// channel 2*track. One allocation holds both.
func NewRTPFrame(track int, pkt []byte, key bool, recv time.Time) *Frame {
	buf := make([]byte, RTPPrefix+len(pkt))
	buf[0] = '$'
	buf[1] = byte(2 * track)
	buf[2] = byte(len(pkt) >> 8)
	buf[3] = byte(len(pkt))
	copy(buf[RTPPrefix:], pkt)
	return &Frame{Track: track, Key: key, Data: buf, Recv: recv}
}

// Encoding names a cached per-format serialisation of a frame (RTMP chunks,
// FLV tags). Protocol packages register one at init.
type Encoding int

const maxEncodings = 6

var numEncodings atomic.Int32

// RegisterEncoding reserves a cache slot on every frame. Call it from a
// package-level var initialiser.
func RegisterEncoding() Encoding {
	n := numEncodings.Add(1) - 1
	if n >= maxEncodings {
		panic("hub: too many encodings; raise maxEncodings")
	}
	return Encoding(n)
}

// Encoded returns the bytes of f in encoding e, building them with build the
// first time any reader asks; build runs once per frame and encoding, and
// readers that arrive during the build wait for it and share the result.
// build must be a plain function value (not a closure made per call) to keep
// the fan-out path free of allocations, and must not ask for encoding e of
// the same frame.
func (f *Frame) Encoded(e Encoding, build func(*Frame) []byte) []byte {
	slot := &f.enc[e]
	if p := slot.p.Load(); p != nil {
		return *p
	}
	slot.mu.Lock()
	defer slot.mu.Unlock()
	if p := slot.p.Load(); p != nil {
		return *p
	}
	b := build(f)
	slot.p.Store(&b)
	return b
}
