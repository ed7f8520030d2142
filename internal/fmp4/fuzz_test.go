package fmp4

import (
	"bytes"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/muxring"
)

// FuzzMuxerTakesAnyAccessUnit: access units come from publishers; whatever
// their bytes, the muxer (parameter sets taken in-band, codecs strings,
// sample payloads, boxes) returns an error or muxes, and never panics. The
// input is split into units at 0xff 0xff.
func FuzzMuxerTakesAnyAccessUnit(f *testing.F) {
	f.Add(bytes.Join([][]byte{sps320, pps, {0x65, 0x88}}, []byte{0xff, 0xff}))
	f.Add(bytes.Join([][]byte{{0x40, 0x01, 0x0c, 0x01}, hevcSPS, {0x44, 0x01, 0xc0}, {0x26, 0x01, 0xaf}}, []byte{0xff, 0xff}))
	f.Add(bytes.Join([][]byte{{0x10}, append([]byte{0x08}, av1Seq[2:]...), {0x30, 0xaa}}, []byte{0xff, 0xff}))
	h := hub.New(hub.Options{})
	defer h.Close()
	tracks := []*hub.Track{codec.H264Track(nil, nil), codec.H265Track(nil, nil, nil), codec.AV1Track(nil), aacTrack()}
	f.Fuzz(func(t *testing.T, b []byte) {
		au := bytes.Split(b, []byte{0xff, 0xff})
		for i, tr := range tracks {
			pub, err := h.Publish("fuzz", hub.Origin{Proto: "test"}, hub.KindAU, []*hub.Track{tr, aacTrack()}, nil)
			if err != nil {
				t.Fatal(err)
			}
			m, err := newMuxer(pub.Stream(), nil, muxring.NewRing(8), logging.Discard(), 0, false)
			if err != nil {
				t.Fatal(err)
			}
			for n := 0; n < 3; n++ {
				at := time.Duration(n) * frameDur
				if m.take(&hub.Frame{Track: 0, Key: n != 1, AU: au, PTS: at, DTS: at}) != nil ||
					m.take(&hub.Frame{Track: 1, AU: au, PTS: at, DTS: at}) != nil {
					break
				}
			}
			m.drainPending()
			if i == 0 && m.started {
				m.Init()
			}
			pub.Close()
		}
	})
}
