package record

import (
	"path/filepath"
	"strings"
	"testing"
)

var playbackPaths = []struct {
	path string
	ok   bool
}{
	{"record/live/cam/2026-12-04/12-00-00.mp4", true},
	{"record/a/b/c/live/cam/2026-12-04/12-00-00-1.mp4", true},
	{"record/../etc/passwd.mp4", false},
	{"record/live/../../x.mp4", false},
	{"record//live/x.mp4", false},
	{"record/live/cam/2026-12-04/.12-00-00.mp4", false},
	{"record/live/cam/2026-12-04/12-00-00.ts", false},
	{"live/cam/2026-12-04/12-00-00.mp4", false},
	{"record/C:/x.mp4", false},
	{`record/live\..\..\x.mp4`, false},
	{"record/.mp4", false},
	{"record/", false},
}

func TestPlaybackFileStaysUnderTheRecordings(t *testing.T) {
	set := Settings{Root: "/rec", AppName: "record"}
	for _, c := range playbackPaths {
		got := set.File(c.path)
		if (got != "") != c.ok {
			t.Errorf("File(%q) = %q, want ok=%v", c.path, got, c.ok)
		}
		if got != "" && got != filepath.Join("/rec", filepath.FromSlash(c.path)) {
			t.Errorf("File(%q) = %q", c.path, got)
		}
	}
}

// FuzzPlaybackFile: no stream path a reader sends names a file outside
// <filePath>/<appName>, a hidden file or a file that is not .mp4.
func FuzzPlaybackFile(f *testing.F) {
	for _, c := range playbackPaths {
		f.Add(c.path)
	}
	set := Settings{Root: "/rec", AppName: "record"}
	base := filepath.Join("/rec", "record") + string(filepath.Separator)
	f.Fuzz(func(t *testing.T, p string) {
		got := set.File(p)
		if got == "" {
			return
		}
		if !strings.HasPrefix(got, base) || !strings.HasSuffix(got, ".mp4") || strings.HasPrefix(filepath.Base(got), ".") {
			t.Fatalf("File(%q) = %q: outside %s or not a visible .mp4", p, got, base)
		}
		if rel, err := filepath.Rel(base, got); err != nil || !filepath.IsLocal(rel) {
			t.Fatalf("File(%q) = %q escapes %s", p, got, base)
		}
	})
}
