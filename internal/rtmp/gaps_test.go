package rtmp

// Tests that close the gaps an audit found in the RTMP, HTTP-FLV and WS-FLV
// coverage: RTMP pushes decoded over RTSP, a publisher's abrupt disconnect,
// the slow-reader policy of RTMP and HTTP-FLV readers, play auth of FLV
// readers, and enhanced-RTMP H.265 ingest.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/flv"
	"github.com/berthmedia/berth/internal/flv/amf0"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/ports"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// ffmpegDecodeWith reads url for 3 s with the input options opts (before
// -i) and fails on any error ffmpeg prints.
func ffmpegDecodeWith(t testing.TB, opts []string, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"-hide_banner", "-v", "error"}, opts...)
	args = append(args, "-i", url, "-t", "3", "-f", "null", "-")
	out, err := exec.CommandContext(ctx, "ffmpeg", args...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("ffmpeg %s: err=%v output:\n%s", strings.Join(args, " "), err, out)
	}
}

// TestRTMPPushDecodesOverRTSP: an ffmpeg RTMP push is decoded by ffmpeg over
// RTSP with TCP interleaving and with UDP, 3 s without a single error
// (TestRTMPPushIsReadableOverRTSP checks only what ffprobe reports).
func TestRTMPPushDecodesOverRTSP(t *testing.T) {
	file := testmedia.File(t, testmedia.H264AAC)
	cs := startCross(t)
	pushFFmpeg(t, file, "rtmp://"+cs.rtmp+"/live/d1", true)
	waitFor(t, "live/d1 to be published over RTMP", 10*time.Second, func() bool { return cs.hub.Get("live/d1") != nil })
	for _, transport := range []string{"tcp", "udp"} {
		t.Run(transport, func(t *testing.T) {
			ffmpegDecodeWith(t, []string{"-rtsp_transport", transport}, "rtsp://"+cs.rtsp+"/live/d1")
		})
	}
}

// readerEnd follows one player's connection in the background and records
// when and how it ended.
type readerEnd struct {
	playing  chan struct{} // closed at the first video frame
	ended    atomic.Bool
	mu       sync.Mutex
	err      error
	statuses []string // RTMP onStatus codes
}

func newReaderEnd() *readerEnd { return &readerEnd{playing: make(chan struct{})} }

func (e *readerEnd) finish(err error) {
	e.mu.Lock()
	e.err = err
	e.mu.Unlock()
	e.ended.Store(true)
}

func (e *readerEnd) result() ([]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.statuses...), e.err
}

// followRTMP plays path with Berth's client and reads until the server hangs up.
func followRTMP(t *testing.T, addr, name string) *readerEnd {
	t.Helper()
	c := connected(t, addr)
	if code, err := c.Play(name); err != nil || code != "NetStream.Play.Start" {
		t.Fatalf("rtmp play %s: %q, %v", name, code, err)
	}
	c.Conn().SetDeadline(time.Now().Add(30 * time.Second))
	e := newReaderEnd()
	go func() {
		var once sync.Once
		for {
			m, err := c.ReadMessage()
			if err != nil {
				e.finish(err)
				return
			}
			switch m.Type {
			case msgVideo:
				once.Do(func() { close(e.playing) })
			case msgCommandAMF0:
				if vals, _ := amf0.Decode(m.Body); len(vals) > 3 && vals[0] == "onStatus" {
					if o, ok := vals[3].(amf0.Object); ok {
						e.mu.Lock()
						e.statuses = append(e.statuses, o.String("code"))
						e.mu.Unlock()
					}
				}
			}
		}
	}()
	return e
}

// followFLV reads url as HTTP-FLV until the response ends.
func followFLV(t *testing.T, url string) *readerEnd {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	e := newReaderEnd()
	go func() {
		r, err := flv.NewReader(resp.Body)
		if err != nil {
			e.finish(err)
			return
		}
		var once sync.Once
		for {
			tag, err := r.ReadTag()
			if err != nil {
				e.finish(err)
				return
			}
			if tag.Type == flv.TagVideo {
				once.Do(func() { close(e.playing) })
			}
		}
	}()
	return e
}

func waitPlaying(t *testing.T, what string, e *readerEnd) {
	t.Helper()
	select {
	case <-e.playing:
	case <-time.After(10 * time.Second):
		_, err := e.result()
		t.Fatalf("%s got no video within 10 s (err %v)", what, err)
	}
}

// TestPublisherDisconnectEndsReaders: when a publisher's TCP connection
// drops without any unpublish command (ffmpeg killed, or the socket simply
// closed), its RTMP players get NetStream.Play.UnpublishNotify and are hung
// up, and its HTTP-FLV players' responses end cleanly, within 1 s; the log
// says the publish ended and why each player ended.
func TestPublisherDisconnectEndsReaders(t *testing.T) {
	ts := startServer(t, nil)
	web := httptest.NewServer(&flv.Handler{Hub: ts.hub, Log: ts.srv.Log})
	t.Cleanup(web.Close)

	cases := []struct {
		name    string
		publish func(t *testing.T, path string) (drop func())
	}{
		{"ffmpeg killed", func(t *testing.T, path string) func() {
			cmd := pushFFmpeg(t, testmedia.File(t, testmedia.H264AAC), "rtmp://"+ts.addr+"/"+path, true)
			return func() { cmd.Process.Kill() }
		}},
		{"client socket closed", func(t *testing.T, path string) func() {
			c := connected(t, ts.addr)
			if code, err := c.Publish(strings.TrimPrefix(path, "live/")); err != nil || code != "NetStream.Publish.Start" {
				t.Fatalf("publish: %q, %v", code, err)
			}
			sendH264AAC(t, c, 0)
			return func() { c.Close() }
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := fmt.Sprintf("live/drop%d", i)
			drop := tc.publish(t, path)
			waitFor(t, path+" to be live", 10*time.Second, func() bool { return ts.hub.Get(path) != nil })
			rtmpReader := followRTMP(t, ts.addr, strings.TrimPrefix(path, "live/"))
			flvReader := followFLV(t, web.URL+"/"+path+".live.flv")
			waitPlaying(t, "the RTMP reader", rtmpReader)
			waitPlaying(t, "the HTTP-FLV reader", flvReader)

			drop()
			testutil.WaitFor(t, time.Second, "the RTMP reader to be hung up", rtmpReader.ended.Load)
			testutil.WaitFor(t, time.Second, "the HTTP-FLV response to end", flvReader.ended.Load)

			if codes, err := rtmpReader.result(); !errors.Is(err, io.EOF) || !slices.Contains(codes, "NetStream.Play.UnpublishNotify") {
				t.Errorf("RTMP reader ended with %v after statuses %v; want UnpublishNotify, then EOF", err, codes)
			}
			if _, err := flvReader.result(); !errors.Is(err, io.EOF) {
				t.Errorf("HTTP-FLV reader ended with %v, want the clean end of the response (EOF)", err)
			}
			if ts.hub.Get(path) != nil {
				t.Errorf("%s is still live after its publisher dropped", path)
			}
			ts.logs.WaitLine(t, "rtmp publish ended", "path="+path)
			ts.logs.WaitLine(t, "rtmp play ended", "path="+path)
			ts.logs.WaitLine(t, "flv play ended: the stream ended", "path="+path)
		})
	}
}

// frameGaps checks that a player gets every frame: testmedia files have a
// video frame every 40 ms and an AAC frame every 21.3 ms (ffmpeg's loop
// joins add at most 5 ms), so a step of 1.5 frames or more is a lost frame.
type frameGaps struct {
	mu           sync.Mutex
	last         map[uint8]uint32
	frames, gaps int
	firstGap     string
}

func (g *frameGaps) add(typ uint8, ts uint32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.last == nil {
		g.last = map[uint8]uint32{}
	}
	limit := uint32(60)
	if typ == flv.TagAudio {
		limit = 32
	}
	if prev, ok := g.last[typ]; ok && (ts < prev || ts-prev >= limit) {
		g.gaps++
		if g.firstGap == "" {
			g.firstGap = fmt.Sprintf("tag type %d: %d ms after %d ms", typ, ts, prev)
		}
	}
	g.last[typ] = ts
	g.frames++
}

func (g *frameGaps) result() (frames, gaps int, first string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.frames, g.gaps, g.firstGap
}

// isFrame reports whether an audio/video tag body (legacy AVC/AAC) is coded
// media rather than a sequence header.
func isFrame(body []byte) bool { return len(body) > 1 && body[1] == 1 }

// TestSlowReaderNeverCostsHealthyReadersAFrame: an RTMP player and an
// HTTP-FLV player that stop reading their sockets (tiny receive buffers,
// never read after play) are dropped with a log line once their sockets
// take nothing for the write timeout (at warn: "dropped it"), while a healthy RTMP player and a
// healthy HTTP-FLV player of the same 4 Mb/s stream get every frame in
// order, and the stream stays live.
func TestSlowReaderNeverCostsHealthyReadersAFrame(t *testing.T) {
	file := testmedia.File(t, testmedia.H264CBR)
	logs := &testutil.LogBuffer{}
	log := logging.New(logs, logging.LevelTrace)
	h := hub.New(hub.Options{Log: log})
	l, err := ports.Listen(ports.Spec{Name: "rtmp", Network: "tcp", Host: "127.0.0.1", Port: 0})
	if err != nil {
		t.Fatal(err)
	}
	// A short write timeout so the stuck players are dropped in seconds.
	rs := &Server{Hub: h, Log: log, WriteTimeout: time.Second}
	go rs.Serve(l)
	web := httptest.NewServer(&flv.Handler{Hub: h, Log: log, WriteTimeout: time.Second})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		web.CloseClientConnections()
		web.Close()
		rs.Shutdown(ctx)
		h.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	addr := l.Addr().String()
	pushFFmpeg(t, file, "rtmp://"+addr+"/live/cbr", true)
	waitFor(t, "live/cbr to be published", 10*time.Second, func() bool { return h.Get("live/cbr") != nil })
	st := h.Get("live/cbr")

	// The stuck RTMP player: handshake, connect, play, then never a read.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stuck, err := Dial(ctx, addr, false)
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	stuck.Conn().(*net.TCPConn).SetReadBuffer(4096)
	if err := stuck.Connect("live", "rtmp://"+addr+"/live"); err != nil {
		t.Fatal(err)
	}
	if code, err := stuck.Play("cbr"); err != nil || code != "NetStream.Play.Start" {
		t.Fatalf("stuck player: %q, %v", code, err)
	}
	// The stuck HTTP-FLV player: the request, then never a read.
	raw, err := net.Dial("tcp", strings.TrimPrefix(web.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(raw, "GET /live/cbr.live.flv HTTP/1.1\r\nHost: %s\r\n\r\n", raw.RemoteAddr())

	// The healthy players.
	var rtmpGaps, flvGaps frameGaps
	healthy := connected(t, addr)
	if code, err := healthy.Play("cbr"); err != nil || code != "NetStream.Play.Start" {
		t.Fatalf("healthy RTMP player: %q, %v", code, err)
	}
	healthy.Conn().SetDeadline(time.Now().Add(60 * time.Second))
	go func() {
		for {
			m, err := healthy.ReadMessage()
			if err != nil {
				return
			}
			if (m.Type == msgVideo || m.Type == msgAudio) && isFrame(m.Body) {
				rtmpGaps.add(m.Type, m.Timestamp)
			}
		}
	}()
	resp, err := http.Get(web.URL + "/live/cbr.live.flv")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	go func() {
		r, err := flv.NewReader(bufio.NewReader(resp.Body))
		if err != nil {
			return
		}
		for {
			tag, err := r.ReadTag()
			if err != nil {
				return
			}
			if (tag.Type == flv.TagVideo || tag.Type == flv.TagAudio) && isFrame(tag.Body) {
				flvGaps.add(tag.Type, tag.TS)
			}
		}
	}()

	// The kernel's socket buffers take a few megabytes before a write blocks.
	testutil.WaitFor(t, 30*time.Second, "the stuck RTMP player to be dropped", func() bool {
		return logs.Line("rtmp play stopped", "dropped it") != ""
	})
	testutil.WaitFor(t, 30*time.Second, "the stuck HTTP-FLV player to be dropped", func() bool {
		return logs.Line("level=WARN", "flv play stopped", "dropped it", "proto=http-flv") != ""
	})
	start := st.FramesIn.Load()
	waitFor(t, "2 s more of media", 20*time.Second, func() bool { return st.FramesIn.Load() > start+140 })

	for name, g := range map[string]*frameGaps{"RTMP": &rtmpGaps, "HTTP-FLV": &flvGaps} {
		frames, gaps, first := g.result()
		if gaps > 0 || frames < 140 {
			t.Errorf("healthy %s player: %d frames, %d gaps (first: %s) while others were stuck", name, frames, gaps, first)
		}
	}
	if h.Get("live/cbr") == nil {
		t.Error("the stream ended because of stuck players")
	}
}

// TestFLVPlayAuth: with [auth] play users, an HTTP-FLV or WS-FLV request
// without credentials or with a wrong password is refused with 401 (CORS
// headers kept, so a browser player can tell why) and a log line; with a
// play user's ?user=&pass= it plays.
func TestFLVPlayAuth(t *testing.T) {
	file := testmedia.File(t, testmedia.H264AAC)
	checker := &auth.Checker{
		Publish: []config.User{{Name: "pub", Password: "pw1"}},
		Play:    []config.User{{Name: "viewer", Password: "pw2"}},
	}
	ts := startServer(t, checker)
	web := httptest.NewServer(&flv.Handler{Hub: ts.hub, Log: ts.srv.Log, Auth: checker})
	t.Cleanup(web.Close)
	pushFFmpeg(t, file, "rtmp://"+ts.addr+"/live/a1?user=pub&pass=pw1", true)
	waitFor(t, "live/a1 to be published", 10*time.Second, func() bool { return ts.hub.Get("live/a1") != nil })

	base := web.URL + "/live/a1.live.flv"
	refused := map[string]string{"no credentials": "", "wrong password": "?user=viewer&pass=nope", "publish user": "?user=pub&pass=pw1"}
	t.Run("http-flv", func(t *testing.T) {
		for name, q := range refused {
			resp, err := http.Get(base + q)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "?user=NAME&pass=PASSWORD") {
				t.Errorf("%s: %s %q, want 401 naming ?user=NAME&pass=PASSWORD", name, resp.Status, body)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("%s: the 401 has Access-Control-Allow-Origin %q, want *", name, got)
			}
		}
		ts.logs.WaitLine(t, "flv play refused: bad or missing credentials", "proto=http-flv", "path=live/a1")
		checkH264AAC(t, ffprobeStreams(t, base+"?user=viewer&pass=pw2"))
	})
	t.Run("ws-flv", func(t *testing.T) {
		wsBase := "ws" + strings.TrimPrefix(base, "http")
		for name, q := range refused {
			conn, resp, err := websocket.DefaultDialer.Dial(wsBase+q, nil)
			if err == nil {
				conn.Close()
				t.Errorf("%s: the WebSocket was accepted", name)
				continue
			}
			if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s: %v (response %v), want a refused handshake with 401", name, err, resp)
			}
		}
		ts.logs.WaitLine(t, "flv play refused: bad or missing credentials", "proto=ws-flv", "path=live/a1")
		readWSFLV(t, wsBase+"?user=viewer&pass=pw2", time.Second)
	})
}

// hevcNALUs splits an Annex-B byte stream into NAL units.
func hevcNALUs(b []byte) [][]byte {
	var nalus [][]byte
	start := -1
	for i := 0; i+2 < len(b); i++ {
		if b[i] != 0 || b[i+1] != 0 || b[i+2] != 1 {
			continue
		}
		if start >= 0 {
			end := i
			if end > start && b[end-1] == 0 { // a 4-byte start code
				end--
			}
			nalus = append(nalus, b[start:end])
		}
		start = i + 3
		i += 2
	}
	if start >= 0 && start < len(b) {
		nalus = append(nalus, b[start:])
	}
	return nalus
}

// hevcAccessUnits groups NAL units into access units (ITU-T H.265 7.4.2.4.4):
// a VPS, SPS, PPS, AUD or prefix SEI after a picture, or a slice that is
// the first of its picture, starts a new one.
func hevcAccessUnits(nalus [][]byte) [][][]byte {
	var aus [][][]byte
	var cur [][]byte
	hasVCL := false
	for _, n := range nalus {
		if len(n) < 3 {
			continue
		}
		typ := (n[0] >> 1) & 0x3f
		vcl := typ < 32
		prefix := typ >= 32 && typ <= 35 || typ == 39
		if hasVCL && (prefix || vcl && n[2]&0x80 != 0) {
			aus = append(aus, cur)
			cur, hasVCL = nil, false
		}
		cur = append(cur, n)
		hasVCL = hasVCL || vcl
	}
	if hasVCL {
		aus = append(aus, cur)
	}
	return aus
}

// hvcCOf returns the HEVCDecoderConfigurationRecord of an MP4 file's hvcC box.
func hvcCOf(t *testing.T, mp4 []byte) []byte {
	t.Helper()
	i := bytes.Index(mp4, []byte("hvcC"))
	if i < 4 {
		t.Fatal("the H.265 test file has no hvcC box")
	}
	size := int(binary.BigEndian.Uint32(mp4[i-4:]))
	if size < 8+23 || i-4+size > len(mp4) {
		t.Fatalf("hvcC box of %d bytes", size)
	}
	return mp4[i+4 : i-4+size]
}

// TestEnhancedRTMPH265IsReadableOverRTSP: H.265 published over enhanced RTMP
// (FourCC hvc1 tags) is read back over RTSP as hevc at 320x240 and decodes
// without errors. Where the machine's ffmpeg can push H.265 over RTMP
// (6.1 and later) ffmpeg pushes; Berth's own client always does too, with
// tags built from an H.265 file libx265 made.
func TestEnhancedRTMPH265IsReadableOverRTSP(t *testing.T) {
	file := testmedia.File(t, testmedia.H265AAC)
	cs := startCross(t)
	checkHEVC := func(t *testing.T, url string) {
		t.Helper()
		checkOneVideo(t, "RTSP", "hevc", 320, 240, "-rtsp_transport", "tcp", url)
		ffmpegDecodeWith(t, []string{"-rtsp_transport", "tcp"}, url)
	}

	t.Run("ffmpeg", func(t *testing.T) {
		// Does this ffmpeg's FLV muxer take H.265 at all (enhanced RTMP came in 6.1)?
		out, err := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-i", file, "-an", "-c:v", "copy",
			"-t", "0.2", "-f", "flv", "-y", os.DevNull).CombinedOutput()
		if err != nil {
			ver, _ := exec.Command("ffmpeg", "-version").Output()
			first, _, _ := strings.Cut(string(ver), "\n")
			t.Skipf("this ffmpeg cannot push H.265 over RTMP (%s): %s", first, strings.TrimSpace(string(out)))
		}
		pushFFmpeg(t, file, "rtmp://"+cs.rtmp+"/live/h265ff", true)
		waitFor(t, "live/h265ff to be published", 10*time.Second, func() bool { return cs.hub.Get("live/h265ff") != nil })
		checkHEVC(t, "rtsp://"+cs.rtsp+"/live/h265ff")
	})

	t.Run("berth client", func(t *testing.T) {
		mp4, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		config := hvcCOf(t, mp4)
		annexB := filepath.Join(t.TempDir(), "v.h265")
		if out, err := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-i", file, "-an", "-c:v", "copy",
			"-bsf:v", "hevc_mp4toannexb", "-f", "hevc", "-y", annexB).CombinedOutput(); err != nil {
			t.Fatalf("extracting the H.265 stream: %v\n%s", err, out)
		}
		es, err := os.ReadFile(annexB)
		if err != nil {
			t.Fatal(err)
		}
		aus := hevcAccessUnits(hevcNALUs(es))
		if len(aus) != 250 {
			t.Fatalf("%d access units in the 10 s H.265 file, want 250", len(aus))
		}
		// Enhanced RTMP video tags (veovera enhanced-rtmp v1): IsExHeader,
		// frame type, packet type, FourCC; CodedFrames carry an SI24
		// composition time, then 4-byte-length NAL units.
		hvc1 := []byte("hvc1")
		var tags [][]byte
		for _, au := range aus {
			key := false
			body := []byte{0, 0, 0, 0, 0, 0, 0, 0}
			copy(body[1:], hvc1)
			for _, n := range au {
				if typ := (n[0] >> 1) & 0x3f; typ >= 16 && typ <= 23 {
					key = true
				}
				body = binary.BigEndian.AppendUint32(body, uint32(len(n)))
				body = append(body, n...)
			}
			body[0] = 0x80 | 2<<4 | 1 // inter frame, CodedFrames
			if key {
				body[0] = 0x80 | 1<<4 | 1
			}
			tags = append(tags, body)
		}

		c := connected(t, cs.rtmp)
		if code, err := c.Publish("h265"); err != nil || code != "NetStream.Publish.Start" {
			t.Fatalf("publish: %q, %v", code, err)
		}
		c.Conn().SetDeadline(time.Time{})
		meta := amf0.Encode("@setDataFrame", "onMetaData", amf0.ECMAArray{
			{Key: "videocodecid", Value: float64(binary.BigEndian.Uint32(hvc1))},
			{Key: "width", Value: 320.0}, {Key: "height", Value: 240.0}, {Key: "framerate", Value: 25.0}})
		if err := c.SendMedia(msgDataAMF0, 0, meta); err != nil {
			t.Fatal(err)
		}
		if err := c.SendMedia(msgVideo, 0, append(append([]byte{0x80 | 1<<4 | 0}, hvc1...), config...)); err != nil {
			t.Fatal(err)
		}
		// Send in real time, looping, as an encoder would, until the test ends.
		sendEvery40ms(t, "H.265", func(i int) error { return c.SendMedia(msgVideo, uint32(i*40), tags[i%len(tags)]) })
		waitFor(t, "live/h265 to be published", 10*time.Second, func() bool { return cs.hub.Get("live/h265") != nil })
		if line := cs.logs.WaitLine(t, "rtmp stream live", "path=live/h265"); !strings.Contains(line, "H265") {
			t.Errorf("stream live line %q does not name H265", line)
		}
		checkHEVC(t, "rtsp://"+cs.rtsp+"/live/h265")
	})
}

// checkOneVideo asserts that ffprobe with args (what names it) reports
// exactly one video stream, of codec at w x h.
func checkOneVideo(t *testing.T, what, codec string, w, h int, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var video []probeStream
	for _, s := range ffprobeStreamsArgs(t, ctx, args...) {
		if s.CodecType == "video" {
			video = append(video, s)
		}
	}
	if len(video) != 1 || video[0].CodecName != codec || video[0].Width != w || video[0].Height != h {
		t.Errorf("video streams of %s = %+v, want one %s %dx%d", what, video, codec, w, h)
	}
}
