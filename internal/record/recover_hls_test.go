package record

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tsWithPTS is one TS packet starting a PES with the given PTS (90 kHz),
// with an adaptation field when adapt is set.
func tsWithPTS(pts int64, adapt bool) []byte {
	p := make([]byte, tsPacket)
	p[0], p[1], p[2], p[3] = 0x47, 0x40|0x01, 0x00, 0x10
	off := 4
	if adapt {
		p[3] = 0x30
		p[4], p[5] = 1, 0x10 // adaptation_field_length 1: flags only
		off = 6
	}
	copy(p[off:], []byte{0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5,
		byte(0x21 | (pts>>29)&0x0e), byte(pts >> 22), byte(0x01 | (pts>>14)&0xfe), byte(pts >> 7), byte(0x01 | (pts<<1)&0xfe)})
	return p
}

func TestTSDuration(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want time.Duration
	}{
		{name: "empty", in: nil, want: 0},
		{name: "one PES", in: tsWithPTS(90000, false), want: 40 * time.Millisecond},
		{name: "two seconds", in: append(tsWithPTS(90000, false), tsWithPTS(3*90000, true)...), want: 2040 * time.Millisecond},
		{name: "not TS", in: make([]byte, 3*tsPacket), want: 0},
		{name: "33-bit PTS", in: append(tsWithPTS(1<<32, false), tsWithPTS(1<<32+45000, false)...), want: 540 * time.Millisecond},
	}
	for _, c := range cases {
		if got := tsDuration(c.in); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func FuzzTSDuration(f *testing.F) {
	f.Add(append(tsWithPTS(90000, false), tsWithPTS(3*90000, true)...))
	f.Add(make([]byte, tsPacket))
	f.Fuzz(func(t *testing.T, b []byte) { tsDuration(b) })
}

// TestRecoverHLSFinalisesWhatACrashLeft: the segment being written is cut
// to whole packets, renamed and listed with its timestamps' span; its open
// playlist gets #EXT-X-ENDLIST; a segment without a whole packet is removed
// and its playlist closed; a closed playlist is left as it was.
func TestRecoverHLSFinalisesWhatACrashLeft(t *testing.T) {
	root := t.TempDir()
	day := filepath.Join(root, "record", "live", "cam", "2026-12-04")
	open := "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.000,\n12-00-00/0.ts\n"
	closed := open + "#EXT-X-ENDLIST\n"
	seg := append(append(tsWithPTS(0, false), tsWithPTS(3*90000, false)...), 0x47, 0x00) // 3 s, then a cut packet
	files := map[string]string{
		"12-00-00.m3u8":      open,
		"12-00-00/0.ts":      string(tsWithPTS(0, false)),
		"12-00-00/.1.ts":     string(seg),
		"13-00-00.m3u8":      open,
		"13-00-00/.1.ts":     "\x47\x40",
		"11-00-00.m3u8":      closed,
		".11-00-00.m3u8.tmp": "#EXTM3U\n",
	}
	for name, body := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(day, name)), 0o755)
		os.WriteFile(filepath.Join(day, name), []byte(body), 0o644)
	}
	got := Recover(root, "record", nil)
	if len(got) != 1 || got[0].Path != filepath.Join(day, "12-00-00", "1.ts") || got[0].Fragments != 2 || got[0].Dropped != 2 {
		t.Fatalf("Recover: %+v", got)
	}
	want := map[string]string{
		"12-00-00.m3u8": strings.Replace(open, "TARGETDURATION:2", "TARGETDURATION:3", 1) + "#EXTINF:3.040,\n12-00-00/1.ts\n#EXT-X-ENDLIST\n",
		"13-00-00.m3u8": closed,
		"11-00-00.m3u8": closed,
	}
	for name, body := range want {
		if b, _ := os.ReadFile(filepath.Join(day, name)); string(b) != body {
			t.Errorf("%s:\n%s\nwant:\n%s", name, b, body)
		}
	}
	for _, gone := range []string{"13-00-00/.1.ts", ".11-00-00.m3u8.tmp", "12-00-00/.1.ts"} {
		if _, err := os.Stat(filepath.Join(day, gone)); err == nil {
			t.Errorf("%s is still there", gone)
		}
	}
	if st, err := os.Stat(got[0].Path); err != nil || st.Size() != 2*tsPacket {
		t.Errorf("%s: %v, want %d bytes", got[0].Path, err, 2*tsPacket)
	}
}
