package record

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Window is ZLMediaKit's on-disk HLS with [hls] segKeep=0: the playlist
// lists the newest Num segments; a segment that leaves it stays on disk
// while it is among the Retain newest that left (players a little behind
// still fetch it), and is deleted DeleteDelay after it left, never sooner.
type Window struct {
	Num         int           // [hls] segNum: segments the playlist lists (at least 1)
	Retain      int           // [hls] segRetain: segments kept on disk past the playlist
	DeleteDelay time.Duration // [hls] deleteDelaySec
}

// goneSegment is a segment out of the playlist, waiting to be deleted.
type goneSegment struct {
	path string
	left time.Time
}

// slide drops the segments past the window from the playlist and deletes
// those past Retain whose DeleteDelay has run out. A segment that cannot be
// deleted is left: it costs disk, not the recording.
func (pl *hlsPlaylist) slide(now time.Time) {
	w := pl.window
	if w == nil {
		return
	}
	for len(pl.lines) > max(w.Num, 1) {
		line := pl.lines[0]
		pl.lines = pl.lines[1:]
		if strings.HasPrefix(line, "#EXT-X-DISCONTINUITY\n") {
			pl.discSeq++
		}
		name := line[strings.LastIndexByte(line, '\n')+1:]
		pl.gone = append(pl.gone, goneSegment{path: filepath.Join(filepath.Dir(pl.dir), filepath.FromSlash(name)), left: now})
	}
	for len(pl.gone) > w.Retain && now.Sub(pl.gone[0].left) >= w.DeleteDelay {
		os.Remove(pl.gone[0].path)
		pl.gone = pl.gone[1:]
	}
}
