package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/server"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

type mp4Probe struct {
	Streams []struct {
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
		Duration  string `json:"duration"`
		Packets   string `json:"nb_read_packets"`
	} `json:"streams"`
}

// probeFile ffprobes a recording: its codecs, the video's duration in
// seconds and its frame count; any error ffprobe prints fails the test.
func probeFile(t *testing.T, file string) (codecs string, video float64, frames int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-count_packets", "-show_entries",
		"stream=codec_type,codec_name,duration,nb_read_packets", "-of", "json", file)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffprobe %s: %v\n%s", file, err, stderr.String())
	}
	var p mp4Probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range p.Streams {
		names = append(names, s.CodecName)
		if s.CodecType == "video" {
			video, _ = strconv.ParseFloat(s.Duration, 64)
			frames, _ = strconv.Atoi(s.Packets)
		}
	}
	return strings.Join(names, ","), video, frames
}

// pushFor pushes the test file over RTMP for secs seconds at real-time
// speed (it loops the 10 s file) and returns once ffmpeg is done.
func pushFor(t *testing.T, url string, secs int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+15)*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-v", "error", "-re", "-stream_loop", "1",
		"-i", testmedia.File(t, testmedia.H264AAC), "-t", strconv.Itoa(secs), "-c", "copy", "-f", "flv", url).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg push: %v\n%s", err, out)
	}
}

// visibleFiles lists a directory's .mp4 files, and fails on hidden ones
// (a file left in progress).
func visibleFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("file still in progress: %s", e.Name())
			continue
		}
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func apiGet(t *testing.T, srv *server.Server, call string, q string) map[string]any {
	t.Helper()
	res, err := http.Get("http://" + srv.Addr("http") + "/index/api/" + call + "?secret=s3cret&vhost=__defaultVhost__&" + q)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMP4RecordingCutsFilesOnKeyframes: 12 s pushed with fileSecond=5 and
// enable_mp4=1 make three files in ZLMediaKit's layout, each H.264+AAC with
// the duration it was reported with; together they hold every video frame
// pushed. on_record_mp4 and getMp4RecordFile report each file, and a Range
// request on one gets 206 with its bytes.
func TestMP4RecordingCutsFilesOnKeyframes(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	root := t.TempDir()
	hr := newHookRecorder(t, nil)
	srv, _ := startHooked(t, hr.url, func(c *config.Config) {
		c.API.Secret = "s3cret"
		c.Record.EnableMP4 = true
		c.Record.FilePath = root
		c.Record.RootPath = root
		c.Record.FileSecond = 5
	}, "on_record_mp4")
	day := time.Now().Format("2006-01-02")
	pushFor(t, "rtmp://"+srv.Addr("rtmp")+"/live/cam", 12)
	testutil.WaitFor(t, 15*time.Second, "three on_record_mp4 calls", func() bool { return len(hr.of("on_record_mp4", nil)) >= 3 })

	dir := filepath.Join(root, "record", "live", "cam", day)
	files := visibleFiles(t, dir)
	if len(files) != 3 {
		t.Fatalf("files in %s: %v, want 3", dir, files)
	}
	hooks := map[string]map[string]any{}
	for _, b := range hr.of("on_record_mp4", nil) {
		hooks[b["file_name"].(string)] = b
	}
	var total float64
	var frames int
	for _, name := range files {
		p := filepath.Join(dir, name)
		codecs, secs, n := probeFile(t, p)
		if codecs != "h264,aac" {
			t.Errorf("%s: codecs %s, want h264,aac", name, codecs)
		}
		h := hooks[name]
		if h == nil {
			t.Fatalf("no on_record_mp4 for %s: %s", name, hr.dump())
		}
		st, _ := os.Stat(p)
		want := map[string]any{"app": "live", "stream": "cam", "vhost": "__defaultVhost__", "file_path": p,
			"folder": filepath.Join(root, "record", "live", "cam") + "/", "url": "record/live/cam/" + day + "/" + name,
			"file_size": float64(st.Size())}
		for k, v := range want {
			if h[k] != v {
				t.Errorf("on_record_mp4 of %s: %s=%v, want %v", name, k, h[k], v)
			}
		}
		if tl, _ := h["time_len"].(float64); math.Abs(secs-tl) > 0.05*tl {
			t.Errorf("%s: ffprobe duration %.3f s, on_record_mp4 time_len %.3f s: more than 5%% apart", name, secs, tl)
		}
		t.Logf("%s: %.3f s, %d frames, %d bytes", name, secs, n, st.Size())
		total += secs
		frames += n
	}
	if math.Abs(total-12) > 0.04 || frames < 299 || frames > 301 {
		t.Errorf("the files hold %.3f s and %d video frames; 12 s (300 frames at 25 fps) were pushed", total, frames)
	}

	month := apiGet(t, srv, "getMp4RecordFile", "app=live&stream=cam&period="+day[:7])
	if fmt.Sprint(month["data"].(map[string]any)["paths"]) != "["+day+"]" {
		t.Errorf("getMp4RecordFile of the month: %v", month)
	}
	list := apiGet(t, srv, "getMp4RecordFile", "app=live&stream=cam&period="+day)
	if fmt.Sprint(list["data"].(map[string]any)["paths"]) != fmt.Sprint(files) {
		t.Errorf("getMp4RecordFile of the day: %v, want %v", list, files)
	}

	// A Range request, as a player seeking in the file makes.
	whole, _ := os.ReadFile(filepath.Join(dir, files[0]))
	req, _ := http.NewRequest("GET", "http://"+srv.Addr("http")+"/record/live/cam/"+day+"/"+files[0], nil)
	req.Header.Set("Range", "bytes=1000-1999")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusPartialContent || string(body) != string(whole[1000:2000]) {
		t.Errorf("Range bytes=1000-1999: %s, %d bytes (equal: %v)", res.Status, len(body), string(body) == string(whole[1000:2000]))
	}
	// Paths that climb out of rootPath never reach a file outside it.
	for _, p := range []string{"/record/../../etc/passwd", "/record/%2e%2e/%2e%2e/etc/passwd", "/record/..%2f..%2fetc/passwd", "/record/live/cam/" + day + "/"} {
		res, err := http.Get("http://" + srv.Addr("http") + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden && res.StatusCode != http.StatusNotFound || strings.Contains(string(body), "root:") {
			t.Errorf("GET %s: %s, want 403 or 404", p, res.Status)
		}
	}
}

// berthProcess returns a start function of Berth built from ./cmd/berth as
// a process of its own (the kill -9 tests), RTMP on rtmpPort and every
// other listener off (SRT's and WebRTC's fixed default ports too), with
// extra ini text; each start waits for the banner and is killed at the end.
func berthProcess(t *testing.T, rtmpPort int, extra string) func() (*exec.Cmd, *testutil.LogBuffer) {
	bin := testutil.GoBinary(t, "github.com/berthmedia/berth/cmd/berth")
	ini := filepath.Join(t.TempDir(), "berth.ini")
	os.WriteFile(ini, []byte(fmt.Sprintf("[general]\nlisten_ip=127.0.0.1\n[rtmp]\nport=%d\n[rtsp]\nport=0\n[http]\nport=0\n[rtp_proxy]\nport=0\n"+
		"[srt]\nport=0\n[rtc]\nport=0\n", rtmpPort)+extra), 0o644)
	return func() (*exec.Cmd, *testutil.LogBuffer) {
		logs := &testutil.LogBuffer{}
		cmd := exec.Command(bin, "-c", ini)
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		logs.WaitLine(t, "Berth is listening")
		return cmd, logs
	}
}

// TestMP4RecordingSurvivesKill9: Berth, run as a process, is killed with
// SIGKILL 7 s into a recording; the next start finalises the hidden file
// it left, which then plays 6-7 s.
func TestMP4RecordingSurvivesKill9(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	root := t.TempDir()
	rtmpPort := freePort(t)
	run := berthProcess(t, rtmpPort, fmt.Sprintf("[protocol]\nenable_mp4=1\n[record]\nfilePath=%s\nfileSecond=60\n", root))
	berth, logs := run()
	_, stopPush := pushLoop(t, fmt.Sprintf("rtmp://127.0.0.1:%d/live/crash", rtmpPort))
	logs.WaitLine(t, "fmp4 muxer started")
	begun := time.Now()
	dir := filepath.Join(root, "record", "live", "crash", time.Now().Format("2006-01-02"))
	var hidden string
	testutil.WaitFor(t, 5*time.Second, "the hidden file in progress", func() bool {
		m, _ := filepath.Glob(filepath.Join(dir, ".*.mp4"))
		if len(m) == 1 {
			hidden = m[0]
		}
		return hidden != ""
	})
	// 7 s into the recording, by the pushed media: poll the file's growth
	// against the clock, not a sleep of a guessed length.
	testutil.WaitFor(t, 15*time.Second, "7 s of recording", func() bool { return time.Since(begun) >= 7*time.Second })
	berth.Process.Signal(syscall.SIGKILL)
	berth.Wait()
	stopPush()

	_, logs2 := run()
	final := filepath.Join(dir, strings.TrimPrefix(filepath.Base(hidden), "."))
	logs2.WaitLine(t, "finalised", final)
	if _, err := os.Stat(hidden); err == nil {
		t.Errorf("%s is still there after the restart", hidden)
	}
	codecs, secs, _ := probeFile(t, final)
	if codecs != "h264,aac" || secs < 6 || secs > 7.5 {
		t.Errorf("the finalised file: %s, %.3f s; want h264,aac and 6-7 s", codecs, secs)
	}
	t.Logf("after kill -9 at ~7 s: %s plays %.3f s", filepath.Base(final), secs)
}

// TestFullDiskStopsOnlyTheRecording: a recording to a tmpfs of 2 MB stops
// when the disk is full with one error line naming the file and the cause;
// the stream goes on and its HTTP-FLV player keeps reading, and the file
// written so far is closed and plays.
func TestFullDiskStopsOnlyTheRecording(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	dir := mountTmpfs(t, "size=2m")
	hr := newHookRecorder(t, nil)
	srv, logs := startHooked(t, hr.url, func(c *config.Config) {
		c.Record.EnableMP4 = true
		c.Record.FilePath = dir
	}, "on_record_mp4")
	push(t, srv, testmedia.H264CBR, "rtmp://"+srv.Addr("rtmp")+"/live/full", "live/full")
	res, err := http.Get("http://" + srv.Addr("http") + "/live/full.live.flv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	var read atomicInt
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := res.Body.Read(buf)
			read.add(n)
			if err != nil {
				return
			}
		}
	}()
	line := logs.WaitLine(t, "level=ERROR", "MP4 recording stopped", "no space left on device", dir)
	t.Logf("the error line: %s", line)
	before := read.get()
	testutil.WaitFor(t, 10*time.Second, "the FLV player to read 1 MB more after the disk filled", func() bool { return read.get() >= before+1<<20 })
	if srv.Recorder().Recording("live/full") || srv.Hub.Get("live/full") == nil {
		t.Error("after the full disk: the recording goes on, or the stream ended")
	}
	if l := logs.Line("level=WARN", "live/full", "behind"); l != "" {
		t.Errorf("a reader fell behind: %s", l)
	}
	f := hr.wait(t, "on_record_mp4", map[string]any{"stream": "full"})
	if codecs, secs, _ := probeFile(t, f["file_path"].(string)); codecs != "h264,aac" || secs < 1 {
		t.Errorf("the file closed at the full disk: %s, %.2f s", codecs, secs)
	}
}

// TestReadOnlyDirStopsOnlyTheRecording: a recording to a read-only
// filesystem stops at once with one error line naming the directory and
// the cause; the stream stays published and plays.
func TestReadOnlyDirStopsOnlyTheRecording(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	dir := mountTmpfs(t, "ro,size=1m")
	hr := newHookRecorder(t, nil)
	srv, logs := startHooked(t, hr.url, func(c *config.Config) {
		c.Record.EnableMP4 = true
		c.Record.FilePath = dir
	})
	push(t, srv, testmedia.H264AAC, "rtmp://"+srv.Addr("rtmp")+"/live/ro", "live/ro")
	logs.WaitLine(t, "level=ERROR", "MP4 recording stopped", "read-only file system", filepath.Join(dir, "record", "live", "ro"))
	if n := strings.Count(logs.String(), "MP4 recording stopped"); n != 1 {
		t.Errorf("%d stop lines, want 1", n)
	}
	if codecs, err := probe("rtmp://" + srv.Addr("rtmp") + "/live/ro"); err != nil || codecs != "h264,aac" {
		t.Errorf("the stream after its recording failed: %q %v", codecs, err)
	}
}

// mountTmpfs mounts a tmpfs with opts on a new directory for the test,
// owned by the test's user: as root, or through sudo -n as CI's .ci/run
// uses it. Without either it skips (CI unset) or fails (CI=true).
func mountTmpfs(t *testing.T, opts string) string {
	t.Helper()
	dir := t.TempDir()
	var sudo []string
	if os.Geteuid() != 0 {
		sudo = []string{"sudo", "-n"}
	}
	opts += fmt.Sprintf(",uid=%d,gid=%d,mode=0755", os.Getuid(), os.Getgid())
	args := append(append([]string{}, sudo...), "mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir)
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		testutil.Missing(t, fmt.Sprintf("cannot mount a tmpfs (%s: %v: %s): run the tests as root or with password-less sudo", strings.Join(args, " "), err, out))
	}
	t.Cleanup(func() {
		args := append(append([]string{}, sudo...), "umount", "-l", dir)
		exec.Command(args[0], args[1:]...).Run()
	})
	return dir
}

type atomicInt struct {
	mu sync.Mutex
	n  int
}

func (a *atomicInt) add(n int) { a.mu.Lock(); a.n += n; a.mu.Unlock() }
func (a *atomicInt) get() int  { a.mu.Lock(); defer a.mu.Unlock(); return a.n }

// TestStartRecordAPI: startRecord with customized_path and max_second
// records a live stream there in files of that length, isRecording says
// so, stopRecord closes the file (on_record_mp4); a type that is neither
// 0 nor 1 is refused.
func TestStartRecordAPI(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	custom := t.TempDir()
	hr := newHookRecorder(t, nil)
	srv, _ := startHooked(t, hr.url, func(c *config.Config) { c.API.Secret = "s3cret" }, "on_record_mp4")
	pushLoop(t, "rtmp://"+srv.Addr("rtmp")+"/live/api")
	testutil.WaitFor(t, 10*time.Second, "the stream", func() bool { return srv.Hub.Get("live/api") != nil })
	q := "type=1&app=live&stream=api"
	if r := apiGet(t, srv, "isRecording", q); r["status"] != false {
		t.Errorf("isRecording before: %v", r)
	}
	if r := apiGet(t, srv, "startRecord", q+"&max_second=2&customized_path="+custom); r["code"] != 0.0 || r["result"] != true {
		t.Fatalf("startRecord: %v", r)
	}
	if r := apiGet(t, srv, "isRecording", q); r["status"] != true {
		t.Errorf("isRecording while recording: %v", r)
	}
	first := hr.wait(t, "on_record_mp4", map[string]any{"stream": "api"})
	if p := first["file_path"].(string); !strings.HasPrefix(p, filepath.Join(custom, "record", "live", "api")) || first["time_len"].(float64) > 3.5 {
		t.Errorf("the first file of max_second=2 under customized_path: %v", first)
	}
	if r := apiGet(t, srv, "stopRecord", q); r["code"] != 0.0 {
		t.Errorf("stopRecord: %v", r)
	}
	testutil.WaitFor(t, 10*time.Second, "the stopped recording's last file", func() bool { return len(hr.of("on_record_mp4", map[string]any{"stream": "api"})) >= 2 })
	if r := apiGet(t, srv, "isRecording", q); r["status"] != false {
		t.Errorf("isRecording after stopRecord: %v", r)
	}
	if r := apiGet(t, srv, "stopRecord", q); r["code"] != -1.0 {
		t.Errorf("a second stopRecord: %v", r)
	}
	if r := apiGet(t, srv, "startRecord", "type=2&app=live&stream=api"); r["code"] != -300.0 {
		t.Errorf("startRecord type=2: %v", r)
	}
	if r := apiGet(t, srv, "startRecord", "type=1&app=live&stream=none"); r["code"] != -500.0 {
		t.Errorf("startRecord of a missing stream: %v", r)
	}
}

// TestHLSRecording: startRecord type=0 keeps the stream's HLS on disk: a
// segment per [hls] segDur reported with on_record_ts, a playlist that
// lists them and ends with EXT-X-ENDLIST at stopRecord; the playlist plays
// over HTTP from [http] rootPath and its EXTINFs add up to what ffprobe
// measures.
func TestHLSRecording(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	root := t.TempDir()
	hr := newHookRecorder(t, nil)
	srv, _ := startHooked(t, hr.url, func(c *config.Config) {
		c.API.Secret = "s3cret"
		c.Record.FilePath = root
		c.Record.RootPath = root
		c.HLS.SegDur = 1
	}, "on_record_ts")
	pushLoop(t, "rtmp://"+srv.Addr("rtmp")+"/live/hlsrec")
	testutil.WaitFor(t, 10*time.Second, "the stream", func() bool { return srv.Hub.Get("live/hlsrec") != nil })
	q := "type=0&app=live&stream=hlsrec"
	if r := apiGet(t, srv, "startRecord", q); r["result"] != true {
		t.Fatalf("startRecord type=0: %v", r)
	}
	if r := apiGet(t, srv, "isRecording", q); r["status"] != true {
		t.Errorf("isRecording type=0: %v", r)
	}
	testutil.WaitFor(t, 15*time.Second, "three on_record_ts calls", func() bool { return len(hr.of("on_record_ts", nil)) >= 3 })
	if r := apiGet(t, srv, "stopRecord", q); r["result"] != true {
		t.Fatalf("stopRecord type=0: %v", r)
	}
	lists, _ := filepath.Glob(filepath.Join(root, "record", "live", "hlsrec", "*", "*.m3u8"))
	if len(lists) != 1 {
		t.Fatalf("playlists: %v", lists)
	}
	var playlist string
	testutil.WaitFor(t, 5*time.Second, "EXT-X-ENDLIST", func() bool {
		b, _ := os.ReadFile(lists[0])
		playlist = string(b)
		return strings.Contains(playlist, "#EXT-X-ENDLIST")
	})
	var listed float64
	for _, l := range strings.Split(playlist, "\n") {
		if v, ok := strings.CutPrefix(l, "#EXTINF:"); ok {
			f, _ := strconv.ParseFloat(strings.TrimSuffix(v, ","), 64)
			listed += f
		}
	}
	segs := hr.of("on_record_ts", nil)
	if n := strings.Count(playlist, "#EXTINF"); n != len(segs) {
		t.Errorf("the playlist lists %d segments, on_record_ts reported %d:\n%s", n, len(segs), playlist)
	}
	for _, s := range segs {
		if _, err := os.Stat(s["file_path"].(string)); err != nil || s["app"] != "live" || s["stream"] != "hlsrec" {
			t.Errorf("on_record_ts: %v (%v)", s, err)
		}
	}
	rel, _ := filepath.Rel(root, lists[0])
	url := "http://" + srv.Addr("http") + "/" + filepath.ToSlash(rel)
	codecs, _, _ := probeFile(t, url)
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", url).Output()
	if err != nil {
		t.Fatal(err)
	}
	secs, _ := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if codecs != "h264,aac" || math.Abs(secs-listed) > 0.1 {
		t.Errorf("the HLS recording over HTTP: %s, %.3f s; the playlist lists %.3f s", codecs, secs, listed)
	}
	decode3s(t, url)
	t.Logf("%d segments, %.3f s listed, ffprobe %.3f s", len(segs), listed, secs)
}

// TestFastStartFilesAreProgressive: with [record] fastStart=1 each closed
// file is rewritten with its moov in front of one mdat (no moof left),
// on_record_mp4 reports it with its new size, and it plays as long as it
// was reported.
func TestFastStartFilesAreProgressive(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	root := t.TempDir()
	hr := newHookRecorder(t, nil)
	srv, _ := startHooked(t, hr.url, func(c *config.Config) {
		c.Record.EnableMP4 = true
		c.Record.FilePath = root
		c.Record.FileSecond = 2
		c.Record.FastStart = true
	}, "on_record_mp4")
	pushLoop(t, "rtmp://"+srv.Addr("rtmp")+"/live/fast")
	testutil.WaitFor(t, 15*time.Second, "two on_record_mp4 calls", func() bool { return len(hr.of("on_record_mp4", nil)) >= 2 })
	for _, h := range hr.of("on_record_mp4", nil)[:2] {
		p := h["file_path"].(string)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var order []string
		for pos := 0; pos+8 <= len(b); {
			n := int(b[pos])<<24 | int(b[pos+1])<<16 | int(b[pos+2])<<8 | int(b[pos+3])
			order = append(order, string(b[pos+4:pos+8]))
			if n < 8 {
				break
			}
			pos += n
		}
		if strings.Join(order, ",") != "ftyp,moov,mdat" || h["file_size"] != float64(len(b)) {
			t.Errorf("%s: boxes %v, %d bytes (on_record_mp4: %v)", p, order, len(b), h["file_size"])
		}
		codecs, secs, _ := probeFile(t, p)
		if tl := h["time_len"].(float64); codecs != "h264,aac" || math.Abs(secs-tl) > 0.05*tl {
			t.Errorf("%s: %s, %.3f s; on_record_mp4 time_len %.3f s", p, codecs, secs, tl)
		}
		decode3s(t, p)
	}
}
