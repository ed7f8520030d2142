package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

type probedTS struct {
	Streams []struct {
		CodecName string `json:"codec_name"`
		CodecType string `json:"codec_type"`
		StartTime string `json:"start_time"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
	} `json:"streams"`
}

// probeTS has ffprobe describe url's streams with their start times. A
// live TS has no header, so ffprobe reads it for its whole analyzeduration
// (5 s by default, as of ffmpeg's own HTTP TS): 1 s is plenty here, the
// first second holds a keyframe and the audio.
func probeTS(t *testing.T, url string) probedTS {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-analyzeduration", "1000000", "-show_entries",
		"stream=codec_name,codec_type,start_time,width,height", "-of", "json", url).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("ffprobe %s: %v\n%s", url, err, ee.Stderr)
		}
		t.Fatalf("ffprobe %s: %v", url, err)
	}
	var p probedTS
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	return p
}

// decode5s has ffmpeg decode 5 s of url; any message at -v error fails.
func decode5s(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-v", "error", "-i", url, "-t", "5", "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("ffmpeg decoding 5 s of %s: %v\n%s", url, err, out)
	}
}

// TestHTTPTSPlaysFromRTMPAndRTSP: an ffmpeg push over RTMP (access units)
// and over RTSP (RTP, converted) are each read as .live.ts: ffprobe sees
// H.264 320x240 and AAC starting within 100 ms of each other, ffmpeg
// decodes 5 s without a message, and the response is a chunked video/mp2t
// with CORS and no-cache.
func TestHTTPTSPlaysFromRTMPAndRTSP(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	push(t, srv, testmedia.H264AAC, "rtmp://"+srv.Addr("rtmp")+"/live/m", "live/m")
	push(t, srv, testmedia.H264AAC, "rtsp://"+srv.Addr("rtsp")+"/live/r", "live/r")
	for _, path := range []string{"live/m", "live/r"} {
		url := "http://" + srv.Addr("http") + "/" + path + ".live.ts"
		p := probeTS(t, url)
		if len(p.Streams) != 2 || p.Streams[0].CodecName != "h264" || p.Streams[0].Width != 320 || p.Streams[0].Height != 240 ||
			p.Streams[1].CodecName != "aac" {
			t.Errorf("%s: ffprobe %+v, want h264 320x240 and aac", url, p.Streams)
		} else {
			v, errV := strconv.ParseFloat(p.Streams[0].StartTime, 64)
			a, errA := strconv.ParseFloat(p.Streams[1].StartTime, 64)
			t.Logf("%s: video starts at %s, audio at %s", path, p.Streams[0].StartTime, p.Streams[1].StartTime)
			if errV != nil || errA != nil || math.Abs(v-a) > 0.1 {
				t.Errorf("%s: video starts at %s, audio at %s; want within 100 ms", url, p.Streams[0].StartTime, p.Streams[1].StartTime)
			}
		}
		decode5s(t, url)

		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		h := res.Header
		if res.StatusCode != 200 || h.Get("Content-Type") != "video/mp2t" || h.Get("Access-Control-Allow-Origin") != "*" ||
			h.Get("Cache-Control") != "no-cache" || len(res.TransferEncoding) == 0 || res.TransferEncoding[0] != "chunked" {
			t.Errorf("%s: %s %v", url, res.Status, h)
		}
		res.Body.Close()
	}
}

// tsPID is the PID of the TS packet at b[0:188].
func tsPID(b []byte) uint16 { return uint16(b[1]&0x1f)<<8 | uint16(b[2]) }

// TestWSTSSendsTSPackets: over WebSocket every binary message is whole TS
// packets (0x47 every 188 bytes), and the first begins with the PAT.
func TestWSTSSendsTSPackets(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	push(t, srv, testmedia.H264AAC, "rtmp://"+srv.Addr("rtmp")+"/live/ws", "live/ws")
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr("http")+"/live/ws.live.ts", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	total := 0
	for i := 0; total < 64<<10; i++ {
		typ, msg, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if typ != websocket.BinaryMessage || len(msg) == 0 || len(msg)%188 != 0 {
			t.Fatalf("message %d: type %d, %d bytes (want binary, whole 188-byte packets)", i, typ, len(msg))
		}
		for off := 0; off < len(msg); off += 188 {
			if msg[off] != 0x47 {
				t.Fatalf("message %d: byte %d is %#x, want the sync byte 0x47", i, off, msg[off])
			}
		}
		if i == 0 && tsPID(msg) != 0 {
			t.Fatalf("first message starts with PID %d, want the PAT (0)", tsPID(msg))
		}
		total += len(msg)
	}
	if n := srv.Hub.Stats().BytesOut["ws-ts"]; n == 0 {
		t.Errorf("hub stats: no ws-ts bytes out")
	}
}

// TestHTTPTSReadersShareOneMuxer: two players at once are served by one
// muxer; getMediaList counts each once, as http-ts with the bytes it was
// sent; the muxer stops after the last player leaves.
func TestHTTPTSReadersShareOneMuxer(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	push(t, srv, testmedia.H264AAC, "rtmp://"+srv.Addr("rtmp")+"/live/two", "live/two")
	url := "http://" + srv.Addr("http") + "/live/two.live.ts"
	var bodies []io.ReadCloser
	defer func() {
		for _, b := range bodies {
			b.Close()
		}
	}()
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, res.Body)
		wg.Add(1)
		go func() {
			defer wg.Done()
			head := make([]byte, 64<<10)
			if _, err := io.ReadFull(res.Body, head); err != nil {
				t.Errorf("player: %v", err)
				return
			}
			if head[0] != 0x47 || tsPID(head) != 0 {
				t.Errorf("player's body starts with % x, want a PAT packet", head[:4])
			}
		}()
	}
	wg.Wait()
	ms := srv.TSMuxers()
	if ms.Started() != 1 || ms.Running() != 1 {
		t.Errorf("muxers started %d, running %d; want 1 and 1", ms.Started(), ms.Running())
	}
	res, err := http.Get("http://" + srv.Addr("http") + "/index/api/getMediaList?secret=s3cret&schema=ts&stream=two")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), `"readerCount":2`) || !strings.Contains(string(body), `"schema":"ts"`) {
		t.Errorf("getMediaList schema=ts with two TS players: %s", body)
	}
	for _, r := range srv.Hub.Get("live/two").ReaderList() {
		if r.Who().Proto != "http-ts" || r.Bytes() == 0 {
			t.Errorf("player %s has %d bytes out, want http-ts with the bytes it was sent", r.Who(), r.Bytes())
		}
	}
	for _, b := range bodies {
		b.Close()
	}
	testutil.WaitFor(t, ms.StopDelay+5*time.Second, "the muxer to stop after its last player", func() bool { return ms.Running() == 0 })
	testutil.WaitFor(t, 5*time.Second, "the players to leave the hub", func() bool { return srv.Hub.Get("live/two").Readers() == 0 })
}

// TestHTTPTSLeavesG711Out: a G.711 track is left out with one log line
// per stream naming where it plays; the video plays alone.
func TestHTTPTSLeavesG711Out(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, logs := start(t)
	push(t, srv, testmedia.H264PCMA, "rtsp://"+srv.Addr("rtsp")+"/live/pcma", "live/pcma")
	url := "http://" + srv.Addr("http") + "/live/pcma.live.ts"
	if p := probeTS(t, url); len(p.Streams) != 1 || p.Streams[0].CodecName != "h264" {
		t.Errorf("%s: ffprobe %+v, want h264 alone", url, p.Streams)
	}
	logs.WaitLine(t, "mpegts: tracks left out", "path=live/pcma", "G.711 (plays over RTSP, RTMP and HTTP-FLV)")
	probeTS(t, url) // a second muxer of the same stream says nothing more
	if n := strings.Count(logs.String(), "mpegts: tracks left out"); n != 1 {
		t.Errorf("%d lines about the left-out track, want 1 per stream", n)
	}
}
