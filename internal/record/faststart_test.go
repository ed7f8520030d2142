package record

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/pmp4"
)

// TestProgressiveMovesTheIndexInFront: a fragmented recording rewritten
// for fastStart is ftyp, moov, mdat, with every sample and its payload,
// and the audio track's late start kept as an edit.
func TestProgressiveMovesTheIndexInFront(t *testing.T) {
	p := filepath.Join(t.TempDir(), "12-00-00.mp4")
	file := testInit(t)
	for i := 0; i < 3; i++ {
		file = append(file, testFragment(t, uint32(i+1), uint64(i*3600), uint64(480+i*1024))...)
	}
	if err := os.WriteFile(p, file, 0o644); err != nil {
		t.Fatal(err)
	}
	size, err := progressive(p)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	var order []string
	for _, bx := range boxes(b) {
		order = append(order, string(bx.typ[:]))
	}
	if int64(len(b)) != size || len(order) != 3 || order[0] != "ftyp" || order[1] != "moov" || order[2] != "mdat" {
		t.Fatalf("boxes after the rewrite: %v (%d bytes, reported %d)", order, len(b), size)
	}
	f, _ := os.Open(p)
	defer f.Close()
	var pres pmp4.Presentation
	if err := pres.Unmarshal(f); err != nil {
		t.Fatal(err)
	}
	for _, tr := range pres.Tracks {
		if len(tr.Samples) != 3 {
			t.Errorf("track %d: %d samples, want 3", tr.ID, len(tr.Samples))
		}
		pl, err := tr.Samples[2].GetPayload()
		if err != nil || (tr.ID == 1 && string(pl) != "\x00\x00\x00\x02\x65\x88") || (tr.ID == 2 && string(pl) != "\x01\x02\x03") {
			t.Errorf("track %d: last payload %x, %v", tr.ID, pl, err)
		}
	}
	if _, err := progressive(filepath.Join(t.TempDir(), "none.mp4")); err == nil {
		t.Error("a missing file was rewritten")
	}
}
