package mpegts

import "github.com/berthmedia/berth/internal/hub"

// maxHold is how far (in media time) the frames of one track may run ahead
// of another track that sends nothing before that track is no longer
// waited for: audio that stopped, or a track that never starts, delays the
// video this long once, not for good.
const maxHold = clockRate / 2

// queued is a frame with its TS times, waiting to be muxed.
type queued struct {
	f        *hub.Frame
	au       [][]byte
	dts, pts int64
	key      bool
	disc     bool
}

// interleave muxes the queued frames in decode-time order across tracks,
// as far as that order is known: the earliest queued frame goes out once
// no other track can still send an earlier one, that is once every other
// active track has a frame queued or has already sent one at or after it.
// A source's arrival order is not its time order: ffmpeg's RTSP sends up to
// five AAC frames (about 100 ms) in one RTP packet, after the video of the
// same time, so without this a reader starting at a keyframe would get
// audio from before it, and an HLS-TS segment would begin with audio that
// belongs to the one before. The cost is the wait for the other track's
// next frame: one audio frame (about 21 ms) for a source that interleaves,
// its batching for one that does not. all muxes everything (the stream
// ended).
func (m *Muxer) interleave(all bool) {
	for {
		var head *track
		var newest int64
		for _, t := range m.tracks {
			if n := len(t.queue); n > 0 {
				if head == nil || t.queue[0].dts < head.queue[0].dts {
					head = t
				}
				newest = max(newest, t.queue[n-1].dts)
			}
		}
		if head == nil {
			return
		}
		at := head.queue[0].dts
		if !all {
			waiting := false
			for _, t := range m.tracks {
				if t != head && t.active && len(t.queue) == 0 && (!t.taken || t.last < at) {
					waiting = true
				}
			}
			if waiting {
				if newest-at <= maxHold {
					return
				}
				for _, t := range m.tracks {
					if len(t.queue) == 0 {
						t.active = false // gone quiet: no longer waited for, until it sends again
					}
				}
			}
		}
		q := head.queue[0]
		head.queue[0] = queued{}
		head.queue = head.queue[1:]
		m.emit(head, q)
	}
}
