package record

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHLSWindow: with segKeep=0 the playlist lists the newest segNum
// segments with the right media sequence, segRetain more stay on disk, and
// older ones go once deleteDelaySec has passed since they left.
func TestHLSWindow(t *testing.T) {
	cases := []struct {
		name        string
		window      *Window
		added       int
		wait        time.Duration // the clock at the last add, past the first
		listed      int
		onDisk      int
		firstListed int
	}{
		{name: "keep every segment", window: nil, added: 6, listed: 6, onDisk: 6, firstListed: 0},
		{name: "window, no delay", window: &Window{Num: 3, Retain: 1}, added: 6, listed: 3, onDisk: 4, firstListed: 3},
		{name: "window, delay not over", window: &Window{Num: 2, Retain: 0, DeleteDelay: time.Hour}, added: 6, listed: 2, onDisk: 6, firstListed: 4},
		{name: "window, delay over", window: &Window{Num: 2, Retain: 0, DeleteDelay: 10 * time.Second}, added: 6, wait: time.Minute, listed: 2, onDisk: 2, firstListed: 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			day := t.TempDir()
			pl := &hlsPlaylist{path: filepath.Join(day, "10-00-00.m3u8"), dir: filepath.Join(day, "10-00-00"), window: c.window}
			os.MkdirAll(pl.dir, 0o755)
			start := time.Now()
			for i := range c.added {
				os.WriteFile(filepath.Join(pl.dir, fmt.Sprintf("%d.ts", i)), []byte{0x47}, 0o644)
				pl.add(fmt.Sprintf("%d.ts", i), time.Second) // add slides at the real clock
				now := start
				if i == c.added-1 {
					now = start.Add(c.wait)
				}
				pl.slide(now)
			}
			b, _ := os.ReadFile(pl.path)
			if n := strings.Count(string(b), "#EXTINF"); n != c.listed {
				t.Errorf("listed %d, want %d:\n%s", n, c.listed, b)
			}
			if want := fmt.Sprintf("#EXT-X-MEDIA-SEQUENCE:%d\n", c.firstListed); !strings.Contains(string(b), want) ||
				!strings.Contains(string(b), fmt.Sprintf("10-00-00/%d.ts", c.firstListed)) {
				t.Errorf("want %q and segment %d first:\n%s", want, c.firstListed, b)
			}
			if ev := strings.Contains(string(b), "PLAYLIST-TYPE:EVENT"); ev != (c.window == nil) {
				t.Errorf("EVENT type %v for window %v", ev, c.window)
			}
			files, _ := filepath.Glob(filepath.Join(pl.dir, "*.ts"))
			if len(files) != c.onDisk {
				t.Errorf("%d segments on disk, want %d: %v", len(files), c.onDisk, files)
			}
		})
	}
}
