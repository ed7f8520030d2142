package record

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var cleanPathCases = []struct {
	in   string
	want string
	ok   bool
}{
	{"/record/live/cam/2026-12-04/12-00-00.mp4", "record/live/cam/2026-12-04/12-00-00.mp4", true},
	{"//record///a.mp4", "record/a.mp4", true},
	{"/", "", true},
	{"/record/../../etc/passwd", "", false},
	{"/..", "", false},
	{"/record/..", "", false},
	{"/record/.hidden.mp4", "", false}, // a file still being written
	{"/record/.git/config", "", false},
	{`/record/..\..\windows`, "", false},
	{"/record/a\x00.mp4", "", false},
	{"/C:/windows", "", false},
	{"record/a.mp4", "", false},                   // not a request path
	{"/record/%2e%2e/x", "record/%2e%2e/x", true}, // a decoded path: a literal name, which climbs nowhere
}

func TestCleanPath(t *testing.T) {
	for _, tc := range cleanPathCases {
		got, ok := CleanPath(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("CleanPath(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzCleanPath(f *testing.F) {
	for _, tc := range cleanPathCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rel, ok := CleanPath(p)
		if !ok {
			return
		}
		if strings.HasPrefix(rel, "/") || strings.ContainsAny(rel, "\\\x00:") {
			t.Fatalf("CleanPath(%q) = %q", p, rel)
		}
		for _, part := range strings.Split(rel, "/") {
			if part == "" && rel != "" || strings.HasPrefix(part, ".") {
				t.Fatalf("CleanPath(%q) = %q: part %q", p, rel, part)
			}
		}
		root := filepath.FromSlash("/srv/www")
		if j := filepath.Join(root, filepath.FromSlash(rel)); j != root && !strings.HasPrefix(j, root+string(filepath.Separator)) {
			t.Fatalf("CleanPath(%q) = %q joins to %q, outside the root", p, rel, j)
		}
	})
}

// get asks h for a raw path, as a client that does not clean its paths
// sends it (the server's ServeMux would redirect; the handler must hold
// on its own).
func get(h http.Handler, path string, header ...string) *http.Response {
	req := httptest.NewRequest("GET", "/", nil)
	req.URL.Path = path
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Result()
}

// TestFilesServeTheRootOnly: files under the root are served with Range;
// "..", hidden files and symlinks out of the root get 403, missing ones
// 404, directories 403 unless dirMenu lists them.
func TestFilesServeTheRootOnly(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("root:x:0:0"), 0o644)
	root := t.TempDir()
	day := filepath.Join(root, "record", "live", "cam", "2026-12-04")
	os.MkdirAll(day, 0o755)
	body := []byte(strings.Repeat("0123456789", 100))
	os.WriteFile(filepath.Join(day, "12-00-00.mp4"), body, 0o644)
	os.WriteFile(filepath.Join(day, ".12-00-05.mp4"), body, 0o644)
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "record", "link")); err != nil {
		t.Skipf("no symlinks here: %v", err)
	}
	os.Symlink(outside, filepath.Join(root, "record", "dirlink"))
	h := &Files{Root: root}

	res := get(h, "/record/live/cam/2026-12-04/12-00-00.mp4", "Range", "bytes=10-19")
	got, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusPartialContent || string(got) != string(body[10:20]) || res.Header.Get("Content-Type") != "video/mp4" {
		t.Errorf("Range: %d %q %s", res.StatusCode, got, res.Header.Get("Content-Type"))
	}
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/record/live/cam/2026-12-04/12-00-00.mp4", http.StatusOK},
		{"/record/../../etc/passwd", http.StatusForbidden},
		{"/record/live/cam/2026-12-04/.12-00-05.mp4", http.StatusForbidden},
		{"/record/link", http.StatusForbidden},
		{"/record/dirlink/secret", http.StatusForbidden},
		{"/record/live/cam/2026-12-04/", http.StatusForbidden},
		{"/record/none.mp4", http.StatusNotFound},
	} {
		res := get(h, tc.path)
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != tc.want || strings.Contains(string(b), "root:") {
			t.Errorf("GET %s: %d, want %d (%q)", tc.path, res.StatusCode, tc.want, b)
		}
	}
	h.DirMenu = true
	res = get(h, "/record/live/cam/2026-12-04/")
	list, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(list), "12-00-00.mp4") || strings.Contains(string(list), ".12-00-05") {
		t.Errorf("dirMenu listing: %d %s", res.StatusCode, list)
	}
}
