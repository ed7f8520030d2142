package hls

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/gortsplib/v5/pkg/format"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
)

// llMuxer is one stream's HLS-fMP4 muxer: gohlslib's Low-Latency muxer
// (segments, parts, blocking reload, delta updates, preload hints) fed
// from the stream's access-unit view through one uncounted reader. It
// starts on the stream's first keyframe with parameter sets.
type llMuxer struct {
	linger
	s     *hub.Stream
	rd    *hub.Reader
	log   *slog.Logger
	ready chan struct{} // closed once mux is started
	done  chan struct{} // closed when it ended; err says why
	mux   *gohlslib.Muxer
	err   error
	gone  bool // removed from the Handler's map (mu)
}

// llTrack is a hub track the muxer carries.
type llTrack struct {
	hubIndex int
	t        *gohlslib.Track
	clock    int64
	video    bool
	ps       codec.ParamSets // H.264/H.265
	av1Seq   []byte
	lastDTS  time.Duration
	seen     bool
}

// llMuxerLocked returns st's muxer, starting it, with a hold for the caller.
func (h *Handler) llMuxerLocked(st *hub.Stream) *llMuxer {
	if h.ll == nil {
		h.ll = map[*hub.Stream]*llMuxer{}
	}
	m := h.ll[st]
	if m == nil {
		m = &llMuxer{s: st, log: h.log().With("path", st.Path, "proto", ProtoFMP4),
			ready: make(chan struct{}), done: make(chan struct{})}
		rd, err := st.SubscribeUncounted(hub.KindAU, hub.Origin{Proto: ProtoFMP4, ID: "muxer"})
		if err != nil {
			m.err = err
			close(m.done)
		} else {
			m.rd = rd
			h.ll[st] = m
			h.started.Add(1)
			go m.run(h.cfg())
		}
	}
	h.holdLocked(&m.linger)
	return m
}

// stopLocked is the release callback: it forgets the muxer and ends its
// reader, which ends the muxer.
func (m *llMuxer) stopLocked(h *Handler) func() {
	return func() {
		if !m.gone && h.ll[m.s] == m {
			delete(h.ll, m.s)
		}
		m.gone = true
		m.stop()
	}
}

func (m *llMuxer) stop() {
	if m.rd != nil {
		m.rd.Close()
	}
}

func (m *llMuxer) run(set Settings) {
	err := m.loop(set)
	m.rd.Close()
	if m.mux != nil {
		m.mux.Close() // waiting playlist requests return
	}
	switch {
	case errors.Is(err, hub.ErrEnded), errors.Is(err, hub.ErrReaderClosed):
		m.log.Info("hls.fmp4 muxer stopped", "why", err.Error())
	default:
		m.log.Warn("hls.fmp4 muxer failed; its viewers are refused until the next one starts", "err", err)
	}
	m.err = err
	close(m.done)
}

func (m *llMuxer) loop(set Settings) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("hls.fmp4 muxer of %s panicked: %v", m.s.Path, p)
		}
	}()
	tracks, lead, left := llTracks(m.s.Tracks)
	if lead == nil {
		return ErrNoTracks
	}
	if len(left) > 0 {
		m.log.Info("hls.fmp4: tracks left out: HLS-fMP4 here carries H.264, H.265, AV1, AAC and Opus (G.711 plays over RTSP, RTMP and HTTP-FLV)",
			"tracks", strings.Join(left, ", "))
	}
	byHub := map[int]*llTrack{}
	for _, t := range tracks {
		byHub[t.hubIndex] = t
	}
	var (
		t0      time.Duration
		offset  time.Duration // makes timestamps continuous across a publisher's clock jump
		started bool
		warned  = map[string]bool{}
	)
	warn := func(key, msg string, args ...any) {
		if !warned[key] {
			warned[key] = true
			m.log.Warn(msg, args...)
		}
	}
	frames := make([]*hub.Frame, 64)
	for {
		n, err := m.rd.Read(frames)
		if err != nil {
			return err
		}
		for i, f := range frames[:n] {
			frames[i] = nil
			t := byHub[f.Track]
			if t == nil {
				continue
			}
			if !started {
				if t != lead || (t.video && !f.Key) {
					continue
				}
				if !t.takeParams(f.AU) {
					warn("params", "hls.fmp4: waiting for a keyframe with parameter sets (the publisher sent none out of band)")
					continue
				}
				if err := m.start(set, tracks); err != nil {
					return err
				}
				t0, started = f.DTS, true
			}
			if t.seen && (f.DTS < t.lastDTS-time.Second || f.DTS > t.lastDTS+10*time.Second) {
				// A publisher's clock jumped: continue one frame after the
				// last, for every track, rather than a segment of hours.
				offset += t.lastDTS + 20*time.Millisecond - f.DTS
				warn("jump", "hls.fmp4: the publisher's timestamps jumped; made them continuous", "from", t.lastDTS, "to", f.DTS)
			}
			t.lastDTS, t.seen = f.DTS, true
			pts := f.PTS - t0 + offset
			if pts < 0 {
				continue // audio from before the first keyframe
			}
			if err := m.write(t, f, ticks(pts, t.clock)); err != nil {
				warn(fmt.Sprintf("write%T", t.t.Codec), "hls.fmp4: frame dropped: "+err.Error())
			}
		}
	}
}

func (m *llMuxer) start(set Settings, tracks []*llTrack) error {
	var gt []*gohlslib.Track
	for _, t := range tracks {
		if t.video {
			switch t.t.Codec.(type) {
			case *codecs.H264:
				t.t.Codec = &codecs.H264{SPS: t.ps.SPS, PPS: t.ps.PPS}
			case *codecs.H265:
				t.t.Codec = &codecs.H265{VPS: t.ps.VPS, SPS: t.ps.SPS, PPS: t.ps.PPS}
			case *codecs.AV1:
				t.t.Codec = &codecs.AV1{SequenceHeader: t.av1Seq}
			}
		}
		gt = append(gt, t.t)
	}
	mux := &gohlslib.Muxer{
		Tracks:             gt,
		Variant:            gohlslib.MuxerVariantLowLatency,
		SegmentCount:       max(set.SegNum, 7), // LL-HLS needs 7
		SegmentMinDuration: set.SegDur,
		PartMinDuration:    set.PartDur,
		SegmentMaxSize:     64 << 20,
		OnEncodeError: func(err error) {
			m.log.Warn("hls.fmp4: " + err.Error())
		},
	}
	if err := mux.Start(); err != nil {
		return fmt.Errorf("hls.fmp4 muxer of %s: %w", m.s.Path, err)
	}
	m.mux = mux
	close(m.ready)
	m.log.Info("hls.fmp4 muxer started", "segment", set.SegDur, "part", set.PartDur)
	return nil
}

func (m *llMuxer) write(t *llTrack, f *hub.Frame, pts int64) error {
	ntp := f.Recv
	if ntp.IsZero() {
		ntp = time.Now()
	}
	switch t.t.Codec.(type) {
	case *codecs.H264:
		au := f.AU
		if f.Key {
			t.ps.Take(au, false)
			au = t.ps.WithParams(au, false) // gohlslib reads the SPS from the keyframe
		}
		return m.mux.WriteH264(t.t, ntp, pts, au)
	case *codecs.H265:
		au := f.AU
		if f.Key {
			t.ps.Take(au, true)
			au = t.ps.WithParams(au, true)
		}
		return m.mux.WriteH265(t.t, ntp, pts, au)
	case *codecs.AV1:
		return m.mux.WriteAV1(t.t, ntp, pts, f.AU)
	case *codecs.MPEG4Audio:
		return m.mux.WriteMPEG4Audio(t.t, ntp, pts, f.AU)
	case *codecs.Opus:
		return m.mux.WriteOpus(t.t, ntp, pts, f.AU)
	}
	return nil
}

// takeParams reports whether the lead track can be described, taking
// parameter sets sent in band.
func (t *llTrack) takeParams(au [][]byte) bool {
	switch t.t.Codec.(type) {
	case *codecs.H264:
		t.ps.Take(au, false)
		return t.ps.Complete(false)
	case *codecs.H265:
		t.ps.Take(au, true)
		return t.ps.Complete(true)
	case *codecs.AV1:
		if seq := codec.AV1SequenceHeader(au); seq != nil {
			t.av1Seq = seq
		}
		return t.av1Seq != nil
	}
	return true
}

// ErrNoTracks means a stream has no track HLS-fMP4 carries here.
var ErrNoTracks = errors.New("the stream has no track HLS can carry (H.264, H.265, AV1, AAC, Opus)")

// llTracks picks the first video and first audio track gohlslib carries;
// lead is the video one (or the audio one), left names the others.
func llTracks(hts []*hub.Track) (tracks []*llTrack, lead *llTrack, left []string) {
	var video, audio *llTrack
	for i, ht := range hts {
		if ht == nil || ht.Format == nil {
			continue
		}
		t := &llTrack{hubIndex: i, t: &gohlslib.Track{}, clock: 90000}
		switch f := ht.Format.(type) {
		case *format.H264:
			t.video = true
			t.ps.SPS, t.ps.PPS = f.SafeParams()
			t.t.Codec = &codecs.H264{}
		case *format.H265:
			t.video = true
			t.ps.VPS, t.ps.SPS, t.ps.PPS = f.SafeParams()
			t.t.Codec = &codecs.H265{}
		case *format.AV1:
			t.video = true
			t.t.Codec = &codecs.AV1{}
		case *format.MPEG4Audio, *format.MPEG4AudioLATM:
			c := codec.AACConfig(f)
			if c == nil || c.SampleRate <= 0 {
				left = append(left, fmt.Sprintf("#%d %s (no usable config)", i, ht.Format.Codec()))
				continue
			}
			t.clock = int64(c.SampleRate)
			t.t.Codec = &codecs.MPEG4Audio{Config: *c}
		case *format.Opus:
			ch := f.ChannelCount
			if ch <= 0 {
				ch = 2
			}
			t.clock = 48000
			t.t.Codec = &codecs.Opus{ChannelCount: ch}
		default:
			left = append(left, fmt.Sprintf("#%d %s", i, ht.Format.Codec()))
			continue
		}
		t.t.ClockRate = int(t.clock)
		switch {
		case t.video && video == nil:
			video = t
		case !t.video && audio == nil:
			audio = t
		default:
			left = append(left, fmt.Sprintf("#%d %s (a second track of its kind)", i, ht.Format.Codec()))
			continue
		}
		tracks = append(tracks, t)
	}
	lead = video
	if lead == nil {
		lead = audio
	}
	return tracks, lead, left
}

// ticks converts a hub time to a clock rate, rounded to the nearest tick.
func ticks(d time.Duration, clock int64) int64 {
	sec, rem := int64(d/time.Second), int64(d%time.Second)
	return sec*clock + (rem*clock+int64(time.Second)/2)/int64(time.Second)
}

// serveFMP4 answers a request of the HLS-fMP4 form from the viewer's muxer.
func (h *Handler) serveFMP4(w *countingWriter, r *http.Request, v *viewer, st *hub.Stream, file string, log *slog.Logger) {
	h.mu.Lock()
	m := v.ll
	h.mu.Unlock()
	if m == nil {
		http.Error(w, "this HLS viewer has ended; reload "+FMP4Playlist, http.StatusGone)
		return
	}
	wait := 10*time.Second + 2*h.cfg().SegDur
	if err := waitReady(r.Context(), m.ready, m.done, wait); err != nil {
		log.Info("hls.fmp4 play refused: no keyframe with parameter sets yet", "err", err)
		http.Error(w, fmt.Sprintf("stream %s has sent no keyframe with parameter sets yet (%v); retry", st.Path, err), http.StatusGatewayTimeout)
		return
	}
	select {
	case <-m.done:
		status := http.StatusServiceUnavailable
		if errors.Is(m.err, ErrNoTracks) {
			status = http.StatusUnsupportedMediaType
		}
		http.Error(w, fmt.Sprintf("stream %s: %v", st.Path, m.err), status)
		return
	default:
	}
	if file == FMP4Playlist {
		r = r.Clone(r.Context())
		r.URL.Path = path.Join(path.Dir(r.URL.Path), "index.m3u8")
		q := r.URL.Query()
		q.Set(SessionParam, v.token) // gohlslib carries the query into every URL it lists
		r.URL.RawQuery = q.Encode()
	}
	if strings.HasSuffix(file, "_init.mp4") {
		serveInit(w, r, m.mux)
	} else {
		m.mux.Handle(w, r)
	}
	if !w.wrote {
		http.Error(w, "no such HLS file: it left the playlist, or belongs to an earlier muxer of this stream; reload "+FMP4Playlist, http.StatusNotFound)
	}
}

// serveInit answers an init segment with its hvcC constraint flags
// corrected (codec.FixHvcC: gohlslib writes its init segments with
// mediacommon, whose flags are wrong for H.265). An init segment is a few
// hundred bytes, so it is taken whole, mended, and sent.
func serveInit(w http.ResponseWriter, r *http.Request, mux *gohlslib.Muxer) {
	rec := &initRecorder{header: http.Header{}, code: http.StatusOK}
	mux.Handle(rec, r)
	if !rec.wrote {
		return
	}
	codec.FixHvcC(rec.body)
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(rec.body)))
	w.WriteHeader(rec.code)
	w.Write(rec.body)
}

// initRecorder takes one small response whole.
type initRecorder struct {
	header http.Header
	code   int
	body   []byte
	wrote  bool
}

func (i *initRecorder) Header() http.Header { return i.header }
func (i *initRecorder) WriteHeader(code int) {
	if !i.wrote {
		i.wrote, i.code = true, code
	}
}
func (i *initRecorder) Write(p []byte) (int, error) {
	i.wrote = true
	i.body = append(i.body, p...)
	return len(p), nil
}
