package record

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/muxring"
)

// HLS recording (startRecord type=0): the stream's shared MPEG-TS muxer
// (the one HTTP-TS and live HLS read) cut into segments on keyframes, kept
// on disk with a VOD-style playlist that grows as each segment closes:
//
//	<root>/<appName>/<app>/<stream>/<YYYY-MM-DD>/<HH-MM-SS>.m3u8
//	<root>/<appName>/<app>/<stream>/<YYYY-MM-DD>/<HH-MM-SS>/<N>.ts
//
// A segment is written as a hidden ".N.ts" and renamed when closed; the
// playlist is rewritten (temporary file, fsync, rename) after each segment,
// so the playlist on disk always lists whole segments only (RFC 8216 §6.2.1:
// EXT-X-PLAYLIST-TYPE EVENT, EXT-X-ENDLIST when the recording ends).

// DefaultSegment is the least length of an HLS recording's segment when
// Options.Segment is 0.
const DefaultSegment = 2 * time.Second

// StartHLS records s as HLS until StopHLS, the stream's end or a write error.
func (m *Manager) StartHLS(s *hub.Stream, o Options) error { return m.start(s, o, true) }

// StopHLS ends the HLS recording of path; false when there is none.
func (m *Manager) StopHLS(path string) bool { return m.stopRec(path, true) }

// RecordingHLS reports whether path is being recorded as HLS.
func (m *Manager) RecordingHLS(path string) bool { return m.recording(path, true) }

type hlsSegment struct {
	f        *os.File
	hidden   string
	name     string // "N.ts"
	start    time.Time
	firstDTS time.Duration
	lastDTS  time.Duration
	size     int64
}

type hlsPlaylist struct {
	path    string // the .m3u8
	dir     string // its segments' directory
	folder  string // the stream's directory
	root    string
	seq     int
	lines   []string // "#EXTINF:...\nDIR/N.ts" per segment
	target  float64
	disc    bool // the next segment follows a discontinuity
	window  *Window
	gone    []goneSegment // segments out of the playlist, still on disk (hls_window.go)
	discSeq int           // EXT-X-DISCONTINUITY-SEQUENCE: discontinuities that left the playlist
}

func (m *Manager) followHLS(ctx context.Context, r *recording, log *slog.Logger) error {
	cur, err := m.OpenTS(r.stream)
	if err != nil {
		return err
	}
	defer cur.Close()
	if _, _, err := cur.Ready(ctx); err != nil {
		return err
	}
	set := m.Settings()
	root := set.Root
	if r.opts.Root != "" {
		root = r.opts.Root
	}
	segLen := r.opts.Segment
	if segLen <= 0 {
		segLen = set.Segment
	}
	if segLen <= 0 {
		segLen = DefaultSegment
	}
	app, stream := splitPath(r.stream.Path)
	start := time.Now()
	folder := streamDir(root, set.AppName, app, stream)
	base := start.Format("15-04-05")
	day := filepath.Join(folder, start.Format("2006-01-02"))
	pl := &hlsPlaylist{path: filepath.Join(day, base+".m3u8"), dir: filepath.Join(day, base), folder: folder + string(filepath.Separator), root: root, window: set.Window}
	if err := os.MkdirAll(pl.dir, 0o755); err != nil {
		return &writeError{path: pl.dir, err: err}
	}
	var seg *hlsSegment
	closeSeg := func(end time.Duration) error {
		if seg == nil {
			return nil
		}
		s := seg
		seg = nil
		err := s.f.Sync()
		if cerr := s.f.Close(); err == nil {
			err = cerr
		}
		final := filepath.Join(pl.dir, s.name)
		if err == nil {
			err = os.Rename(s.hidden, final)
		}
		if err != nil {
			return &writeError{path: s.hidden, err: err}
		}
		dur := end - s.firstDTS
		if err := pl.add(s.name, dur); err != nil {
			return err
		}
		if m.OnSegment != nil {
			m.OnSegment(File{Path: final, Name: s.name, Folder: pl.folder, URL: urlOf(root, final), Size: s.size,
				Start: s.start, Duration: dur, App: app, Stream: stream})
		}
		return nil
	}
	finish := func() error {
		var end time.Duration
		if seg != nil {
			end = seg.lastDTS + 40*time.Millisecond // the last frame's own length is not known: one 25 fps frame
		}
		err := closeSeg(end)
		if pl.seq > 0 {
			if perr := pl.write(true); err == nil {
				err = perr
			}
		}
		return err
	}
	chunks := make([]*muxring.Chunk, 0, 64)
	for {
		chunks, err = cur.Next(ctx, chunks[:0])
		for i, ch := range chunks {
			chunks[i] = nil
			if seg != nil && ch.Key && (ch.DTS-seg.firstDTS >= segLen || ch.Discontinuity) {
				end := ch.DTS
				if ch.Discontinuity {
					end = seg.lastDTS + 40*time.Millisecond
					pl.disc = true
				}
				if err := closeSeg(end); err != nil {
					finish()
					return err
				}
			}
			if seg == nil {
				if !ch.Key {
					continue
				}
				name := fmt.Sprintf("%d.ts", pl.seq)
				hidden := filepath.Join(pl.dir, "."+name)
				f, err := os.OpenFile(hidden, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
				if err != nil {
					finish()
					return &writeError{path: hidden, err: err}
				}
				seg = &hlsSegment{f: f, hidden: hidden, name: name, start: time.Now(), firstDTS: ch.DTS}
			}
			n, werr := seg.f.Write(ch.Data)
			seg.size += int64(n)
			if werr != nil {
				werr = &writeError{path: seg.hidden, err: werr}
				finish()
				return werr
			}
			seg.lastDTS = ch.DTS
		}
		if err != nil {
			if ferr := finish(); ferr != nil && !isEnd(err) {
				return ferr
			}
			return err
		}
	}
}

func isEnd(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, hub.ErrEnded) || errors.Is(err, muxring.ErrStopped)
}

// add lists a closed segment and rewrites the playlist.
func (pl *hlsPlaylist) add(name string, dur time.Duration) error {
	secs := dur.Seconds()
	line := fmt.Sprintf("#EXTINF:%.3f,\n%s/%s", secs, filepath.Base(pl.dir), name)
	if pl.disc {
		line = "#EXT-X-DISCONTINUITY\n" + line
		pl.disc = false
	}
	pl.lines = append(pl.lines, line)
	pl.target = max(pl.target, secs)
	pl.seq++
	pl.slide(time.Now())
	return pl.write(false)
}

// write replaces the playlist on disk at once (temporary file, fsync,
// rename), so a reader or a crash never sees half of it.
func (pl *hlsPlaylist) write(ended bool) error {
	var b strings.Builder
	// RFC 8216 §4.3.3.1: the target duration is the longest segment, rounded.
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n")
	if pl.window == nil { // §4.3.3.5: an EVENT playlist never loses a segment; a rolling window does
		b.WriteString("#EXT-X-PLAYLIST-TYPE:EVENT\n")
	}
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:%d\n", int(pl.target+0.5), pl.seq-len(pl.lines))
	if pl.discSeq > 0 { // §4.3.3.3
		fmt.Fprintf(&b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", pl.discSeq)
	}
	for _, l := range pl.lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	tmp := filepath.Join(filepath.Dir(pl.path), "."+filepath.Base(pl.path)+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return &writeError{path: tmp, err: err}
	}
	_, err = f.WriteString(b.String())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, pl.path)
	}
	if err != nil {
		os.Remove(tmp)
		return &writeError{path: pl.path, err: err}
	}
	return nil
}
