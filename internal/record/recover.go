package record

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// Recovered is one in-progress file a previous run left (it was killed, or
// the machine lost power) and Recover finalised.
type Recovered struct {
	Path      string // the visible name it has now
	Fragments int    // whole fragments kept (TS packets for an HLS segment)
	Dropped   int64  // bytes of a part-written last fragment (or packet) cut off
}

// Recover finds the hidden ".HH-MM-SS.mp4" files under <root>/<appName>
// that a previous run did not close, cuts each after its last whole
// fragment and renames it to its visible name, so every file on disk plays.
// A file without one whole fragment is removed. HLS recordings' segments
// and playlists are finalised too (recover_hls.go). Each is logged; the server
// calls it at start, before any recording begins.
func Recover(root, appName string, log *slog.Logger) []Recovered {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var out []Recovered
	base := filepath.Join(root, appName)
	filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil // an unreadable directory is skipped, not fatal
		}
		name := d.Name()
		if strings.HasPrefix(name, ".") && strings.HasSuffix(name, fastStartSuffix) {
			os.Remove(p) // a fastStart rewrite cut short; the file it rewrote is whole
			log.Info("unfinished fastStart rewrite removed (its recording is kept fragmented)", "file", p)
			return nil
		}
		if !strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".mp4") {
			return nil
		}
		r, err := finalise(p)
		if err != nil {
			log.Warn("recording left in progress by a previous run could not be finalised", "file", p, "err", err,
				"fix", "remove the file, or check the directory is writable")
			return nil
		}
		if r.Fragments == 0 {
			log.Info("recording left in progress by a previous run held no whole fragment: removed", "file", p)
			return nil
		}
		log.Info("recording left in progress by a previous run finalised", "file", r.Path, "fragments", r.Fragments, "bytes_cut", r.Dropped)
		out = append(out, r)
		return nil
	})
	return append(out, recoverHLS(base, log)...)
}

func finalise(hidden string) (Recovered, error) {
	f, err := os.OpenFile(hidden, os.O_RDWR, 0)
	if err != nil {
		return Recovered{}, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return Recovered{}, err
	}
	length, frags, err := completeLength(f, st.Size())
	if err != nil && !errors.Is(err, errNotMP4) {
		f.Close()
		return Recovered{}, err
	}
	if err != nil || frags == 0 {
		f.Close()
		return Recovered{}, os.Remove(hidden)
	}
	r := Recovered{Fragments: frags, Dropped: st.Size() - length}
	if length < st.Size() {
		if err := f.Truncate(length); err != nil {
			f.Close()
			return r, err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return r, err
	}
	f.Close()
	dir, name := filepath.Split(hidden)
	visible := strings.TrimPrefix(name, ".")
	r.Path = filepath.Join(dir, visible)
	for i := 1; i < 100; i++ {
		if _, err := os.Stat(r.Path); errors.Is(err, fs.ErrNotExist) {
			break
		}
		r.Path = filepath.Join(dir, fmt.Sprintf("%s-r%d.mp4", strings.TrimSuffix(visible, ".mp4"), i))
	}
	return r, os.Rename(hidden, r.Path)
}
