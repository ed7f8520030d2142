package record

import (
	"path/filepath"
	"testing"

	"github.com/berthmedia/berth/internal/hub"
)

// BenchmarkPlaybackIndex: opening and indexing 2 s of H.264+AAC
// (fragmented, as Berth records), per file.
func BenchmarkPlaybackIndex(b *testing.B) {
	file := filepath.Join(writeRecording(b, false), filepath.FromSlash(testRecording))
	b.ReportAllocs()
	for b.Loop() {
		m, err := openMedia(file)
		if err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
}

// BenchmarkPlaybackWrite: the per-sample path of a playback, reading a
// sample from the file, splitting it and writing it into the hub.
func BenchmarkPlaybackWrite(b *testing.B) {
	file := filepath.Join(writeRecording(b, false), filepath.FromSlash(testRecording))
	m, err := openMedia(file)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	h := hub.New(hub.Options{})
	defer h.Close()
	pub, err := h.Publish("bench", hub.Origin{Proto: "test"}, hub.KindAU, m.tracks, nil)
	if err != nil {
		b.Fatal(err)
	}
	v := &vodPlayer{m: m, pub: pub}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s := m.samples[i%len(m.samples)]
		if err := v.write(s, s.dts); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
