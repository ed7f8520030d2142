// Completing access units: parameter sets, key flags, DTS and the frame
// duration and reorder delay read from the SPS.

package codec

import (
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/berthmedia/berth/internal/hub"
)

// videoAU completes an H.264/H.265 access unit: parameter sets, key flag,
// DTS, and monotonic timestamps.
func (d *depacketizer) videoAU(t *depackTrack, au [][]byte, ticks int64, recv time.Time, out []*hub.Frame) []*hub.Frame {
	au = dropEmpty(au)
	if len(au) == 0 {
		return out
	}
	var key bool
	if t.kind == kindH264 {
		au, key = t.withParams264(au)
	} else {
		au, key = t.withParams265(au)
	}
	if t.waitKey && !key {
		return out
	}
	var dtsTicks int64
	var err error
	if t.kind == kindH264 {
		dtsTicks, err = t.dts264.Extract(au, ticks)
	} else {
		dtsTicks, err = t.dts265.Extract(au, ticks)
	}
	if err != nil {
		// Start over at the next keyframe with a fresh extractor: its
		// state no longer matches the stream.
		t.dts264, t.dts265 = h264.DTSExtractor{}, h265.DTSExtractor{}
		t.dts264.Initialize()
		t.dts265.Initialize()
		if !t.waitKey {
			d.drop(t, "cannot compute the decoding time: "+err.Error()+"; waiting for the next keyframe")
		}
		t.waitKey = true
		return out
	}
	if t.waitKey {
		t.reorder, t.frameDur = t.reorderDelay(ticks, dtsTicks), t.frameDuration()
	}
	t.waitKey = false
	// Frames arrive at their decoding time: a keyframe's is one reorder
	// delay before its PTS, and the next ones follow it by a frame each
	// (the DTS extractor's own guesses lag behind at the start).
	if key {
		t.keyDec, t.sinceKey = ticks-t.reorder, 0
	} else {
		t.sinceKey++
	}
	if key || t.frameDur > 0 {
		t.clock.sample(t.keyDec+t.sinceKey*t.frameDur, d.tl.pos(recv))
	}
	return d.emit(t, &hub.Frame{Track: t.index, Key: key, AU: au, Recv: recv}, ticks, dtsTicks, recv, out)
}

func (d *depacketizer) audioAU(t *depackTrack, au []byte, ticks int64, recv time.Time, out []*hub.Frame) []*hub.Frame {
	if len(au) == 0 {
		return out
	}
	return d.emit(t, &hub.Frame{Track: t.index, AU: [][]byte{au}, Recv: recv}, ticks, ticks, recv, out)
}

// reorderDelay is how long after decoding the first keyframe is shown, in
// clock ticks. H.265's DTS extractor already starts that far before the
// PTS (from sps_max_num_reorder_pics); H.264's starts at the PTS, so the
// delay comes from the SPS: max_num_reorder_frames frames of the VUI frame
// rate. Without those fields it is 0, as for streams without B-frames.
func (t *depackTrack) reorderDelay(pts, dts int64) int64 {
	if t.kind == kindH265 {
		return max(pts-dts, 0)
	}
	var sps h264.SPS
	if len(t.params[0]) == 0 || sps.Unmarshal(t.params[0]) != nil || sps.VUI == nil ||
		sps.VUI.BitstreamRestriction == nil || sps.VUI.TimingInfo == nil || sps.VUI.TimingInfo.TimeScale == 0 {
		return 0
	}
	frames := int64(min(sps.VUI.BitstreamRestriction.MaxNumReorderFrames, 16))
	// A frame lasts two ticks of the VUI clock (H.264 E.2.1).
	return frames * t.clock.rate * 2 * int64(sps.VUI.TimingInfo.NumUnitsInTick) / int64(sps.VUI.TimingInfo.TimeScale)
}

// frameDuration is the video frame duration in ticks from the SPS's VUI
// timing, or 0 when the SPS does not say.
func (t *depackTrack) frameDuration() int64 {
	switch t.kind {
	case kindH264:
		var sps h264.SPS
		if len(t.params[0]) == 0 || sps.Unmarshal(t.params[0]) != nil || sps.VUI == nil ||
			sps.VUI.TimingInfo == nil || sps.VUI.TimingInfo.TimeScale == 0 {
			return 0
		}
		return t.sane(t.clock.rate * 2 * int64(sps.VUI.TimingInfo.NumUnitsInTick) / int64(sps.VUI.TimingInfo.TimeScale))
	case kindH265:
		var sps h265.SPS
		if len(t.params[1]) == 0 || sps.Unmarshal(t.params[1]) != nil || sps.VUI == nil ||
			sps.VUI.TimingInfo == nil || sps.VUI.TimingInfo.TimeScale == 0 {
			return 0
		}
		return t.sane(t.clock.rate * int64(sps.VUI.TimingInfo.NumUnitsInTick) / int64(sps.VUI.TimingInfo.TimeScale))
	}
	return 0
}

// sane keeps a frame duration between 1/240 s and 1 s; outside, the SPS
// is wrong and the duration unknown.
func (t *depackTrack) sane(d int64) int64 {
	if d < t.clock.rate/240 || d > t.clock.rate {
		return 0
	}
	return d
}

// monotonic keeps DTS from going backwards or below zero (a reordered or
// stray packet, a B-frame lead-in at the very start), and PTS >= DTS, which
// FLV's composition time needs.
func (t *depackTrack) monotonic(pts, dts time.Duration) (time.Duration, time.Duration) {
	dts = max(dts, 0)
	if t.emitted && dts < t.lastDTS {
		dts = t.lastDTS
	}
	t.emitted, t.lastDTS = true, dts
	return max(pts, dts), dts
}

// withParams264 records in-band SPS/PPS and makes every IDR AU carry them:
// hub.Track is immutable after publish, so a reader that starts at a
// keyframe (or a writer that must send a new sequence header) finds the
// current parameter sets in the keyframe itself.
func (t *depackTrack) withParams264(au [][]byte) ([][]byte, bool) {
	var hasSPS, hasPPS, key bool
	for _, n := range au {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			hasSPS, t.params[0] = true, n
		case h264.NALUTypePPS:
			hasPPS, t.params[1] = true, n
		case h264.NALUTypeIDR:
			key = true
		}
	}
	if !key || (hasSPS && hasPPS) {
		return au, key
	}
	out := make([][]byte, 0, len(au)+2)
	if !hasSPS && len(t.params[0]) > 0 {
		out = append(out, t.params[0])
	}
	if !hasPPS && len(t.params[1]) > 0 {
		out = append(out, t.params[1])
	}
	return append(out, au...), key
}

func (t *depackTrack) withParams265(au [][]byte) ([][]byte, bool) {
	var has [3]bool
	for _, n := range au {
		switch typ := h265.NALUType((n[0] >> 1) & 0x3f); typ {
		case h265.NALUType_VPS_NUT, h265.NALUType_SPS_NUT, h265.NALUType_PPS_NUT:
			i := int(typ - h265.NALUType_VPS_NUT)
			has[i], t.params[i] = true, n
		}
	}
	key := h265.IsRandomAccess(au)
	if !key || (has[0] && has[1] && has[2]) {
		return au, key
	}
	out := make([][]byte, 0, len(au)+3)
	for i, p := range t.params {
		if !has[i] && len(p) > 0 {
			out = append(out, p)
		}
	}
	return append(out, au...), key
}

// dropEmpty removes empty NAL units, which the bitstream code downstream
// indexes without checking. It copies only when there is one.
func dropEmpty(au [][]byte) [][]byte {
	for i, n := range au {
		if len(n) == 0 {
			out := append([][]byte(nil), au[:i]...)
			for _, n := range au[i+1:] {
				if len(n) > 0 {
					out = append(out, n)
				}
			}
			return out
		}
	}
	return au
}

// drop counts a dropped packet or AU and logs at most every 5 s per track.
func (d *depacketizer) drop(t *depackTrack, cause string) {
	t.drops++
	if now := time.Now(); now.Sub(t.lastWarn) >= 5*time.Second {
		t.lastWarn = now
		d.log.Warn("RTP to AU: dropped a broken packet or access unit; readers of this track may see a glitch until the next keyframe",
			"path", d.path, "track", t.index, "codec", t.kind.String(), "cause", cause, "drops_total", t.drops)
	}
}
