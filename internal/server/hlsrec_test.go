package server_test

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// listedSeconds adds up a playlist's EXTINFs.
func listedSeconds(playlist string) (secs float64) {
	for _, l := range strings.Split(playlist, "\n") {
		if v, ok := strings.CutPrefix(l, "#EXTINF:"); ok {
			f, _ := strconv.ParseFloat(strings.TrimSuffix(v, ","), 64)
			secs += f
		}
	}
	return secs
}

// probeDuration is the duration ffprobe measures for a playlist or file.
func probeDuration(t *testing.T, url string) float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", url).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", url, err)
	}
	secs, _ := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	return secs
}

// TestHLSRecordingAtPublish: [record] enable_hls=1, or on_publish's
// enable_hls with the key off, records the stream as HLS from its publish
// (on_record_ts per segment), and the stream's end closes the playlist with
// EXT-X-ENDLIST. With [hls] segKeep=0 the playlist is a rolling window of
// segNum segments and older segments leave the disk.
func TestHLSRecordingAtPublish(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	cases := []struct {
		name  string
		key   bool   // [record] enable_hls
		reply string // on_publish's answer
		keep  bool   // [hls] segKeep
	}{
		{name: "record.enable_hls", key: true, keep: true},
		{name: "on_publish enable_hls", reply: `{"code":0,"enable_hls":true}`, keep: true},
		{name: "segKeep=0 window", key: true, keep: false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			hr := newHookRecorder(t, func(hook string, _ map[string]any) string {
				if hook == "on_publish" {
					return c.reply
				}
				return ""
			})
			srv, _ := startHooked(t, hr.url, func(cfg *config.Config) {
				cfg.Record.FilePath = root
				cfg.Record.EnableHLS = c.key
				cfg.HLS.SegDur = 1
				cfg.HLS.SegKeep = c.keep
				cfg.HLS.SegNum, cfg.HLS.SegRetain, cfg.HLS.DeleteSec = 2, 1, 0
			}, "on_record_ts")
			_, stop := pushLoop(t, "rtmp://"+srv.Addr("rtmp")+"/live/atpub")
			testutil.WaitFor(t, 20*time.Second, "five on_record_ts calls", func() bool { return len(hr.of("on_record_ts", nil)) >= 5 })
			stop()
			lists, _ := filepath.Glob(filepath.Join(root, "record", "live", "atpub", "*", "*.m3u8"))
			if len(lists) != 1 {
				t.Fatalf("playlists: %v", lists)
			}
			var playlist string
			testutil.WaitFor(t, 10*time.Second, "EXT-X-ENDLIST at the stream's end", func() bool {
				b, _ := os.ReadFile(lists[0])
				playlist = string(b)
				return strings.Contains(playlist, "#EXT-X-ENDLIST")
			})
			segs, _ := filepath.Glob(filepath.Join(strings.TrimSuffix(lists[0], ".m3u8"), "*.ts"))
			listed, reported := strings.Count(playlist, "#EXTINF"), len(hr.of("on_record_ts", nil))
			if c.keep && (listed != reported || len(segs) != reported || !strings.Contains(playlist, "#EXT-X-MEDIA-SEQUENCE:0\n")) {
				t.Errorf("segKeep=1: %d listed, %d on disk, %d reported; want all alike:\n%s", listed, len(segs), reported, playlist)
			}
			if !c.keep && (listed != 2 || len(segs) != 3 || strings.Contains(playlist, "#EXT-X-MEDIA-SEQUENCE:0\n")) {
				t.Errorf("segKeep=0, segNum=2, segRetain=1: %d listed, %d on disk (of %d made); want 2 and 3:\n%s", listed, len(segs), reported, playlist)
			}
			if secs := probeDuration(t, lists[0]); math.Abs(secs-listedSeconds(playlist)) > 0.15 {
				t.Errorf("ffprobe measures %.3f s, the playlist lists %.3f s", secs, listedSeconds(playlist))
			}
		})
	}
}

// TestHLSRecordingSurvivesKill9: Berth, run as a process with [record]
// enable_hls=1, is killed with SIGKILL inside a segment; the next start
// cuts the hidden segment to whole TS packets, lists it and closes the
// playlist with EXT-X-ENDLIST, and the playlist plays as long as it lists.
func TestHLSRecordingSurvivesKill9(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	root := t.TempDir()
	rtmpPort := freePort(t)
	run := berthProcess(t, rtmpPort, fmt.Sprintf("[record]\nenable_hls=1\nfilePath=%s\n[hls]\nsegDur=1\n", root))
	berth, _ := run()
	_, stopPush := pushLoop(t, fmt.Sprintf("rtmp://127.0.0.1:%d/live/crash", rtmpPort))
	var list, hidden string
	testutil.WaitFor(t, 15*time.Second, "two segments listed and a third in progress", func() bool {
		lists, _ := filepath.Glob(filepath.Join(root, "record", "live", "crash", "*", "*.m3u8"))
		if len(lists) != 1 {
			return false
		}
		list = lists[0]
		b, _ := os.ReadFile(list)
		m, _ := filepath.Glob(filepath.Join(strings.TrimSuffix(list, ".m3u8"), ".*.ts"))
		if len(m) == 1 {
			hidden = m[0]
		}
		st, err := os.Stat(hidden)
		return strings.Count(string(b), "#EXTINF") >= 2 && err == nil && st.Size() > 0
	})
	berth.Process.Signal(syscall.SIGKILL)
	berth.Wait()
	stopPush()

	_, logs2 := run()
	final := filepath.Join(filepath.Dir(hidden), strings.TrimPrefix(filepath.Base(hidden), "."))
	logs2.WaitLine(t, "finalised", final)
	st, err := os.Stat(final)
	if err != nil || st.Size()%188 != 0 {
		t.Fatalf("the finalised segment: %v, want whole 188-byte packets", err)
	}
	b, _ := os.ReadFile(list)
	playlist := string(b)
	if !strings.HasSuffix(playlist, filepath.Base(final)+"\n#EXT-X-ENDLIST\n") {
		t.Errorf("the playlist does not end with the finalised segment and EXT-X-ENDLIST:\n%s", playlist)
	}
	codecs, _, _ := probeFile(t, list)
	secs := probeDuration(t, list)
	if codecs != "h264,aac" || math.Abs(secs-listedSeconds(playlist)) > 0.15 {
		t.Errorf("the recovered playlist: %s, %.3f s; it lists %.3f s", codecs, secs, listedSeconds(playlist))
	}
	t.Logf("after kill -9: %d segments, %.3f s listed, ffprobe %.3f s", strings.Count(playlist, "#EXTINF"), listedSeconds(playlist), secs)
}
