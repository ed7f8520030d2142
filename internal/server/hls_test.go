package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/server"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// avStart is each stream's start_time as ffprobe reads url, by codec type.
func avStart(t *testing.T, url string) map[string]float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name,start_time",
		"-of", "json", url).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", url, err)
	}
	var p struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
			CodecName string `json:"codec_name"`
			StartTime string `json:"start_time"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	got := map[string]float64{}
	for _, s := range p.Streams {
		var f float64
		fmt.Sscan(s.StartTime, &f)
		got[s.CodecType] = f
		got[s.CodecName] = 1
	}
	return got
}

// checkPlays: ffprobe finds H.264 and AAC starting within 100 ms of each
// other, and ffmpeg decodes 5 s without a message at -v error.
func checkPlays(t *testing.T, url string) {
	t.Helper()
	st := avStart(t, url)
	if st["h264"] != 1 || st["aac"] != 1 {
		t.Errorf("%s: ffprobe found %v, want h264 and aac", url, st)
	}
	if d := math.Abs(st["video"] - st["audio"]); d > 0.1 {
		t.Errorf("%s: video starts at %.3f s, audio at %.3f s: %.0f ms apart, want ≤ 100", url, st["video"], st["audio"], d*1000)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-v", "error", "-i", url, "-t", "5", "-f", "null", "-").CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("ffmpeg decoding 5 s of %s: %v\n%s", url, err, out)
	}
}

func getBody(t *testing.T, u string) (*http.Response, []byte) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

func resolve(base, ref string) string {
	b, _ := url.Parse(base)
	r, _ := url.Parse(ref)
	return b.ResolveReference(r).String()
}

// mediaPlaylist fetches and parses a media playlist.
func mediaPlaylist(t *testing.T, u string) *playlist.Media {
	t.Helper()
	res, b := getBody(t, u)
	if res.StatusCode != 200 {
		t.Fatalf("%s: %s %s", u, res.Status, b)
	}
	pl, err := playlist.Unmarshal(b)
	if err != nil {
		t.Fatalf("%s: %v\n%s", u, err, b)
	}
	m, ok := pl.(*playlist.Media)
	if !ok {
		t.Fatalf("%s: not a media playlist:\n%s", u, b)
	}
	return m
}

// checkSegmentDurations: every segment but the newest lasts segDur within
// 10% (the test media has a keyframe a second).
func checkSegmentDurations(t *testing.T, name string, segs []*playlist.MediaSegment, segDur time.Duration) {
	t.Helper()
	n := 0
	for _, s := range segs {
		if s.Gap {
			continue
		}
		n++
		if math.Abs(float64(s.Duration-segDur)) > 0.1*float64(segDur) {
			t.Errorf("%s: a segment lasts %v, want %v ± 10%%", name, s.Duration, segDur)
		}
	}
	if n == 0 {
		t.Errorf("%s: no segment listed", name)
	}
}

// TestHLSFMP4PlaysFromRTSPAndRTMP: an ffmpeg push over RTSP and one over
// RTMP are each read as hls.fmp4.m3u8 by ffprobe and ffmpeg; the
// playlists are LL-HLS ones (parts of at most 1 s, blocking reload) with
// segments of segDur, and each viewer counts as a reader while it asks.
func TestHLSFMP4PlaysFromRTSPAndRTMP(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	push(t, srv, testmedia.H264AAC, "rtsp://"+srv.Addr("rtsp")+"/live/r", "live/r")
	push(t, srv, testmedia.H264AAC, "rtmp://"+srv.Addr("rtmp")+"/live/m", "live/m")
	for _, path := range []string{"live/r", "live/m"} {
		u := "http://" + srv.Addr("http") + "/" + path + "/hls.fmp4.m3u8"
		checkPlays(t, u)
		res, b := getBody(t, u)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/vnd.apple.mpegurl" ||
			res.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("%s: %s %v\n%s", u, res.Status, res.Header, b)
		}
		pl, err := playlist.Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		mv, ok := pl.(*playlist.Multivariant)
		if !ok || len(mv.Variants) != 1 || !strings.Contains(mv.Variants[0].URI, "berth_session=") {
			t.Fatalf("%s: want one variant whose URI carries the session:\n%s", u, b)
		}
		media := resolve(u, mv.Variants[0].URI)
		m := mediaPlaylist(t, media)
		if m.ServerControl == nil || !m.ServerControl.CanBlockReload || m.PartInf == nil || m.PartInf.PartTarget > time.Second || m.PreloadHint == nil {
			t.Errorf("%s: not an LL-HLS playlist with parts ≤ 1 s: %+v", media, m)
		}
		checkSegmentDurations(t, media, m.Segments, 2*time.Second)
		st := srv.Hub.Get(path)
		if n := countProto(st.ReaderList(), "hls.fmp4"); n < 1 {
			t.Errorf("%s: %d hls.fmp4 readers, want the viewers counted", path, n)
		}
	}
	if n := srv.HLS().Started(); n != 2 {
		t.Errorf("%d HLS muxers started for two streams, want 2 (one per stream, shared)", n)
	}
}

func countProto(rs []*hub.Reader, proto string) int {
	n := 0
	for _, r := range rs {
		if r.Who().Proto == proto {
			n++
		}
	}
	return n
}

// TestLLHLSBlockingReload: a client that asks for the next part with
// _HLS_msn/_HLS_part is answered when that part exists, and fetches it;
// the delay from a part's first frame reaching Berth to the client having
// the part is reported (docs/performance.md).
func TestLLHLSBlockingReload(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	push(t, srv, testmedia.H264AAC, "rtsp://"+srv.Addr("rtsp")+"/live/ll", "live/ll")
	u := "http://" + srv.Addr("http") + "/live/ll/hls.fmp4.m3u8"
	_, b := getBody(t, u)
	pl, err := playlist.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	mv, ok := pl.(*playlist.Multivariant)
	if !ok {
		t.Fatalf("not a multivariant playlist:\n%s", b)
	}
	media := resolve(u, mv.Variants[0].URI)
	m := mediaPlaylist(t, media)
	var delays, blocked []time.Duration
	for i := 0; i < 12; i++ {
		msn := m.MediaSequence + len(m.Segments)
		part := len(m.Parts)
		asked := time.Now()
		m = mediaPlaylist(t, fmt.Sprintf("%s&_HLS_msn=%d&_HLS_part=%d", media, msn, part))
		got := time.Now()
		blocked = append(blocked, got.Sub(asked))
		if m.MediaSequence+len(m.Segments) <= msn && len(m.Parts) <= part {
			t.Fatalf("asked for part %d of segment %d, the playlist has %d segments from %d and %d parts", part, msn, len(m.Segments), m.MediaSequence, len(m.Parts))
		}
		// The newest part and where its first frame sits in wall time.
		last := m.Segments[len(m.Segments)-1]
		if last.DateTime == nil {
			t.Fatal("segments carry no EXT-X-PROGRAM-DATE-TIME")
		}
		newest, startAt := (*playlist.MediaPart)(nil), time.Time{}
		if len(m.Parts) > 0 {
			startAt = last.DateTime.Add(last.Duration)
			for _, p := range m.Parts[:len(m.Parts)-1] {
				startAt = startAt.Add(p.Duration)
			}
			newest = m.Parts[len(m.Parts)-1]
		} else if len(last.Parts) > 0 {
			startAt = *last.DateTime
			for _, p := range last.Parts[:len(last.Parts)-1] {
				startAt = startAt.Add(p.Duration)
			}
			newest = last.Parts[len(last.Parts)-1]
		}
		if newest == nil {
			continue
		}
		res, body := getBody(t, resolve(media, newest.URI))
		if res.StatusCode != 200 || len(body) < 8 || string(body[4:8]) != "moof" {
			t.Fatalf("part %s: %s, %d bytes", newest.URI, res.Status, len(body))
		}
		delays = append(delays, time.Since(startAt))
	}
	slices.Sort(delays)
	slices.Sort(blocked)
	if len(delays) > 0 {
		t.Logf("LL-HLS: a part is in the client's hands %v (median; max %v) after its first frame reached Berth; parts of %v; blocking reloads waited median %v",
			delays[len(delays)/2].Round(time.Millisecond), delays[len(delays)-1].Round(time.Millisecond),
			m.PartInf.PartTarget, blocked[len(blocked)/2].Round(time.Millisecond))
	}
	// A delta update answers too.
	if res, b := getBody(t, media+"&_HLS_skip=YES"); res.StatusCode != 200 {
		t.Errorf("delta update: %s %s", res.Status, b)
	}
	// A part too far ahead is refused at once.
	if res, _ := getBody(t, fmt.Sprintf("%s&_HLS_msn=%d&_HLS_part=0", media, m.MediaSequence+len(m.Segments)+5)); res.StatusCode != http.StatusBadRequest {
		t.Errorf("a part 5 segments ahead: %s, want 400", res.Status)
	}
}

// TestGohlslibClientPlaysLLHLS: gohlslib's own client reads hls.fmp4.m3u8
// and gets H.264 and AAC frames.
func TestGohlslibClientPlaysLLHLS(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	push(t, srv, testmedia.H264AAC, "rtmp://"+srv.Addr("rtmp")+"/live/g", "live/g")
	var video, audio atomic.Int64
	var c *gohlslib.Client
	c = &gohlslib.Client{
		URI: "http://" + srv.Addr("http") + "/live/g/hls.fmp4.m3u8",
		OnTracks: func(tracks []*gohlslib.Track) error {
			for _, tr := range tracks {
				switch tr.Codec.(type) {
				case *codecs.H264:
					c.OnDataH26x(tr, func(int64, int64, [][]byte) { video.Add(1) })
				case *codecs.MPEG4Audio:
					c.OnDataMPEG4Audio(tr, func(_ int64, aus [][]byte) { audio.Add(int64(len(aus))) })
				}
			}
			return nil
		},
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && (video.Load() < 50 || audio.Load() < 50) {
		select {
		case err := <-c.Wait():
			t.Fatalf("the client stopped: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if video.Load() < 50 || audio.Load() < 50 {
		t.Errorf("gohlslib's client got %d video and %d audio frames in 15 s, want 50 of each", video.Load(), audio.Load())
	}
}

// TestHLSFMP4H265: an H.265 push plays as hls.fmp4.m3u8 (hvc1, its hvcC
// mended) and as hls.m3u8.
func TestHLSFMP4H265(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	push(t, srv, testmedia.H265AAC, "rtsp://"+srv.Addr("rtsp")+"/live/h5", "live/h5")
	base := "http://" + srv.Addr("http") + "/live/h5/"
	for _, entry := range []string{"hls.fmp4.m3u8", "hls.m3u8"} {
		p := ffprobe(t, base+entry)
		var names []string
		for _, s := range p.Streams {
			names = append(names, s.CodecName)
		}
		if slices.Sort(names); !slices.Equal(names, []string{"aac", "hevc"}) {
			t.Errorf("%s: ffprobe %+v, want hevc and aac", entry, p.Streams)
		}
	}
	res, b := getBody(t, base+"hls.fmp4.m3u8")
	pl, err := playlist.Unmarshal(b)
	mv, ok := pl.(*playlist.Multivariant)
	if err != nil || !ok || res.StatusCode != 200 {
		t.Fatalf("hls.fmp4.m3u8: %s %v\n%s", res.Status, err, b)
	}
	if c := mv.Variants[0].Codecs; len(c) == 0 || !strings.HasPrefix(c[0], "hvc1.") {
		t.Errorf("CODECS %v, want hvc1 first", c)
	}
	media := resolve(base+"hls.fmp4.m3u8", mv.Variants[0].URI)
	m := mediaPlaylist(t, media)
	if m.Map == nil {
		t.Fatalf("%s has no EXT-X-MAP", media)
	}
	_, init := getBody(t, resolve(media, m.Map.URI))
	checkHvcC(t, media, init)
}

// TestHLSTSPlaysFromRTSPAndRTMP: the same two pushes read as hls.m3u8
// (MPEG-TS segments cut from the shared TS muxer): ffprobe and ffmpeg
// play them, segments last segDur, playlists are no-cache and segments
// cacheable video/mp2t, and the viewer counts as an hls reader.
func TestHLSTSPlaysFromRTSPAndRTMP(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	push(t, srv, testmedia.H264AAC, "rtsp://"+srv.Addr("rtsp")+"/live/r", "live/r")
	push(t, srv, testmedia.H264AAC, "rtmp://"+srv.Addr("rtmp")+"/live/m", "live/m")
	for _, path := range []string{"live/r", "live/m"} {
		u := "http://" + srv.Addr("http") + "/" + path + "/hls.m3u8"
		checkPlays(t, u)
		res, b := getBody(t, u)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/vnd.apple.mpegurl" ||
			res.Header.Get("Cache-Control") != "no-cache" || res.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("%s: %s %v\n%s", u, res.Status, res.Header, b)
		}
		m := mediaPlaylist(t, u)
		checkSegmentDurations(t, u, m.Segments, 2*time.Second)
		seg := resolve(u, m.Segments[len(m.Segments)-1].URI)
		res, b = getBody(t, seg)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "video/mp2t" || !strings.HasPrefix(res.Header.Get("Cache-Control"), "public") ||
			len(b) < 188 || len(b)%188 != 0 || b[0] != 0x47 {
			t.Errorf("%s: %s %v, %d bytes", seg, res.Status, res.Header, len(b))
		}
		if n := countProto(srv.Hub.Get(path).ReaderList(), "hls"); n < 1 {
			t.Errorf("%s: %d hls readers, want the viewers counted", path, n)
		}
	}
}

// TestHLSTSContinuesAcrossARepublish: a publisher that leaves and comes
// back continues the same playlist (the media sequence goes on) after an
// EXT-X-DISCONTINUITY, so a player carries on.
func TestHLSTSContinuesAcrossARepublish(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	rtsp := "rtsp://" + srv.Addr("rtsp") + "/live/again"
	pub := startPush(t, testmedia.H264AAC, rtsp)
	waitPublished(t, srv, "live/again")
	u := "http://" + srv.Addr("http") + "/live/again/hls.m3u8?berth_session=republish"
	before := mediaPlaylist(t, u)
	pub.Process.Kill()
	pub.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for srv.Hub.Get("live/again") != nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	startPush(t, testmedia.H264AAC, rtsp)
	waitPublished(t, srv, "live/again")
	var after *playlist.Media
	for time.Now().Before(deadline.Add(10 * time.Second)) {
		after = mediaPlaylist(t, u)
		if slices.ContainsFunc(after.Segments, func(s *playlist.MediaSegment) bool { return s.Discontinuity }) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !slices.ContainsFunc(after.Segments, func(s *playlist.MediaSegment) bool { return s.Discontinuity }) {
		t.Fatalf("no EXT-X-DISCONTINUITY after the publisher came back: %+v", after.Segments)
	}
	if after.MediaSequence < before.MediaSequence {
		t.Errorf("the media sequence went back from %d to %d", before.MediaSequence, after.MediaSequence)
	}
}

// startPush starts ffmpeg pushing k to an RTSP url in a loop; the test
// kills it at the end.
func startPush(t *testing.T, k testmedia.Kind, url string) *exec.Cmd {
	t.Helper()
	pub := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-re", "-stream_loop", "-1", "-i", testmedia.File(t, k), "-c", "copy",
		"-f", "rtsp", "-rtsp_transport", "tcp", url)
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Process.Kill(); pub.Wait() })
	return pub
}

func waitPublished(t *testing.T, srv *server.Server, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if st := srv.Hub.Get(path); st != nil && st.FramesIn.Load() > 50 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s was not published in 10 s", path)
}

// TestHLSDemandOffMakesHLSFromThePublish: with [protocol] hls_demand=0
// (ZLMediaKit's default) both HLS muxers start at the publish, before any
// viewer, so the first viewer's playlist already lists segNum segments;
// they stop with the stream. The muxers are not readers.
func TestHLSDemandOffMakesHLSFromThePublish(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv := startWith(t, func(c *config.Config) { c.HLS.Demand = false; c.HLS.SegDur = 1 })
	pub := startPush(t, testmedia.H264AAC, "rtsp://"+srv.Addr("rtsp")+"/live/always")
	waitPublished(t, srv, "live/always")
	testutil.WaitFor(t, 5*time.Second, "both HLS muxers to start with no viewer", func() bool { return srv.HLS().Started() == 2 })
	if n := srv.Hub.Get("live/always").Readers(); n != 0 {
		t.Errorf("%d readers with no viewer, want 0 (muxers are not readers)", n)
	}
	st := srv.Hub.Get("live/always")
	from := st.FramesIn.Load()
	// Three 1 s segments of media (25 video and ~47 audio frames a second), which nobody asks for.
	testutil.WaitFor(t, 10*time.Second, "3.5 s more of media", func() bool { return st.FramesIn.Load() > from+250 })
	m := mediaPlaylist(t, "http://"+srv.Addr("http")+"/live/always/hls.m3u8")
	if len(m.Segments) < 3 {
		t.Errorf("the first viewer's playlist lists %d segments, want 3 made before it came", len(m.Segments))
	}
	pub.Process.Kill()
	pub.Wait()
	testutil.WaitFor(t, 10*time.Second, "the TS muxer to stop with the stream", func() bool { return srv.TSMuxers().Running() == 0 })
}

// TestHLSCarriesOpusAndLeavesG711Out: Opus plays in both HLS forms; G.711,
// which no HLS player takes, is left out with one log line per form and
// stream while the video plays on.
func TestHLSCarriesOpusAndLeavesG711Out(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, logs := start(t)
	push(t, srv, testmedia.H264Opus, "rtsp://"+srv.Addr("rtsp")+"/live/opus", "live/opus")
	push(t, srv, testmedia.H264PCMA, "rtsp://"+srv.Addr("rtsp")+"/live/pcma", "live/pcma")
	for _, c := range []struct{ path, want string }{{"live/opus", "h264,opus"}, {"live/pcma", "h264"}} {
		for _, entry := range []string{"hls.m3u8", "hls.fmp4.m3u8"} {
			url := "http://" + srv.Addr("http") + "/" + c.path + "/" + entry
			var names []string
			for _, s := range ffprobe(t, url).Streams {
				names = append(names, s.CodecName)
			}
			if slices.Sort(names); strings.Join(names, ",") != c.want {
				t.Errorf("%s: ffprobe finds %v, want %s", url, names, c.want)
			}
		}
	}
	all := logs.String()
	for _, line := range []string{"hls.fmp4: tracks left out", "mpegts: tracks left out"} {
		if n := strings.Count(all, line); n != 1 {
			t.Errorf("%d %q lines, want 1 (about G.711)", n, line)
		}
	}
}

// TestHLSPlaysAnRTPIngest: a stream that comes in as MPEG-TS over RTP (the
// RTP proxy) plays in both HLS forms and over HTTP-TS and HTTP-fMP4, as
// pushes over RTSP and RTMP do.
func TestHLSPlaysAnRTPIngest(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	pub := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-re", "-stream_loop", "-1", "-i", testmedia.File(t, testmedia.H264AAC),
		"-c", "copy", "-f", "rtp_mpegts", "-rtp_muxer_options", "ssrc=305419896", "rtp://"+srv.UDPAddr("rtp_proxy"))
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Process.Kill(); pub.Wait() })
	waitPublished(t, srv, "rtp/12345678")
	base := "http://" + srv.Addr("http") + "/rtp/12345678"
	for _, url := range []string{base + "/hls.m3u8", base + "/hls.fmp4.m3u8", base + ".live.ts", base + ".live.mp4"} {
		var names []string
		for _, s := range ffprobe(t, url).Streams {
			names = append(names, s.CodecName)
		}
		if slices.Sort(names); strings.Join(names, ",") != "aac,h264" {
			t.Errorf("%s: ffprobe finds %v, want h264 and aac", url, names)
		}
	}
}
