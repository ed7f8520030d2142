package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/fmp4"
	"github.com/berthmedia/berth/internal/server"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// push starts ffmpeg pushing file to url in a loop at real-time speed and
// waits until the stream at path has frames.
func push(t *testing.T, srv *server.Server, k testmedia.Kind, url, path string) {
	t.Helper()
	pushVia(t, exec.Command, srv, k, url, path)
}

// pushVia is push with ffmpeg's command made by command (netfault's
// NS.Command runs it inside a network namespace); it returns the command.
func pushVia(t *testing.T, command func(name string, args ...string) *exec.Cmd, srv *server.Server, k testmedia.Kind, url, path string) *exec.Cmd {
	t.Helper()
	args := []string{"-hide_banner", "-v", "error", "-re", "-stream_loop", "-1", "-i", testmedia.File(t, k), "-c", "copy"}
	if strings.HasPrefix(url, "rtsp:") {
		args = append(args, "-f", "rtsp", "-rtsp_transport", "tcp", url)
	} else {
		args = append(args, "-f", "flv", url)
	}
	pub := command("ffmpeg", args...)
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Process.Kill(); pub.Wait() })
	testutil.WaitFor(t, 10*time.Second, "the stream to be published", func() bool {
		st := srv.Hub.Get(path)
		return st != nil && st.FramesIn.Load() > 50
	})
	return pub
}

type probed struct {
	Streams []struct {
		CodecName string `json:"codec_name"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
	} `json:"streams"`
}

func ffprobe(t *testing.T, url string) probed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "json", url).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("ffprobe %s: %v\n%s", url, err, ee.Stderr)
		}
		t.Fatalf("ffprobe %s: %v", url, err)
	}
	var p probed
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	return p
}

// decode3s has ffmpeg decode 3 s of url; any message at -v error fails.
func decode3s(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-v", "error", "-i", url, "-t", "3", "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("ffmpeg decoding 3 s of %s: %v\n%s", url, err, out)
	}
}

// TestHTTPFMP4PlaysFromRTMPAndRTSP: an ffmpeg push over RTMP (access units)
// and over RTSP (RTP, converted) are each read as .live.mp4: ffprobe sees
// H.264 320x240 and AAC, ffmpeg decodes 3 s without an error, and the
// response is a chunked video/mp4 with CORS, no-cache and the codecs.
func TestHTTPFMP4PlaysFromRTMPAndRTSP(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	push(t, srv, testmedia.H264AAC, "rtmp://"+srv.Addr("rtmp")+"/live/m", "live/m")
	push(t, srv, testmedia.H264AAC, "rtsp://"+srv.Addr("rtsp")+"/live/r", "live/r")
	for _, path := range []string{"live/m", "live/r"} {
		url := "http://" + srv.Addr("http") + "/" + path + ".live.mp4"
		p := ffprobe(t, url)
		if len(p.Streams) != 2 || p.Streams[0].CodecName != "h264" || p.Streams[0].Width != 320 || p.Streams[0].Height != 240 ||
			p.Streams[1].CodecName != "aac" {
			t.Errorf("%s: ffprobe %+v, want h264 320x240 and aac", url, p.Streams)
		}
		decode3s(t, url)

		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		h := res.Header
		if res.StatusCode != 200 || h.Get("Content-Type") != "video/mp4" || h.Get("Access-Control-Allow-Origin") != "*" ||
			h.Get("Cache-Control") != "no-cache" || len(res.TransferEncoding) == 0 || res.TransferEncoding[0] != "chunked" {
			t.Errorf("%s: %s %v", url, res.Status, h)
		}
		if c := h.Get("X-Codecs"); !regexp.MustCompile(`^avc1\.[0-9a-f]{6},mp4a\.40\.2$`).MatchString(c) {
			t.Errorf("%s: X-Codecs %q, want avc1.PPCCLL,mp4a.40.2", url, c)
		}
		res.Body.Close()
	}
}

// box reads one top-level MP4 box.
func box(r io.Reader) (typ string, b []byte, err error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return "", nil, err
	}
	size := binary.BigEndian.Uint32(hdr[:4])
	if size < 8 || size > 64<<20 {
		return "", nil, fmt.Errorf("box %q of size %d", hdr[4:], size)
	}
	b = make([]byte, size)
	copy(b, hdr[:])
	_, err = io.ReadFull(r, b[8:])
	return string(hdr[4:]), b, err
}

// fragments reads an HTTP-fMP4 response: ftyp, moov, then n moof+mdat
// pairs, keyed by the moof's mfhd sequence number.
func fragments(t *testing.T, body io.Reader, n int) map[uint32][]byte {
	t.Helper()
	for _, want := range []string{"ftyp", "moov"} {
		if typ, _, err := box(body); err != nil || typ != want {
			t.Fatalf("got box %q (%v), want %s", typ, err, want)
		}
	}
	out := map[uint32][]byte{}
	for len(out) < n {
		typ, moof, err := box(body)
		if err != nil || typ != "moof" {
			t.Fatalf("got box %q (%v), want moof", typ, err)
		}
		typ, mdat, err := box(body)
		if err != nil || typ != "mdat" {
			t.Fatalf("got box %q (%v), want mdat", typ, err)
		}
		// moof: header 8, then mfhd: header 8, version/flags 4, sequence 4.
		out[binary.BigEndian.Uint32(moof[20:24])] = append(moof, mdat...)
	}
	return out
}

// TestHTTPFMP4ReadersShareOneMuxer: two players at once get the same
// fragment bytes from one muxer; getMediaList counts each player once (the
// muxer's own hub reader is not a player); the muxer stops after the last
// player leaves.
func TestHTTPFMP4ReadersShareOneMuxer(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	push(t, srv, testmedia.H264AAC, "rtmp://"+srv.Addr("rtmp")+"/live/two", "live/two")
	url := "http://" + srv.Addr("http") + "/live/two.live.mp4"
	a, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Body.Close()
	b, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Body.Close()
	fa := fragments(t, a.Body, 40)
	fb := fragments(t, b.Body, 40)
	same := 0
	for seq, data := range fa {
		if other, ok := fb[seq]; ok {
			if !bytes.Equal(data, other) {
				t.Errorf("fragment %d differs between the two players", seq)
			}
			same++
		}
	}
	if same == 0 {
		t.Errorf("the two players got no fragment in common")
	}
	ms := srv.FMP4Muxers()
	if ms.Started() != 1 || ms.Running() != 1 {
		t.Errorf("muxers started %d, running %d; want 1 and 1", ms.Started(), ms.Running())
	}
	res, err := http.Get("http://" + srv.Addr("http") + "/index/api/getMediaList?secret=s3cret&stream=two")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), `"readerCount":2`) {
		t.Errorf("getMediaList with two fMP4 players: %s", body)
	}
	for _, r := range srv.Hub.Get("live/two").ReaderList() {
		if r.Who().Proto != "http-fmp4" || r.Bytes() == 0 {
			t.Errorf("player %s has %d bytes out, want http-fmp4 with the bytes it was sent", r.Who(), r.Bytes())
		}
	}
	if n := srv.Hub.Stats().BytesOut["http-fmp4"]; n == 0 {
		t.Errorf("hub stats: no http-fmp4 bytes out")
	}
	a.Body.Close()
	b.Body.Close()
	// The muxer lingers StopDelay (min(streamNoneReaderDelayMS, 5 s)) for a player that comes back.
	testutil.WaitFor(t, ms.StopDelay+5*time.Second, "the muxer to stop after its last player", func() bool { return ms.Running() == 0 })
	testutil.WaitFor(t, 5*time.Second, "the players to leave the hub", func() bool { return srv.Hub.Get("live/two").Readers() == 0 })
}

// TestHTTPFMP4H265: an H.265 RTSP push is read as hvc1 over .live.mp4 and
// decodes without errors.
func TestHTTPFMP4H265(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	push(t, srv, testmedia.H265AAC, "rtsp://"+srv.Addr("rtsp")+"/live/h5", "live/h5")
	url := "http://" + srv.Addr("http") + "/live/h5.live.mp4"
	p := ffprobe(t, url)
	if len(p.Streams) != 2 || p.Streams[0].CodecName != "hevc" || p.Streams[0].Width != 320 || p.Streams[1].CodecName != "aac" {
		t.Errorf("ffprobe %+v, want hevc 320x240 and aac", p.Streams)
	}
	decode3s(t, url)
	res, err := http.Head(url)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if c := res.Header.Get("X-Codecs"); !strings.HasPrefix(c, "hvc1.1.") || !strings.HasSuffix(c, ",mp4a.40.2") {
		t.Errorf("HEAD X-Codecs %q, want hvc1.1.*,mp4a.40.2", c)
	}

	// The init segment's hvcC says what the SPS says (mediacommon's does not).
	get, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer get.Body.Close()
	var init []byte
	for _, want := range []string{"ftyp", "moov"} {
		typ, b, err := box(get.Body)
		if err != nil || typ != want {
			t.Fatalf("box %q (%v), want %s", typ, err, want)
		}
		init = append(init, b...)
	}
	checkHvcC(t, url, init)
}

// checkHvcC: an H.265 init segment has an hvcC whose constraint flags are
// the SPS's own (codec.FixHvcC finds nothing to mend).
func checkHvcC(t *testing.T, url string, init []byte) {
	t.Helper()
	if !bytes.Contains(init, []byte("hvcC")) {
		t.Errorf("%s: init segment without hvcC", url)
	}
	if n := codec.FixHvcC(slices.Clone(init)); n != 0 {
		t.Errorf("%s: the hvcC's general_constraint_indicator_flags differ from its SPS's", url)
	}
}

// TestWSFMP4SendsInitThenFragments: over WebSocket the first binary message
// is the init segment (ftyp+moov), every later one a moof+mdat fragment,
// (one segment per message, for SourceBuffer.appendBuffer).
func TestWSFMP4SendsInitThenFragments(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	push(t, srv, testmedia.H264AAC, "rtmp://"+srv.Addr("rtmp")+"/live/ws", "live/ws")
	conn, res, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr("http")+"/live/ws.live.mp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if c := res.Header.Get("X-Codecs"); !strings.HasPrefix(c, "avc1.") {
		t.Errorf("upgrade response X-Codecs %q", c)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := 0; i < 30; i++ {
		typ, msg, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if typ != websocket.BinaryMessage || len(msg) < 8 {
			t.Fatalf("message %d: type %d, %d bytes", i, typ, len(msg))
		}
		r := bytes.NewReader(msg)
		want := []string{"moof", "mdat"}
		if i == 0 {
			want = []string{"ftyp", "moov"}
		}
		for _, w := range want {
			if got, _, err := box(r); err != nil || got != w {
				t.Fatalf("message %d: box %q (%v), want %s", i, got, err, w)
			}
		}
		if r.Len() != 0 {
			t.Errorf("message %d: %d bytes after its boxes", i, r.Len())
		}
	}
}

// TestFMP4FragmentDelay reports (does not assert: timings vary with the
// machine) how long a frame waits in the muxer, from reaching the server to
// its fragment being made, and the fragments' size, for docs/muxers.md.
func TestFMP4FragmentDelay(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	push(t, srv, testmedia.H264AAC, "rtmp://"+srv.Addr("rtmp")+"/live/d", "live/d")
	c, err := srv.FMP4Muxers().Open(srv.Hub.Get("live/d"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var delays []time.Duration
	var bytes, key int
	for len(delays) < 100 {
		got, err := c.Next(ctx, make([]*fmp4.Fragment, 0, 64))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range got {
			if len(delays) == 0 && !f.Key {
				t.Fatalf("first fragment is not a keyframe's")
			}
			if f.Key {
				key++
			}
			delays = append(delays, f.Made.Sub(f.Recv))
			bytes += len(f.Data)
		}
	}
	delays = delays[25:] // the GOP a new reader starts with was made before it came
	slices.Sort(delays)
	t.Logf("muxer delay over %d fragments: median %v, p90 %v, max %v; %d keyframe fragments; %d bytes per fragment",
		len(delays), delays[len(delays)/2], delays[len(delays)*9/10], delays[len(delays)-1], key, bytes/100)
}

// TestHTTPFMP4OpusAndG711: Opus is carried and decodes; a G.711 track is
// left out with one log line per stream and the video plays alone.
func TestHTTPFMP4OpusAndG711(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, logs := start(t)
	push(t, srv, testmedia.H264Opus, "rtsp://"+srv.Addr("rtsp")+"/live/opus", "live/opus")
	push(t, srv, testmedia.H264PCMA, "rtsp://"+srv.Addr("rtsp")+"/live/pcma", "live/pcma")
	url := "http://" + srv.Addr("http") + "/live/opus.live.mp4"
	if p := ffprobe(t, url); len(p.Streams) != 2 || p.Streams[0].CodecName != "h264" || p.Streams[1].CodecName != "opus" {
		t.Errorf("%s: ffprobe %+v, want h264 and opus", url, p.Streams)
	}
	decode3s(t, url)
	url = "http://" + srv.Addr("http") + "/live/pcma.live.mp4"
	if p := ffprobe(t, url); len(p.Streams) != 1 || p.Streams[0].CodecName != "h264" {
		t.Errorf("%s: ffprobe %+v, want h264 alone", url, p.Streams)
	}
	logs.WaitLine(t, "fmp4: tracks left out", "path=live/pcma", "G711")
	ffprobe(t, url) // a second muxer of the same stream says nothing more
	if n := strings.Count(logs.String(), "fmp4: tracks left out"); n != 1 {
		t.Errorf("%d lines about the left-out track, want 1 per stream", n)
	}
}
