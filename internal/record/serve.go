package record

import (
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Files serves a directory as ZLMediaKit's HTTP server serves its
// [http] rootPath: GET and HEAD of files, with Range requests (RFC 9110
// §14, via http.ServeContent), so a player seeks in a recording. No path
// leaves the root: ".." parts, hidden names (a recording still being
// written, .git) and symlinks that point outside are refused with 403.
// A directory is listed only with DirMenu ([http] dirMenu=1).
type Files struct {
	Root    string
	DirMenu bool
	Log     *slog.Logger
}

// CleanPath turns a request's (decoded) URL path into a slash-separated
// path relative to the root; ok is false for a path that would climb out
// of it or reach a hidden name. Empty parts collapse ("//a" is "a").
func CleanPath(urlPath string) (rel string, ok bool) {
	if !strings.HasPrefix(urlPath, "/") || strings.ContainsAny(urlPath, "\\\x00") {
		return "", false
	}
	var parts []string
	for _, p := range strings.Split(urlPath, "/") {
		switch {
		case p == "":
			continue
		case strings.HasPrefix(p, "."), strings.Contains(p, ":"): // "..", ".hidden"; "C:" on Windows
			return "", false
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "/"), true
}

func (h *Files) log() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}

func (h *Files) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "static files take GET and HEAD", http.StatusMethodNotAllowed)
		return
	}
	rel, ok := CleanPath(r.URL.Path)
	if !ok {
		h.log().Warn("static file refused: the path climbs out of [http] rootPath or names a hidden file", "url", r.URL.Path, "remote", r.RemoteAddr)
		http.Error(w, "forbidden: the path leaves [http] rootPath or names a hidden file", http.StatusForbidden)
		return
	}
	if h.Root == "" {
		http.NotFound(w, r)
		return
	}
	root, err := filepath.EvalSymlinks(h.Root)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	real, err := filepath.EvalSymlinks(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if within, _ := filepath.Rel(root, real); within == ".." || strings.HasPrefix(within, ".."+string(filepath.Separator)) || filepath.IsAbs(within) {
		h.log().Warn("static file refused: a symlink under [http] rootPath points outside it", "url", r.URL.Path, "target", real, "remote", r.RemoteAddr)
		http.Error(w, "forbidden: the path leaves [http] rootPath", http.StatusForbidden)
		return
	}
	f, err := os.Open(real)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if st.IsDir() {
		if !h.DirMenu {
			http.Error(w, "forbidden: directory listing is off ([http] dirMenu=0)", http.StatusForbidden)
			return
		}
		h.listDir(w, r, f)
		return
	}
	switch filepath.Ext(real) { // the system's MIME table may lack them
	case ".mp4":
		w.Header().Set("Content-Type", "video/mp4")
	case ".m3u8":
		w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
	case ".ts":
		w.Header().Set("Content-Type", "video/mp2t")
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	http.ServeContent(w, r, st.Name(), st.ModTime(), f)
}

func (h *Files) listDir(w http.ResponseWriter, r *http.Request, f *os.File) {
	entries, err := f.ReadDir(-1)
	if err != nil {
		http.Error(w, "cannot read the directory", http.StatusInternalServerError)
		return
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		names = append(names, n)
	}
	sort.Strings(names)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	base := strings.TrimSuffix(r.URL.Path, "/") + "/"
	fmt.Fprintf(w, "<!doctype html><title>%s</title><ul>\n", html.EscapeString(base))
	for _, n := range names {
		u := url.URL{Path: base + n}
		fmt.Fprintf(w, "<li><a href=\"%s\">%s</a></li>\n", html.EscapeString(u.EscapedPath()), html.EscapeString(n))
	}
	fmt.Fprintln(w, "</ul>")
}
