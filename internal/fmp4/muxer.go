// Package fmp4 turns a hub stream into fragmented MP4 (CMAF): one shared
// muxer per stream, started by its first reader and stopped a grace time
// after its last, whose init segment and moof+mdat fragments every reader
// gets as the same bytes. HTTP-fMP4 and WS-fMP4 (handler.go) read it now;
// HLS-fMP4/LL-HLS parts and MP4 recording are meant to read the same
// fragments (docs/muxers.md). Boxes are written by mediacommon's fmp4.
package fmp4

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	mp4 "github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/muxring"
)

// maxGap is the longest step between two frames of a track taken as the
// stream going on; a longer one is a jump of the publisher's clock
// (Fragment.Discontinuity).
const maxGap = 10 * time.Second

// Muxer is one stream's fMP4 muxer, the muxring.Engine of fMP4. It runs in
// its own goroutine, reading the stream's access-unit view, and publishes
// its init segment and fragments into the muxring.Ring that Cursors follow.
type Muxer struct {
	stream  *hub.Stream
	rd      *hub.Reader
	out     *muxring.Ring
	log     *slog.Logger
	minFrag time.Duration

	// Muxer goroutine only.
	tracks   []*track
	byHub    []*track // by hub track index; nil = not carried
	lead     *track   // the video track, or the first one: fragments are cut on its samples
	started  bool
	t0       time.Duration // hub DTS of the first frame taken: time 0 of every track
	fragKey  bool
	fragDisc bool // a sample of the fragment follows a jump in its track's time
	fragDTS  time.Duration
	fragRecv time.Time
	warned   map[string]bool
}

func newMuxer(s *hub.Stream, rd *hub.Reader, out *muxring.Ring, log *slog.Logger, minFrag time.Duration, logLeftOut bool) (*Muxer, error) {
	tracks, left := pickTracks(s.Tracks)
	if len(tracks) == 0 {
		return nil, ErrNoTracks
	}
	if len(left) > 0 && logLeftOut {
		var names []string
		for _, l := range left {
			names = append(names, fmt.Sprintf("#%d %s", l.index, l.codec))
		}
		log.Info("fmp4: tracks left out: fMP4 here carries H.264, H.265, AV1, AAC and Opus (G.711 plays over RTSP, RTMP and HTTP-FLV)",
			"tracks", strings.Join(names, ", "))
	}
	m := &Muxer{
		stream: s, rd: rd, out: out, log: log, minFrag: minFrag, tracks: tracks,
		byHub: make([]*track, len(s.Tracks)), warned: map[string]bool{},
	}
	for _, t := range tracks {
		m.byHub[t.hubIndex] = t
		if m.lead == nil && t.kind.video() {
			m.lead = t
		}
	}
	if m.lead == nil {
		m.lead = tracks[0]
	}
	return m, nil
}

// Stream is the stream muxed.
func (m *Muxer) Stream() *hub.Stream { return m.stream }

// Init returns the init segment (ftyp+moov) and the RFC 6381 codecs of its
// tracks ("avc1.64001f,mp4a.40.2"), or nil before the first keyframe with
// parameter sets.
func (m *Muxer) Init() (init []byte, codecs string) { return m.out.Header() }

// Mux muxes until the hub reader fails or a frame cannot be muxed; when the
// stream ended, the frames it holds back go out first.
func (m *Muxer) Mux() error {
	err := m.loop()
	if errors.Is(err, hub.ErrEnded) {
		m.drainPending()
	}
	return err
}

func (m *Muxer) loop() error {
	frames := make([]*hub.Frame, 64)
	for {
		n, err := m.rd.Read(frames)
		if err != nil {
			return err
		}
		for i, f := range frames[:n] {
			frames[i] = nil
			if err := m.take(f); err != nil {
				return err
			}
		}
	}
}

// take adds one frame; an error stops the muxer.
func (m *Muxer) take(f *hub.Frame) error {
	if f.Track < 0 || f.Track >= len(m.byHub) || m.byHub[f.Track] == nil {
		return nil
	}
	t := m.byHub[f.Track]
	if !m.started {
		if t != m.lead || (t.kind.video() && !f.Key) {
			return nil // a reader starts at a keyframe; audio before it is dropped
		}
		if !t.haveParams() {
			t.paramsFromAU(f.AU)
			if !t.haveParams() {
				m.warnOnce("params", "fmp4: waiting for a keyframe with parameter sets (the publisher sent none out of band)", "codec", t.kind.String())
				return nil
			}
		}
		m.t0 = f.DTS
		m.started = true
		if err := m.writeInit(); err != nil {
			return err
		}
	}
	dts := t.ticks(f.DTS - m.t0)
	if dts < 0 {
		return nil // audio from before the first keyframe
	}
	if t.pending != nil && dts <= t.pendingDTS {
		m.warnOnce("dts"+t.kind.String(), "fmp4: frame dropped: its decode time is not after the previous one of its track (a publisher's clock jumped back)",
			"codec", t.kind.String(), "dts", f.DTS)
		return nil
	}
	if t.pending != nil {
		if err := m.complete(t, dts); err != nil {
			return err
		}
	}
	// A jump forward stretches the sample before it over the gap (the
	// samples of a traf follow each other); the fragment of the sample
	// after it is marked, so HLS can say so.
	jumped := t.taken && dts-t.lastDTS > t.ticks(maxGap)
	if t == m.lead && len(t.samples) > 0 && ((t.kind.video() && f.Key) || m.leadSpan() >= m.minFrag) {
		if err := m.flush(); err != nil {
			return err
		}
	}
	t.pending, t.pendingDTS, t.pendingJump = f, dts, jumped
	t.lastDTS, t.taken = dts, true
	return nil
}

// complete turns t's pending frame into a sample whose duration ends at next.
func (m *Muxer) complete(t *track, next int64) error {
	f := t.pending
	payload, err := t.payload(f)
	if err != nil {
		m.warnOnce("payload"+t.kind.String(), "fmp4: frame dropped: "+err.Error(), "codec", t.kind.String())
		// The samples of a traf follow each other from its base time: the
		// one before stretches over the gap, or later ones would move up.
		if n := len(t.samples); n > 0 {
			t.samples[n-1].Duration += uint32(next - t.pendingDTS)
		}
		t.pending = nil
		return nil
	}
	s := &mp4.Sample{Duration: uint32(next - t.pendingDTS), Payload: payload}
	if t.kind.video() {
		s.PTSOffset = int32(t.ticks(f.PTS - f.DTS))
		s.IsNonSyncSample = !f.Key
	}
	if t.pendingJump {
		m.fragDisc = true
	}
	if len(t.samples) == 0 {
		t.base = uint64(t.pendingDTS)
		if t == m.lead {
			m.fragKey = !s.IsNonSyncSample
			m.fragDTS = f.DTS
			m.fragRecv = f.Recv
		}
	}
	t.samples = append(t.samples, s)
	t.pending = nil
	return nil
}

func (m *Muxer) leadSpan() time.Duration {
	var ticks uint64
	for _, s := range m.lead.samples {
		ticks += uint64(s.Duration)
	}
	return time.Duration(ticks) * time.Second / time.Duration(m.lead.timescale)
}

// drainPending completes each held-back frame with its track's last sample
// duration and publishes what is left, so the end of a stream is not lost.
func (m *Muxer) drainPending() {
	if !m.started {
		return
	}
	for _, t := range m.tracks {
		if t.pending == nil {
			continue
		}
		d := int64(t.timescale) / 25
		if n := len(t.samples); n > 0 {
			d = int64(t.samples[n-1].Duration)
		}
		m.complete(t, t.pendingDTS+max(d, 1))
	}
	if len(m.lead.samples) > 0 {
		m.flush()
	}
}

func (m *Muxer) writeInit() error {
	in := mp4.Init{}
	var codecs []string
	for _, t := range m.tracks {
		if !t.haveParams() { // a second video track never comes: only the lead waits for parameters
			continue
		}
		in.Tracks = append(in.Tracks, &mp4.InitTrack{ID: t.id, TimeScale: t.timescale, Codec: t.mp4Codec()})
		codecs = append(codecs, t.codecString())
	}
	var buf seekablebuffer.Buffer
	if err := in.Marshal(&buf); err != nil {
		return fmt.Errorf("fmp4 init segment of %s: %w", m.stream.Path, err)
	}
	joined := strings.Join(codecs, ",")
	init := buf.Bytes()
	codec.FixHvcC(init) // mediacommon's hvcC constraint flags are wrong
	m.out.SetHeader(init, joined)
	m.log.Info("fmp4 muxer started", "codecs", joined)
	return nil
}

// flush marshals the samples taken since the last fragment into one
// moof+mdat and publishes it.
func (m *Muxer) flush() error {
	seq := m.out.NextSeq()
	part := mp4.Part{SequenceNumber: uint32(seq + 1)}
	for _, t := range m.tracks {
		if len(t.samples) > 0 {
			part.Tracks = append(part.Tracks, &mp4.PartTrack{ID: t.id, BaseTime: t.base, Samples: t.samples})
		}
	}
	frag := &Fragment{Key: m.fragKey || !m.lead.kind.video(), Discontinuity: m.fragDisc, DTS: m.fragDTS, Duration: m.leadSpan(), Recv: m.fragRecv}
	var buf seekablebuffer.Buffer
	if err := part.Marshal(&buf); err != nil {
		return fmt.Errorf("fmp4 fragment of %s: %w", m.stream.Path, err)
	}
	for _, t := range m.tracks {
		t.samples = nil
	}
	m.fragDisc = false
	frag.Data = buf.Bytes()
	frag.Made = time.Now()
	m.out.Publish(frag)
	return nil
}

func (m *Muxer) warnOnce(key, msg string, args ...any) {
	if m.warned[key] {
		return
	}
	m.warned[key] = true
	m.log.Warn(msg, args...)
}
