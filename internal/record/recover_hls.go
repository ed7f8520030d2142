package record

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// tsPacket is the MPEG-TS packet length (ISO/IEC 13818-1 §2.4.3.2).
const tsPacket = 188

// recoverHLS finalises what a killed HLS recording left under base: each
// hidden ".N.ts" segment being written is cut to whole 188-byte packets,
// renamed N.ts and listed in its playlist (<dir>.m3u8) with the length its
// timestamps span; then every playlist without #EXT-X-ENDLIST is closed
// (RFC 8216 §4.3.3.4), since no recording runs before Recover returns.
func recoverHLS(base string, log *slog.Logger) []Recovered {
	var segs, lists []string
	filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		name := d.Name()
		switch {
		case strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".m3u8.tmp"):
			os.Remove(p) // a playlist rewrite cut short; the playlist it replaced is whole
		case strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".ts"):
			segs = append(segs, p)
		case !strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".m3u8"):
			lists = append(lists, p)
		}
		return nil
	})
	var out []Recovered
	for _, p := range segs {
		r, err := finaliseSegment(p)
		switch {
		case err != nil:
			log.Warn("HLS segment left in progress by a previous run could not be finalised", "file", p, "err", err,
				"fix", "remove the file, or check the directory is writable")
		case r.Path == "":
			log.Info("HLS segment left in progress by a previous run held no whole packet: removed", "file", p)
		default:
			log.Info("HLS segment left in progress by a previous run finalised", "file", r.Path, "packets", r.Fragments, "bytes_cut", r.Dropped)
			out = append(out, r)
		}
	}
	for _, p := range lists {
		if err := closePlaylist(p); err != nil {
			log.Warn("HLS playlist left open by a previous run could not be closed", "file", p, "err", err,
				"fix", "append #EXT-X-ENDLIST to it by hand, or check the directory is writable")
		}
	}
	return out
}

// finaliseSegment cuts a hidden segment to whole packets, renames it and
// lists it in its playlist; a segment without a whole packet is removed.
func finaliseSegment(hidden string) (Recovered, error) {
	b, err := os.ReadFile(hidden)
	if err != nil {
		return Recovered{}, err
	}
	whole := len(b) - len(b)%tsPacket
	if whole == 0 {
		return Recovered{}, os.Remove(hidden)
	}
	r := Recovered{Fragments: whole / tsPacket, Dropped: int64(len(b) - whole)}
	if r.Dropped > 0 {
		if err := os.Truncate(hidden, int64(whole)); err != nil {
			return r, err
		}
	}
	dir, name := filepath.Split(hidden)
	r.Path = filepath.Join(dir, strings.TrimPrefix(name, "."))
	if err := os.Rename(hidden, r.Path); err != nil {
		return r, err
	}
	dir = filepath.Clean(dir)
	uri := filepath.Base(dir) + "/" + filepath.Base(r.Path)
	return r, appendSegment(dir+".m3u8", uri, tsDuration(b[:whole]))
}

// appendSegment lists one more segment in a playlist, made if the crash
// came before its first segment closed.
func appendSegment(list, uri string, dur time.Duration) error {
	b, err := os.ReadFile(list)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	text := string(b)
	if text == "" {
		text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-TARGETDURATION:0\n#EXT-X-MEDIA-SEQUENCE:0\n"
	}
	text = strings.TrimSuffix(text, "#EXT-X-ENDLIST\n")
	secs := dur.Seconds()
	lines := strings.Split(text, "\n")
	for i, l := range lines { // §4.3.3.1: the target duration covers every segment
		if v, ok := strings.CutPrefix(l, "#EXT-X-TARGETDURATION:"); ok {
			if t, _ := strconv.Atoi(v); float64(t) < secs+0.5 {
				lines[i] = fmt.Sprintf("#EXT-X-TARGETDURATION:%d", int(secs+0.5))
			}
		}
	}
	text = strings.Join(lines, "\n") + fmt.Sprintf("#EXTINF:%.3f,\n%s\n", secs, uri)
	return replaceFile(list, text)
}

// closePlaylist appends #EXT-X-ENDLIST to a playlist that lacks it.
func closePlaylist(list string) error {
	b, err := os.ReadFile(list)
	if err != nil || strings.Contains(string(b), "#EXT-X-ENDLIST") || !strings.HasPrefix(string(b), "#EXTM3U") {
		return err
	}
	return replaceFile(list, string(b)+"#EXT-X-ENDLIST\n")
}

// replaceFile writes text to a temporary file, fsyncs it and renames it
// over name, so a crash leaves the old file or the new one, whole.
func replaceFile(name, text string) error {
	tmp := filepath.Join(filepath.Dir(name), "."+filepath.Base(name)+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.WriteString(text)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// tsDuration is the span of the PES timestamps (PTS, 90 kHz) in whole TS
// packets, plus one 25 fps frame for the last frame's own length, as the
// recorder counts a segment it closes; 0 when there is none. Bytes that are
// not TS are skipped, not trusted (ISO/IEC 13818-1 §2.4.3.2, §2.4.3.7).
func tsDuration(b []byte) time.Duration {
	var lo, hi int64 = -1, -1
	for ; len(b) >= tsPacket; b = b[tsPacket:] {
		p := b[:tsPacket]
		if p[0] != 0x47 || p[1]&0x40 == 0 { // sync byte; payload_unit_start_indicator
			continue
		}
		afc, off := p[3]>>4&3, 4
		if afc&2 != 0 {
			off += 1 + int(p[4])
		}
		if afc&1 == 0 || off+14 > tsPacket {
			continue
		}
		pes := p[off:]
		if pes[0] != 0 || pes[1] != 0 || pes[2] != 1 || pes[7]&0x80 == 0 || pes[8] < 5 {
			continue
		}
		pts := int64(pes[9]>>1&7)<<30 | int64(pes[10])<<22 | int64(pes[11]>>1)<<15 | int64(pes[12])<<7 | int64(pes[13]>>1)
		if lo < 0 || pts < lo {
			lo = pts
		}
		hi = max(hi, pts)
	}
	if lo < 0 {
		return 0
	}
	return time.Duration(hi-lo)*time.Second/90000 + 40*time.Millisecond
}
