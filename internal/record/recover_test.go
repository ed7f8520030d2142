package record

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRecoverFinalisesWhatACrashLeft: a hidden file cut inside its last
// fragment is cut after the whole ones and renamed; one with no whole
// fragment is removed; a closed file is left alone.
func TestRecoverFinalisesWhatACrashLeft(t *testing.T) {
	root := t.TempDir()
	day := filepath.Join(root, "record", "live", "cam", "2026-12-04")
	os.MkdirAll(day, 0o755)
	init := testInit(t)
	f1 := testFragment(t, 1, 0, 0)
	f2 := testFragment(t, 2, 3600, 1024)
	whole := append(append(append([]byte{}, init...), f1...), f2...)
	cut := append(append([]byte{}, whole...), testFragment(t, 3, 7200, 2048)[:20]...)
	os.WriteFile(filepath.Join(day, ".12-00-00.mp4"), cut, 0o644)
	os.WriteFile(filepath.Join(day, ".13-00-00.mp4"), init, 0o644)
	os.WriteFile(filepath.Join(day, "11-00-00.mp4"), whole, 0o644)

	got := Recover(root, "record", nil)
	if len(got) != 1 || got[0].Path != filepath.Join(day, "12-00-00.mp4") || got[0].Fragments != 2 || got[0].Dropped != 20 {
		t.Fatalf("Recover: %+v", got)
	}
	b, _ := os.ReadFile(got[0].Path)
	if string(b) != string(whole) {
		t.Errorf("the finalised file has %d bytes, want the %d of its whole fragments", len(b), len(whole))
	}
	entries, _ := os.ReadDir(day)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 2 || names[0] != "11-00-00.mp4" || names[1] != "12-00-00.mp4" {
		t.Errorf("files after Recover: %v", names)
	}
}
