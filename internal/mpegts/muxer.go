// Package mpegts turns a hub stream into MPEG-TS: one shared muxer per
// stream (on internal/muxring), started by its first reader and stopped a
// grace time after its last, whose chunks every reader gets as the same
// bytes. A chunk is the TS packets of one access unit; every Key chunk
// begins with PAT and PMT, then a keyframe that carries its parameter
// sets, so a reader or an HLS-TS segment that starts there stands alone.
// HTTP-TS and WS-TS (handler.go) read it now; HLS-TS, SRT and TS recording
// are meant to read the same chunks. Packets are written by mediacommon's
// mpegts Writer (docs/muxers.md).
package mpegts

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	mcts "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/muxring"
)

const (
	// startTicks is the TS time of the muxer's first keyframe: above 0 so
	// that the PCR the writer puts 100 ms before a frame's DTS, and the
	// DTS of frames a little before it, stay positive.
	startTicks = 10 * clockRate
	// maxJump is the longest step forward between two frames of a track
	// taken as the stream going on; a longer one, or a step back by more
	// than a frame, is the publisher's clock jumping (a discontinuity).
	maxJump = 10 * clockRate
)

// Muxer is one stream's MPEG-TS muxer, the muxring.Engine of MPEG-TS. It
// runs in its own goroutine, reading the stream's access-unit view, and
// publishes a chunk per access unit into the muxring.Ring its readers'
// Cursors follow.
type Muxer struct {
	stream *hub.Stream
	rd     *hub.Reader
	out    *muxring.Ring
	log    *slog.Logger

	// Muxer goroutine only.
	tracks  []*track // the lead first: the writer gives PIDs in this order
	byHub   []*track // by hub track index; nil = not carried
	lead    *track   // the video track, or the audio one: readers start at its keyframes
	w       *mcts.Writer
	buf     chunkBuf
	started bool
	ready   bool          // the header is set: the first keyframe went out
	t0      time.Duration // hub DTS of the first keyframe: TS time startTicks on every track
	warned  map[string]bool
}

// chunkBuf is the writer's output: each chunk gets a buffer of its own,
// since published chunks are shared and never change.
type chunkBuf struct{ b []byte }

func (c *chunkBuf) Write(p []byte) (int, error) {
	c.b = append(c.b, p...)
	return len(p), nil
}

func newMuxer(s *hub.Stream, rd *hub.Reader, out *muxring.Ring, log *slog.Logger, logLeftOut bool) (*Muxer, error) {
	tracks, left := pickTracks(s)
	if len(tracks) == 0 {
		return nil, ErrNoTracks
	}
	if len(left) > 0 && logLeftOut {
		var names []string
		for _, l := range left {
			names = append(names, fmt.Sprintf("#%d %s", l.index, l.why))
		}
		log.Info("mpegts: tracks left out: MPEG-TS here carries H.264, H.265, AAC, Opus and MPEG-1 audio",
			"tracks", strings.Join(names, ", "))
	}
	m := &Muxer{stream: s, rd: rd, out: out, log: log, byHub: make([]*track, len(s.Tracks)), warned: map[string]bool{}}
	for _, t := range tracks {
		if t.kind.video() {
			m.lead = t
		}
	}
	if m.lead == nil {
		m.lead = tracks[0]
	}
	m.tracks = append(m.tracks, m.lead)
	for _, t := range tracks {
		m.byHub[t.hubIndex] = t
		if t != m.lead {
			m.tracks = append(m.tracks, t)
		}
	}
	m.w = &mcts.Writer{W: &m.buf}
	for _, t := range m.tracks {
		m.w.Tracks = append(m.w.Tracks, t.ts)
	}
	if err := m.w.Initialize(); err != nil {
		return nil, fmt.Errorf("mpegts writer of %s: %w", s.Path, err)
	}
	return m, nil
}

// Stream is the stream muxed.
func (m *Muxer) Stream() *hub.Stream { return m.stream }

// Mux muxes until the hub reader fails; when the stream ended, the frames
// still waiting for the other track's go out first.
func (m *Muxer) Mux() error {
	frames := make([]*hub.Frame, 64)
	for {
		n, err := m.rd.Read(frames)
		if err != nil {
			if errors.Is(err, hub.ErrEnded) {
				m.interleave(true)
			}
			return err
		}
		for i, f := range frames[:n] {
			frames[i] = nil
			m.take(f)
		}
	}
}

// take queues one frame for its chunk: frames go out in decode-time order
// across tracks (interleave.go).
func (m *Muxer) take(f *hub.Frame) {
	if f.Track < 0 || f.Track >= len(m.byHub) || m.byHub[f.Track] == nil {
		return
	}
	t := m.byHub[f.Track]
	au := nonEmpty(f.AU)
	if len(au) == 0 {
		return // the writer reads au[0][0]
	}
	key := t == m.lead && (f.Key || !t.kind.video())
	if !m.started {
		if !key {
			return // a reader starts at a keyframe; audio before it is dropped
		}
		if !t.haveParams() {
			t.ps.Take(au, t.kind == codecH265)
			if !t.haveParams() {
				m.warnOnce("params", "mpegts: waiting for a keyframe with parameter sets (the publisher sent none out of band)", "codec", t.kind.String())
				return
			}
		}
		m.t0 = f.DTS
		m.started = true
		for _, tr := range m.tracks {
			tr.offset = startTicks - ticks(m.t0)
			tr.active = true // waited for from the start, up to maxHold
		}
	}
	if !t.taken && f.DTS < m.t0 {
		return // audio from before the first keyframe
	}
	dts, pts, disc := m.clock(t, f)
	if key && t.kind.video() {
		au = t.withParams(au)
	}
	t.queue = append(t.queue, queued{f: f, au: au, dts: dts, pts: pts, key: key, disc: disc})
	t.active = true
	m.interleave(false)
}

// emit muxes one queued frame into a chunk of its own and publishes it. A
// frame that cannot be muxed is dropped with one warn line per muxer: the
// stream goes on.
func (m *Muxer) emit(t *track, q queued) {
	f, au, dts, pts, key := q.f, q.au, q.dts, q.pts, q.key
	m.buf.b = make([]byte, 0, chunkSize(au))
	if key && t.kind.video() && !t.randomAccess(au) {
		// The writer puts PAT and PMT before the frames it sees as random
		// access points; this one the publisher marked a keyframe without
		// an IDR (a recovery point), so every Key chunk still begins with them.
		if _, err := m.w.WriteTables(); err != nil {
			m.warnOnce("tables", "mpegts: PAT/PMT not written: "+err.Error())
		}
	}
	if err := m.write(t, pts, dts, au); err != nil {
		m.warnOnce("write"+t.kind.String(), "mpegts: frame dropped: "+err.Error(), "codec", t.kind.String())
		return
	}
	if !m.ready {
		// TS has no header: readers may come once there is a keyframe.
		codecs := m.codecs()
		m.out.SetHeader([]byte{}, codecs)
		m.log.Info("mpegts muxer started", "codecs", codecs)
		m.ready = true
	}
	m.out.Publish(&muxring.Chunk{Key: key, Discontinuity: q.disc, DTS: f.DTS, Data: m.buf.b, Recv: f.Recv, Made: time.Now()})
	m.buf.b = nil
}

func (m *Muxer) write(t *track, pts, dts int64, au [][]byte) error {
	switch t.kind {
	case codecH264:
		return m.w.WriteH264(t.ts, pts, dts, au)
	case codecH265:
		return m.w.WriteH265(t.ts, pts, dts, au)
	case codecAAC:
		return m.w.WriteMPEG4Audio(t.ts, pts, [][]byte{join(au)})
	case codecOpus:
		return m.w.WriteOpus(t.ts, pts, [][]byte{join(au)})
	case codecMPEG1Audio:
		return m.w.WriteMPEG1Audio(t.ts, pts, au)
	}
	return nil
}

// clock maps f's hub times onto t's TS timeline (90 kHz ticks). The TS
// times of a track only go forward: a step back within a frame (jitter)
// is raised to one tick after the last frame; a step back by more, or one
// forward by more than maxJump, is the publisher's clock jumping: the
// track's offset changes so that this frame comes one frame step after
// the last, and the chunk is marked a discontinuity. Each track keeps its
// own offset, so an interleaved frame of another track still on the old
// clock is not taken for a jump back; after a jump of the whole stream the
// tracks line up again within a frame.
func (m *Muxer) clock(t *track, f *hub.Frame) (dts, pts int64, disc bool) {
	dts = ticks(f.DTS) + t.offset
	pts = ticks(f.PTS) + t.offset
	if t.taken {
		step := t.step
		if step <= 0 {
			step = clockRate / 25
		}
		switch d := dts - t.last; {
		case d > maxJump || d < -step:
			shift := t.last + step - dts
			t.offset += shift
			dts, pts, disc = dts+shift, pts+shift, true
			m.warnOnce("jump"+t.kind.String(), "mpegts: a track's time jumped (the publisher's clock restarted or skipped); its TS times go on from where they were and the chunk is marked a discontinuity",
				"codec", t.kind.String(), "jump", time.Duration(d)*time.Second/clockRate)
		case d <= 0:
			pts += t.last + 1 - dts
			dts = t.last + 1
		default:
			t.step = d
		}
	}
	pts = max(pts, dts)
	t.last, t.taken = dts, true
	return dts, pts, disc
}

// codecs is the RFC 6381 codecs of the tracks carried.
func (m *Muxer) codecs() string {
	var out []string
	for _, t := range m.tracks {
		out = append(out, t.codecString())
	}
	return strings.Join(out, ",")
}

// chunkSize guesses the TS bytes of an access unit: its payload with
// start codes, split into 184-byte packet payloads, plus room for PAT,
// PMT and the PES and adaptation headers.
func chunkSize(au [][]byte) int {
	n := 32
	for _, p := range au {
		n += len(p) + 4
	}
	return (n/184+4)*188 + 2*188
}

// nonEmpty is au without empty units (copied only when there are some).
func nonEmpty(au [][]byte) [][]byte {
	for i, p := range au {
		if len(p) == 0 {
			out := append([][]byte(nil), au[:i]...)
			for _, q := range au[i+1:] {
				if len(q) > 0 {
					out = append(out, q)
				}
			}
			return out
		}
	}
	return au
}

// join is an audio frame that came in parts as one.
func join(au [][]byte) []byte {
	if len(au) == 1 {
		return au[0]
	}
	n := 0
	for _, p := range au {
		n += len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range au {
		b = append(b, p...)
	}
	return b
}

func (m *Muxer) warnOnce(key, msg string, args ...any) {
	if m.warned[key] {
		return
	}
	m.warned[key] = true
	m.log.Warn(msg, args...)
}
