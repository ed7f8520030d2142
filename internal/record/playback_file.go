package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/pmp4"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
)

// A recording to play back is read whole into an index of its samples
// (times, sizes, keyframes; not the media), merged across tracks in decode
// order; each sample's payload is read from the file when it is due.

// errNoPlayableTrack: the file has no track of a codec the hub carries.
var errNoPlayableTrack = errors.New("no track of a codec Berth plays back (H.264, H.265, AV1, AAC, Opus)")

// vodSample is one sample of the merged index.
type vodSample struct {
	track int           // index into vodMedia.tracks
	dts   time.Duration // from the file's start
	cts   time.Duration // PTS - DTS
	key   bool          // a reader may start here
	s     *pmp4.Sample
}

// vodMedia is an open recording: its tracks as the hub takes them and its
// samples in decode order.
type vodMedia struct {
	f       *os.File
	tracks  []*hub.Track
	unpack  []func([]byte) ([][]byte, error) // a sample's payload -> the hub's access unit, per track
	samples []vodSample
	dur     time.Duration
}

func (m *vodMedia) Close() error { return m.f.Close() }

// openMedia opens a recording, fragmented (as Berth writes it) or
// progressive (fastStart, or any other MP4), and indexes its samples.
func openMedia(path string) (*vodMedia, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	frag, err := isFragmented(f, st.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	var pres *pmp4.Presentation
	if frag {
		pres, err = readPresentation(f, st.Size())
	} else {
		pres = &pmp4.Presentation{}
		err = pres.Unmarshal(f)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s is not a playable MP4: %w", path, err)
	}
	m, err := indexMedia(pres)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m.f = f
	return m, nil
}

// isFragmented reports whether the file has a moof box at its top level
// (ISO/IEC 14496-12 §8.8.4), i.e. is read as fragments, not through moov's
// sample tables.
func isFragmented(f *os.File, size int64) (bool, error) {
	var hdr [16]byte
	for pos := int64(0); pos+8 <= size; {
		if _, err := f.ReadAt(hdr[:8], pos); err != nil {
			return false, err
		}
		n := int64(binary.BigEndian.Uint32(hdr[:4]))
		typ := string(hdr[4:8])
		if n == 1 { // a 64-bit size follows the type (§4.2)
			if _, err := f.ReadAt(hdr[8:16], pos+8); err != nil {
				return false, err
			}
			n = int64(binary.BigEndian.Uint64(hdr[8:16]))
		}
		if n == 0 { // to the end of the file
			n = size - pos
		}
		if n < 8 {
			return false, fmt.Errorf("box %q at %d has size %d", typ, pos, n)
		}
		if typ == "moof" {
			return true, nil
		}
		pos += n
	}
	return false, nil
}

// indexMedia turns a presentation into the hub's tracks and one list of
// samples in decode order. Tracks of other codecs are left out.
func indexMedia(pres *pmp4.Presentation) (*vodMedia, error) {
	m := &vodMedia{}
	hasVideo := false
	for _, t := range pres.Tracks {
		if t.Codec != nil && t.Codec.IsVideo() {
			hasVideo = true
		}
	}
	for _, t := range pres.Tracks {
		var ht *hub.Track
		var unpack func([]byte) ([][]byte, error)
		switch c := t.Codec.(type) {
		case *codecs.H264:
			ht, unpack = codec.H264Track(c.SPS, c.PPS), unpackAVCC
		case *codecs.H265:
			ht, unpack = codec.H265Track(c.VPS, c.SPS, c.PPS), unpackAVCC
		case *codecs.AV1:
			ht, unpack = codec.AV1Track(c.SequenceHeader), unpackAV1
		case *codecs.MPEG4Audio:
			conf := c.Config
			ht, unpack = codec.AACTrackConfig(&conf), unpackWhole
		case *codecs.Opus:
			ht, unpack = codec.OpusTrack(c.ChannelCount), unpackWhole
		default:
			continue
		}
		if t.TimeScale == 0 {
			return nil, fmt.Errorf("track %d has a time scale of 0", t.ID)
		}
		i := len(m.tracks)
		m.tracks = append(m.tracks, ht)
		m.unpack = append(m.unpack, unpack)
		rate := int64(t.TimeScale)
		at := int64(t.TimeOffset)
		isKey := syncFlags(t.Samples)
		if ra := randomAccess(t.Codec); ra != nil && !trustSyncFlags(t.Samples) {
			isKey = func(s *pmp4.Sample) bool {
				b, err := s.GetPayload()
				if err != nil {
					return false
				}
				au, err := unpack(b)
				return err == nil && ra(au)
			}
		}
		for _, s := range t.Samples {
			key := !hasVideo || (ht.Video && isKey(s))
			m.samples = append(m.samples, vodSample{track: i, dts: hub.TicksToDuration(at, rate),
				cts: hub.TicksToDuration(int64(s.PTSOffset), rate), key: key, s: s})
			at += int64(s.Duration)
		}
		if d := hub.TicksToDuration(at, rate); d > m.dur {
			m.dur = d
		}
	}
	if len(m.tracks) == 0 {
		return nil, errNoPlayableTrack
	}
	sort.SliceStable(m.samples, func(a, b int) bool { return m.samples[a].dts < m.samples[b].dts })
	if len(m.samples) > 0 && m.samples[0].dts < 0 { // an edit list that starts a track early
		shift := -m.samples[0].dts
		for i := range m.samples {
			m.samples[i].dts += shift
		}
		m.dur += shift
	}
	return m, nil
}

// keyAt returns the index of the last sample a reader may start at whose
// time is at or before at (the first sample if none is).
func (m *vodMedia) keyAt(at time.Duration) int {
	k := 0
	for i, s := range m.samples {
		if s.dts > at {
			break
		}
		if s.key {
			k = i
		}
	}
	return k
}

// unpackAVCC splits an H.264/H.265 sample (NAL units with 4-byte lengths,
// ISO/IEC 14496-15 §5.3.2) into its NAL units.
func unpackAVCC(b []byte) ([][]byte, error) {
	var au h264.AVCC
	err := au.Unmarshal(b)
	return au, err
}

// unpackAV1 splits an AV1 sample (a temporal unit in the low overhead
// bitstream format) into its OBUs.
func unpackAV1(b []byte) ([][]byte, error) {
	var tu av1.Bitstream
	err := tu.Unmarshal(b)
	return tu, err
}

func unpackWhole(b []byte) ([][]byte, error) { return [][]byte{b}, nil }

func syncFlags([]*pmp4.Sample) func(*pmp4.Sample) bool {
	return func(s *pmp4.Sample) bool { return !s.IsNonSyncSample }
}

// trustSyncFlags reports whether a track's sync-sample flags look right.
// mediacommon's fragment reader does not apply a trun's first-sample flags
// (ISO/IEC 14496-12 §8.8.8), which ffmpeg's frag_keyframe uses to mark each
// fragment's keyframe: such a track shows one sync sample, or none, in many.
func trustSyncFlags(ss []*pmp4.Sample) bool {
	if len(ss) < 50 {
		return false // short: checking every sample costs little
	}
	n := 0
	for _, s := range ss[1:] {
		if !s.IsNonSyncSample {
			n++
		}
	}
	return n > 0
}

// randomAccess is the keyframe test of a video codec's access units.
func randomAccess(c codecs.Codec) func([][]byte) bool {
	switch c.(type) {
	case *codecs.H264:
		return h264.IsRandomAccess
	case *codecs.H265:
		return h265.IsRandomAccess
	}
	return nil
}
