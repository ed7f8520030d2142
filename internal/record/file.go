package record

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berthmedia/berth/internal/muxring"
)

// File is a closed recording, as on_record_mp4 and the logs report it.
type File struct {
	Path     string // the file after its rename
	Name     string // "HH-MM-SS.mp4"
	Folder   string // the stream's directory, <root>/<appName>/<app>/<stream>/
	URL      string // Path relative to the root, with slashes: record/app/stream/YYYY-MM-DD/HH-MM-SS.mp4
	Size     int64
	Start    time.Time
	Duration time.Duration // of the lead (video) track's samples
	App      string
	Stream   string
}

// fileWriter writes one recording: the init segment, then each fragment
// with its decode times moved so the file starts at 0, to a hidden
// ".HH-MM-SS.mp4" that close renames. Every write is a whole fragment, so
// the file on disk is always a playable fragmented MP4 up to its last
// complete fragment (see recover.go for what a crash leaves).
type fileWriter struct {
	f         *os.File
	hidden    string
	info      File
	root      string
	scales    map[uint32]uint32
	offsets   map[uint32]uint64 // set by the first fragment
	buf       []byte
	tfdts     []tfdt // rebase's scratch
	good      int64  // bytes up to the end of the last whole fragment
	synced    time.Time
	syncEvery time.Duration
}

// streamDir is <root>/<appName>/<app>/<stream>, ZLMediaKit's layout.
func streamDir(root, appName, app, stream string) string {
	return filepath.Join(root, appName, filepath.FromSlash(app), stream)
}

// createFile opens the hidden file of a recording that starts at start.
// Two files of one stream within a second (a republish) do not overwrite
// each other: the second gets "-1" after its time.
func createFile(root, appName, app, stream string, start time.Time, init []byte, syncEvery time.Duration) (*fileWriter, error) {
	folder := streamDir(root, appName, app, stream)
	day := filepath.Join(folder, start.Format("2006-01-02"))
	if err := os.MkdirAll(day, 0o755); err != nil {
		return nil, err
	}
	base := start.Format("15-04-05")
	var name, hidden string
	var f *os.File
	for i := 0; ; i++ {
		name = base + ".mp4"
		if i > 0 {
			name = fmt.Sprintf("%s-%d.mp4", base, i)
		}
		hidden = filepath.Join(day, "."+name)
		if _, err := os.Stat(filepath.Join(day, name)); err == nil {
			continue
		}
		var err error
		f, err = os.OpenFile(hidden, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if os.IsExist(err) && i < 100 {
			continue
		}
		if err != nil {
			return nil, err
		}
		break
	}
	w := &fileWriter{f: f, hidden: hidden, root: root, scales: timescales(init), syncEvery: syncEvery, synced: time.Now(),
		info: File{Path: filepath.Join(day, name), Name: name, Folder: folder + string(filepath.Separator),
			Start: start, App: app, Stream: stream}}
	if err := w.writeAll(init); err != nil {
		f.Close()
		os.Remove(hidden)
		return nil, err
	}
	return w, nil
}

func (w *fileWriter) writeAll(b []byte) error {
	n, err := w.f.Write(b)
	if err != nil {
		return err
	}
	w.good += int64(n)
	return nil
}

// write appends one fragment and, every syncEvery, asks the disk to keep
// what was written (fsync): a kill loses nothing written, a power cut at
// most syncEvery of media.
func (w *fileWriter) write(ch *muxring.Chunk) error {
	if w.offsets == nil {
		w.offsets = fileOffsets(ch.Data, w.scales)
	}
	w.buf = rebase(w.buf[:0], ch.Data, w.offsets, &w.tfdts)
	if err := w.writeAll(w.buf); err != nil {
		return err
	}
	w.info.Duration += ch.Duration
	if time.Since(w.synced) >= w.syncEvery {
		w.synced = time.Now()
		return w.f.Sync()
	}
	return nil
}

// close drops a part-written last fragment (after a write error), syncs,
// closes and renames the file to its visible name.
func (w *fileWriter) close() (File, error) {
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if st, err := w.f.Stat(); err == nil && st.Size() > w.good {
		keep(w.f.Truncate(w.good))
	}
	keep(w.f.Sync())
	keep(w.f.Close())
	w.info.Size = w.good
	if err := os.Rename(w.hidden, w.info.Path); err != nil {
		return w.info, err
	}
	w.info.URL = urlOf(w.root, w.info.Path)
	return w.info, firstErr
}

// urlOf is p relative to root with slashes, as ZLMediaKit's hooks give it.
func urlOf(root, p string) string {
	rel, err := filepath.Rel(root, p)
	if err != nil || strings.HasPrefix(rel, "..") {
		return filepath.ToSlash(p)
	}
	return filepath.ToSlash(rel)
}
