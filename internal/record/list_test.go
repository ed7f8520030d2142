package record

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestListAndDelete: getMp4RecordFile's answers for a month (days) and a
// day (files, not the one in progress), deleteRecordDirectory of a file and
// of a day (the file in progress stays), and the arguments refused.
func TestListAndDelete(t *testing.T) {
	root := t.TempDir()
	m := &Manager{}
	m.SetSettings(Settings{Root: root, AppName: "record"})
	for _, f := range []string{"2026-12-04/12-00-00.mp4", "2026-12-04/13-00-00.mp4", "2026-12-04/.14-00-00.mp4", "2026-12-05/00-00-00.mp4", "2026-11-30/23-00-00.mp4"} {
		p := filepath.Join(root, "record", "live", "cam", filepath.FromSlash(f))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("x"), 0o644)
	}
	for _, tc := range []struct{ period, want string }{
		{"2026-12", "[2026-12-04 2026-12-05]"},
		{"2026-11", "[2026-11-30]"},
		{"2026-12-04", "[12-00-00.mp4 13-00-00.mp4]"},
		{"2027-01", "[]"},
	} {
		dir, paths, err := m.List("live", "cam", tc.period, "")
		if err != nil || fmt.Sprint(paths) != tc.want {
			t.Errorf("List %s: %v %v, want %s", tc.period, paths, err, tc.want)
		}
		if tc.period == "2026-12-04" && dir != filepath.Join(root, "record", "live", "cam", "2026-12-04")+string(filepath.Separator) {
			t.Errorf("List %s: rootPath %s", tc.period, dir)
		}
	}
	for _, bad := range []struct{ app, stream, period string }{
		{"live", "cam", "2026"}, {"live", "cam", "../../etc"}, {"..", "cam", "2026-12"}, {"live", "../x", "2026-12"}, {"live/../..", "cam", "2026-12"},
	} {
		if _, _, err := m.List(bad.app, bad.stream, bad.period, ""); !errors.Is(err, ErrBadArgument) {
			t.Errorf("List %v: %v, want ErrBadArgument", bad, err)
		}
	}
	if _, err := m.Delete("live", "cam", "2026-12-04", "../../2026-12-05", ""); !errors.Is(err, ErrBadArgument) {
		t.Errorf("Delete of a name that climbs: %v", err)
	}
	if _, err := m.Delete("live", "cam", "2026-12-04", "12-00-00.mp4", ""); err != nil {
		t.Fatal(err)
	}
	if _, paths, _ := m.List("live", "cam", "2026-12-04", ""); fmt.Sprint(paths) != "[13-00-00.mp4]" {
		t.Errorf("after deleting a file: %v", paths)
	}
	if _, err := m.Delete("live", "cam", "2026-12-04", "", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "record", "live", "cam", "2026-12-04", ".14-00-00.mp4")); err != nil {
		t.Errorf("the file in progress went with its day: %v", err)
	}
	if _, paths, _ := m.List("live", "cam", "2026-12-04", ""); len(paths) != 0 {
		t.Errorf("after deleting the day: %v", paths)
	}
}

// FuzzStreamDir: whatever app and stream a call names, the directory it
// lists or deletes is under the recordings' root.
func FuzzStreamDir(f *testing.F) {
	f.Add("live", "cam", "2026-12-04")
	f.Add("../..", "x", "2026-12")
	f.Add("a/b", "..", "../2026-12-04")
	f.Add("a//b", "c\x00", "2026-12-04/..")
	root := filepath.FromSlash("/srv/www")
	m := &Manager{}
	m.SetSettings(Settings{Root: root, AppName: "record"})
	f.Fuzz(func(t *testing.T, app, stream, period string) {
		dir, err := m.StreamDir(app, stream, "")
		if err != nil {
			return
		}
		base := filepath.Join(root, "record") + string(filepath.Separator)
		if !strings.HasPrefix(dir, base) || dir == base {
			t.Fatalf("StreamDir(%q, %q) = %q, outside %s", app, stream, dir, base)
		}
		if dayRE.MatchString(period) && !strings.HasPrefix(filepath.Join(dir, period), base) {
			t.Fatalf("the day %q of %q escapes", period, dir)
		}
	})
}
