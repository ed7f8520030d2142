package rtpproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/flv"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// This file closes gaps an audit found: a PS that ffmpeg muxed itself read
// back over every protocol, and reordering and loss over TCP.

// videoTime is the time the encoder gave one video frame, in decoding order.
type videoTime struct {
	pts, dts time.Duration
	key      bool
}

// ffmpegPS makes a program stream with ffmpeg's own muxer (muxer "vob":
// MPEG-2 PS; "mpeg": an MPEG-1 system stream) of the given seconds of
// H.264 at 352x288 with bframes B-frames, and cuts it into its packs, each
// timed by its SCR. It returns the times the encoder gave the video frames,
// read from the MP4 the PS is remuxed from: the PS itself has no PTS for
// most frames, as ffmpeg's muxer packs several in one PES.
//
// ffmpeg's PS muxer takes no AAC and no G.711 ("Unsupported audio codec.
// Must be one of mp1, mp2, mp3, 16-bit pcm_dvd, pcm_s16be, ac3 or dts"), so
// the audio is its default, MP2, which Berth does not take.
func ffmpegPS(t *testing.T, muxer string, seconds, bframes int) ([]psUnit, []videoTime) {
	t.Helper()
	testmedia.RequireFFmpeg(t)
	dir := t.TempDir()
	mp4, ps := filepath.Join(dir, "src.mp4"), filepath.Join(dir, "ps."+muxer)
	d := strconv.Itoa(seconds)
	for _, args := range [][]string{
		{"-f", "lavfi", "-i", "testsrc=size=352x288:rate=25:duration=" + d,
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=" + d,
			"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25", "-bf", strconv.Itoa(bframes),
			"-c:a", "mp2", "-shortest", mp4},
		{"-i", mp4, "-c", "copy", "-bsf:v", "h264_mp4toannexb", "-f", muxer, ps},
	} {
		if b, err := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %v: %v\n%s", args, err, b)
		}
	}

	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",
		"stream=time_base:packet=pts,dts,flags", "-of", "json", mp4).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", mp4, err)
	}
	var probe struct {
		Streams []struct {
			TimeBase string `json:"time_base"`
		}
		Packets []struct {
			PTS, DTS int64
			Flags    string
		}
	}
	if err := json.Unmarshal(out, &probe); err != nil || len(probe.Streams) != 1 {
		t.Fatalf("ffprobe %s: %v: %s", mp4, err, out)
	}
	var num, den int64
	if _, err := fmt.Sscanf(probe.Streams[0].TimeBase, "%d/%d", &num, &den); err != nil {
		t.Fatalf("time base %q: %v", probe.Streams[0].TimeBase, err)
	}
	var times []videoTime
	for _, p := range probe.Packets {
		times = append(times, videoTime{pts: time.Duration(p.PTS * num * 1e9 / den), dts: time.Duration(p.DTS * num * 1e9 / den),
			key: strings.HasPrefix(p.Flags, "K")})
	}

	data, err := os.ReadFile(ps)
	if err != nil {
		t.Fatal(err)
	}
	var units []psUnit
	for i := 0; i < len(data); {
		if i+6 > len(data) || data[i] != 0 || data[i+1] != 0 || data[i+2] != 1 {
			t.Fatalf("ffmpeg's PS: no start code at %d", i)
		}
		var n int
		switch id := data[i+3]; {
		case id == psPack && data[i+4]&0xC0 == 0x40: // MPEG-2 (ISO/IEC 13818-1 2.5.3.3)
			b := data[i+4:]
			scr := int64(b[0]>>3&7)<<30 | int64(b[0]&3)<<28 | int64(b[1])<<20 | int64(b[2]>>3)<<15 |
				int64(b[2]&3)<<13 | int64(b[3])<<5 | int64(b[4]>>3)
			units = append(units, psUnit{pts: scr})
			n = 14 + int(data[i+13]&7)
		case id == psPack: // MPEG-1 (ISO/IEC 11172-1 2.4.3.2): the SCR is laid out as a PTS
			units = append(units, psUnit{pts: readClock(data[i+4:])})
			n = 12
		case id == psEnd:
			n = 4
		default:
			n = 6 + (int(data[i+4])<<8 | int(data[i+5]))
		}
		if len(units) == 0 || i+n > len(data) {
			t.Fatalf("ffmpeg's PS: unit at %d (id 0x%x, %d bytes) before a pack or past the end", i, data[i+3], n)
		}
		u := &units[len(units)-1]
		u.data = append(u.data, data[i:i+n]...)
		i += n
	}
	return units, times
}

// pushLive sends units as RTP (payload type 96) in real time, each unit at
// its time after the first, as a camera does, until ctx is done or the
// units run out. send gets the packets of one unit.
func pushLive(ctx context.Context, units []psUnit, ssrc uint32, send func(pkts [][]byte) error) {
	start := time.Now()
	seq := uint16(0)
	for i, u := range units {
		if d := ticksToDuration(u.pts-units[0].pts) - time.Since(start); d > 0 {
			select { // pacing a sender, not waiting for a condition
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		if ctx.Err() != nil {
			return
		}
		pkts := rtpPacketsFrom(units[i:i+1], ssrc, 96, 1400, seq)
		seq += uint16(len(pkts))
		if send(pkts) != nil {
			return
		}
	}
}

// serveHTTPFLV puts the HTTP-FLV handler on the test hub and returns its address.
func (e *testEnv) serveHTTPFLV(t *testing.T) string {
	t.Helper()
	h := &flv.Handler{Hub: e.hub, Log: e.srv.Log}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(h.Close) // runs first: a live FLV response never ends on its own
	return srv.Listener.Addr().String()
}

type probedStream struct {
	Codec  string `json:"codec_name"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

// probeStreams is what ffprobe finds at url, with the picture size
// (ffprobeCodecs checks the width of 320x240 files only).
func probeStreams(t *testing.T, url string) []probedStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := []string{"-hide_banner", "-loglevel", "error"}
	if strings.HasPrefix(url, "rtsp:") {
		args = append(args, "-rtsp_transport", "tcp")
	}
	args = append(args, "-show_entries", "stream=codec_name,width,height", "-of", "json", url)
	out, err := exec.CommandContext(ctx, "ffprobe", args...).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", url, err, out)
	}
	var r struct{ Streams []probedStream }
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("ffprobe output: %v: %s", err, out)
	}
	return r.Streams
}

// decodeTwoSeconds runs `ffmpeg -i url -t 2 -f null -` and fails on any
// error ffmpeg prints or on fewer frames than 2 s hold.
func decodeTwoSeconds(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error"}
	if strings.HasPrefix(url, "rtsp:") {
		args = append(args, "-rtsp_transport", "tcp")
	}
	args = append(args, "-i", url, "-t", "2", "-progress", "pipe:1", "-f", "null", "-")
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("ffmpeg -i %s -t 2 -f null -: %v\n%s", url, err, stderr.String())
	}
	m := regexp.MustCompile(`(?m)^frame=(\d+)$`).FindAllStringSubmatch(stdout.String(), -1)
	if len(m) == 0 {
		t.Fatalf("ffmpeg decoding %s reported no progress:\n%s", url, stdout.String())
	}
	if n, _ := strconv.Atoi(m[len(m)-1][1]); n < 45 { // 2 s at 25 fps, a frame or two short at the edges
		t.Fatalf("ffmpeg decoded %d frames of %s in 2 s, want about 50", n, url)
	}
}

func TestPSMuxedByFFmpegIsReadableOverRTSPRTMPAndHTTPFLV(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		muxer     string
		bframes   int
		transport string
		ssrc      uint32
		path      string
	}{
		{"vob", 0, "udp", 0x3402000A, "rtp/3402000A"},
		{"vob", 3, "tcp", 0x0000BEEF, "rtp/0000BEEF"},
		{"mpeg", 3, "udp", 0xC0FFEE01, "rtp/C0FFEE01"},
		{"mpeg", 0, "tcp", 0x00000042, "rtp/00000042"},
	} {
		t.Run(fmt.Sprintf("%s with %d B-frames over %s", c.muxer, c.bframes, c.transport), func(t *testing.T) {
			t.Parallel()
			// 30 s: long enough for every reader below to start while the push is live.
			units, _ := ffmpegPS(t, c.muxer, 30, c.bframes)
			e := newEnv(t, 5)
			rtspAddr, rtmpAddr, httpAddr := e.serveRTSP(t), e.serveRTMP(t), e.serveHTTPFLV(t)
			conn, err := net.Dial(c.transport, map[string]string{"udp": e.udp, "tcp": e.tcp}[c.transport])
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			send := func(pkts [][]byte) error {
				if c.transport == "udp" {
					for _, p := range pkts {
						if _, err := conn.Write(p); err != nil {
							return err
						}
					}
					return nil
				}
				var buf []byte // RFC 4571: each packet after its 16-bit length
				for _, p := range pkts {
					buf = append(buf, byte(len(p)>>8), byte(len(p)))
					buf = append(buf, p...)
				}
				_, err := conn.Write(buf)
				return err
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); pushLive(ctx, units, c.ssrc, send) }()
			defer func() { cancel(); <-done }()

			s := e.waitStream(t, c.path)
			if got := codecNames(s); got != "H264" {
				t.Fatalf("tracks = %s, want H264 (MP2 audio is not taken)", got)
			}
			// The MP2 stream is named as left out, once.
			e.logs.WaitLine(t, "elementary stream Berth cannot use", "path="+c.path, "stream_id=0xc0")
			if n := strings.Count(e.logs.String(), "elementary stream Berth cannot use"); n != 1 {
				t.Fatalf("%d lines about the MP2 stream, want 1", n)
			}

			for _, url := range []string{
				"rtsp://" + rtspAddr + "/" + c.path,
				"rtmp://" + rtmpAddr + "/" + c.path,
				"http://" + httpAddr + "/" + c.path + ".live.flv",
			} {
				got := probeStreams(t, url)
				if len(got) != 1 || got[0].Codec != "h264" || got[0].Width != 352 || got[0].Height != 288 {
					t.Fatalf("ffprobe %s: %+v, want one h264 stream of 352x288", url, got)
				}
			}
			decodeTwoSeconds(t, "rtsp://"+rtspAddr+"/"+c.path)
			if c.transport == "tcp" {
				decodeTwoSeconds(t, "http://"+httpAddr+"/"+c.path+".live.flv")
			} else {
				decodeTwoSeconds(t, "rtmp://"+rtmpAddr+"/"+c.path)
			}
		})
	}
}

// ffmpeg's PS muxer packs several frames in one PES, and only the first has
// a PTS: with B-frames the others must be timed from their picture order
// count, or they are shown out of order (ffmpeg reading over RTSP then says
// "non monotonically increasing dts"). Every frame keeps the decoding and
// presentation times the encoder gave it.
func TestPSMuxedByFFmpegWithBFramesKeepsTheEncodersTimes(t *testing.T) {
	t.Parallel()
	for i, muxer := range []string{"vob", "mpeg"} {
		t.Run(muxer, func(t *testing.T) {
			units, want := ffmpegPS(t, muxer, 10, 3)
			e := newEnv(t, 30)
			ssrc := uint32(0x0B0F0000 + i)
			path := StreamPath(ssrc)
			conn := sendTCP(t, e.tcp, rtpPackets(units, ssrc, 96, 1400))
			defer conn.Close()
			e.waitStream(t, path)
			// A frame is cut as soon as the next one's first NAL unit starts: only
			// the last waits in the splitter, for an end that never comes.
			testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("%d frames", len(want)-1), func() bool {
				return len(e.frames.get(path)) >= len(want)-1
			})
			got := e.frames.get(path)
			if len(got) != len(want)-1 {
				t.Fatalf("%d frames published, want %d", len(got), len(want)-1)
			}
			reordered := 0
			for k, f := range got {
				w := want[k]
				if f.Key != w.key {
					t.Fatalf("frame %d: key %v, want %v", k, f.Key, w.key)
				}
				// The stream starts at its first DTS; the encoder's times are compared from there.
				if gotDTS, wantDTS := f.DTS-got[0].DTS, w.dts-want[0].dts; gotDTS != wantDTS {
					t.Fatalf("frame %d: DTS %v after the first, want %v", k, gotDTS, wantDTS)
				}
				if gotPTS, wantPTS := f.PTS-got[0].DTS, w.pts-want[0].dts; gotPTS != wantPTS {
					t.Fatalf("frame %d (key %v): PTS %v after the first DTS, want %v", k, f.Key, gotPTS, wantPTS)
				}
				if k > 0 && f.PTS < got[k-1].PTS {
					reordered++
				}
			}
			if reordered == 0 {
				t.Fatal("no frame is shown before the one decoded ahead of it: the source has no B-frames")
			}
		})
	}
}

// reorderNeighbours swaps neighbours and moves a packet back by 10 places
// every 13 packets, as TestPSOverRTPWithReorderedPacketsIsIdentical does
// over UDP. The first packet stays first: before it nothing tells a late
// packet from an early one.
func reorderNeighbours(pkts [][]byte) {
	for i := 13; i+12 < len(pkts); i += 13 {
		pkts[i], pkts[i+1] = pkts[i+1], pkts[i]
		p := pkts[i+2]
		copy(pkts[i+2:i+12], pkts[i+3:i+13])
		pkts[i+12] = p
	}
}

// endLineCount waits for the line that ends path's stream and returns the
// number it gives for key.
func endLineCount(t *testing.T, e *testEnv, path, key string) int {
	t.Helper()
	line := e.logs.WaitLine(t, "RTP stream ended", "path="+path)
	m := regexp.MustCompile(`\b` + key + `=(\d+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no %s= in the end line: %s", key, line)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TCP does not reorder, but what it carries may be out of sequence: a relay
// that forwards RTP it got over UDP without a jitter buffer. The same
// reordering window puts it back in order.
func TestPSOverTCPWithReorderedPacketsIsIdentical(t *testing.T) {
	t.Parallel()
	c := psCases[0]
	e := newEnv(t, 30, func(s *Server) { s.reorderDelay = 5 * time.Second })
	video, audio, units := c.build(t)
	pkts := rtpPackets(units, 0x11110011, 96, 1400)
	reorderNeighbours(pkts)
	conn := sendTCP(t, e.tcp, pkts)
	defer conn.Close()
	checkPublished(t, e, "rtp/11110011", c, video, audio)
	if st := e.srv.Stats(); len(st.Sessions) != 1 || st.Sessions[0].Lost != 0 || st.Sessions[0].Transport != "tcp" {
		t.Fatalf("stats %+v, want one TCP stream without loss", st)
	}
	conn.Close()
	if n := endLineCount(t, e, "rtp/11110011", "lost"); n != 0 {
		t.Fatalf("end line: lost=%d, want 0", n)
	}
	if n := endLineCount(t, e, "rtp/11110011", "reordered"); n == 0 {
		t.Fatal("end line: reordered=0, but packets came out of order")
	}
}

// A relay that lost packets upstream leaves gaps in the sequence over TCP:
// the loss is counted exactly (TCP itself loses nothing), and the frames a
// gap touched are dropped whole: every frame published is one the camera
// sent, byte for byte, at its time.
func TestPSOverTCPWithLossCountsItAndPublishesOnlyWholeFrames(t *testing.T) {
	t.Parallel()
	c := psCases[0]
	e := newEnv(t, 30)
	video, audio, units := c.build(t)
	pkts := rtpPackets(units, 0x22220022, 96, 1400)
	sent, dropped := dropSome(pkts)
	conn := sendTCP(t, e.tcp, sent)
	defer conn.Close()
	const path = "rtp/22220022"
	e.waitStream(t, path)
	countVideo := func() int {
		n := 0
		for _, f := range e.frames.get(path) {
			if f.Track == 0 {
				n++
			}
		}
		return n
	}
	testutil.WaitFor(t, 10*time.Second, "most video frames", func() bool { return countVideo() >= len(video)/2 })
	e.logs.WaitLine(t, "RTP packets lost", "path="+path)
	conn.Close() // the end line counts the gaps still waiting in the window too
	if n := endLineCount(t, e, path, "lost"); n != dropped {
		t.Fatalf("end line: lost=%d, want exactly the %d packets not sent", n, dropped)
	}

	// Every published frame is a source frame, in order, on one time base.
	var srcVideo [][][]byte
	for _, f := range video {
		var nalus [][]byte
		for _, n := range splitAnnexB(f.data) {
			if n[0]&0x1f != 9 { // the hub's access units have no delimiters
				nalus = append(nalus, n)
			}
		}
		srcVideo = append(srcVideo, nalus)
	}
	sameAU := func(a, b [][]byte) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if !bytes.Equal(a[i], b[i]) {
				return false
			}
		}
		return true
	}
	var offset time.Duration
	first := true
	jv, ja := 0, 0
	frames := e.frames.get(path)
	for i, f := range frames {
		var src esFrame
		if f.Track == 0 {
			for jv < len(video) && !sameAU(f.AU, srcVideo[jv]) {
				jv++
			}
			if jv == len(video) {
				t.Fatalf("published frame %d (video, PTS %v) is not one of the frames sent, in order: corrupted", i, f.PTS)
			}
			src = video[jv]
			if f.Key != src.key {
				t.Fatalf("published frame %d (video %d): key %v, want %v", i, jv, f.Key, src.key)
			}
			jv++
		} else {
			for ja < len(audio) && (len(f.AU) != 1 || !bytes.Equal(f.AU[0], audio[ja].data[7:])) {
				ja++
			}
			if ja == len(audio) {
				t.Fatalf("published frame %d (audio, PTS %v) is not one of the frames sent, in order: corrupted", i, f.PTS)
			}
			src = audio[ja]
			ja++
		}
		if first {
			offset, first = f.PTS-ticksToDuration(src.pts), false
		} else if got := f.PTS - offset; got != ticksToDuration(src.pts) {
			t.Fatalf("published frame %d: PTS %v, want %v on the time base of the first", i, got, ticksToDuration(src.pts))
		}
	}
	nv := countVideo()
	t.Logf("%d packets not sent: %d of %d video and %d of %d audio frames published", dropped, nv, len(video),
		len(frames)-nv, len(audio))
	if nv == len(video) {
		t.Fatalf("no video frame lost to %d missing packets", dropped)
	}
}

// The SPS, and the start of the IDR slice and of the first P slice, of
// libx264 (ultrafast, 3 B-frames, 352x288): POC type 0; the P slice is
// decoded second and shown fifth (POC 8).
var (
	bframesSPS = []byte{0x67, 0x4d, 0x40, 0x0d, 0xec, 0xa0, 0xb0, 0x4b, 0x60, 0x22, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00,
		0x00, 0x03, 0x00, 0x64, 0x1e, 0x28, 0x53, 0x2c}
	bframesIDR = []byte{0x65, 0x88, 0x84, 0x00, 0xe8, 0x98, 0xa0, 0x00, 0x24, 0x0b, 0x27, 0x19, 0x80, 0xe0, 0x00, 0x20}
	bframesP   = []byte{0x41, 0x9a, 0x24, 0x0a, 0x00, 0x8f, 0xc0, 0xa1, 0xf8, 0x28, 0x8a, 0x00, 0x04, 0x22, 0x80, 0x01}
)

func TestPOCClockTimesFramesWithoutAPTSByDisplayOrder(t *testing.T) {
	var p pocClock
	const frame = clockHz / 25
	idr := p.time([][]byte{bframesSPS, bframesIDR}, tsMark{pts: 2 * frame, dts: 0}, true, frame)
	if idr.pts != 2*frame || p.sps == nil || p.sps.PicOrderCntType != 0 {
		t.Fatalf("IDR with its own PTS: %+v, SPS %+v", idr, p.sps)
	}
	// The P frame came in the IDR's PES: frameTime guessed the previous frame plus one.
	got := p.time([][]byte{bframesP}, tsMark{pts: 3 * frame, dts: frame}, false, frame)
	if got.dts != frame || got.pts != 6*frame {
		t.Fatalf("P frame: %+v, want DTS %d and PTS %d (POC 8: 4 frames after the IDR)", got, frame, 6*frame)
	}
	// Cut short, the slice header says nothing: the guess stays.
	guess := tsMark{pts: 3 * frame, dts: frame}
	if got := p.time([][]byte{bframesP[:2]}, guess, false, frame); got != guess {
		t.Fatalf("cut slice: %+v, want the guess %+v", got, guess)
	}
}

func FuzzPOCClock(f *testing.F) {
	f.Add(bframesSPS, bframesIDR, bframesP, false)
	f.Add(bframesSPS, bframesP[:3], bframesIDR[:2], true)
	f.Fuzz(func(t *testing.T, sps, a, b []byte, own bool) {
		var p pocClock
		for _, au := range [][][]byte{{sps, a}, {b}, {a}} {
			var nalus [][]byte
			for _, n := range au {
				if len(n) > 0 { // the splitter never makes an empty NAL unit
					nalus = append(nalus, n)
				}
			}
			p.time(nalus, tsMark{pts: 7200, dts: 3600}, own, 3600)
			own = !own
		}
	})
}
