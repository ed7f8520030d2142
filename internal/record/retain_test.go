package record

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRetainRemovesTheOldestDays: with maxDays=2, today and yesterday stay
// and older days go, in every stream; a file being written stays.
func TestRetainRemovesTheOldestDays(t *testing.T) {
	root := t.TempDir()
	now := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	mk := func(rel string) {
		p := filepath.Join(root, "record", filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("x"), 0o644)
	}
	mk("live/a/2026-12-07/05-00-00.mp4")
	mk("live/a/2026-12-06/05-00-00.mp4")
	mk("live/a/2026-12-05/05-00-00.mp4")
	mk("live/b/2026-11-01/05-00-00.mp4")
	mk("live/b/2026-11-30/.23-00-00.mp4")
	tests := []struct {
		maxDays int
		want    []string
	}{
		{0, nil},
		{2, []string{"live/b/2026-11-01", "live/a/2026-12-05"}},
	}
	for _, tc := range tests {
		got := Retain(root, "record", tc.maxDays, now, nil)
		if len(got) != len(tc.want) {
			t.Fatalf("maxDays=%d removed %v, want %v", tc.maxDays, got, tc.want)
		}
		for i, w := range tc.want {
			if got[i] != filepath.Join(root, "record", filepath.FromSlash(w)) {
				t.Errorf("maxDays=%d removal %d: %s, want %s (oldest first)", tc.maxDays, i, got[i], w)
			}
		}
	}
	for _, keep := range []string{"live/a/2026-12-07/05-00-00.mp4", "live/a/2026-12-06/05-00-00.mp4", "live/b/2026-11-30/.23-00-00.mp4"} {
		if _, err := os.Stat(filepath.Join(root, "record", filepath.FromSlash(keep))); err != nil {
			t.Errorf("%s was removed", keep)
		}
	}
}
