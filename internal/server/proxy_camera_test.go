package server_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/conn"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"
	"github.com/pion/rtp"

	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// camMedia is one media of a fake camera's SDP: what it sends once set up
// and the URL its SETUP must name.
type camMedia struct {
	kind  string // "h264", "pcmu", "pcma" or "meta" (sends nothing)
	pt    uint8
	setup string // the SETUP URL the camera answers for it ({{host}}: the camera's address)
}

// cameraCase is an SDP as a real camera sends it.
type cameraCase struct {
	name        string
	path        string // the stream URL's path and query
	contentBase string // the DESCRIBE answer's Content-Base ("" = none)
	sdp         string
	medias      []camMedia
	wantSetup   []int  // the medias Berth must set up, in order
	want        string // the codecs ffprobe reads back over RTSP from Berth
	wantFLV     string // and over HTTP-FLV ("" = not probed): the converted view, parameters from in band
	wantLog     []string
}

// cameraCases are the odd SDPs of issue 11: no sprop-parameter-sets, two
// video tracks, every a=control form, static payload types without rtpmap,
// an ONVIF metadata track.
var cameraCases = []cameraCase{{
	name: "h264 without sprop, Content-Base, relative controls (Hikvision)",
	path: "/Streaming/Channels/101", contentBase: "rtsp://{{host}}/Streaming/Channels/101/",
	sdp: `v=0
o=- 1 1 IN IP4 0.0.0.0
s=Media Presentation
t=0 0
a=control:*
m=video 0 RTP/AVP 96
a=rtpmap:96 H264/90000
a=fmtp:96 profile-level-id=420029; packetization-mode=1
a=control:trackID=1
m=audio 0 RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=control:trackID=2
`,
	medias: []camMedia{
		{"h264", 96, "rtsp://{{host}}/Streaming/Channels/101/trackID=1"},
		{"pcmu", 0, "rtsp://{{host}}/Streaming/Channels/101/trackID=2"},
	},
	wantSetup: []int{0, 1}, want: "h264,pcm_mulaw", wantFLV: "h264,pcm_mulaw",
}, {
	name: "main and sub stream video plus audio: the first video is taken",
	path: "/live/main", contentBase: "rtsp://{{host}}/live/main/",
	sdp: `v=0
o=- 1 1 IN IP4 0.0.0.0
s=Dual
t=0 0
m=video 0 RTP/AVP 96
a=rtpmap:96 H264/90000
a=fmtp:96 packetization-mode=1
a=control:trackID=0
m=video 0 RTP/AVP 97
a=rtpmap:97 H264/90000
a=fmtp:97 packetization-mode=1
a=control:trackID=1
m=audio 0 RTP/AVP 8
a=rtpmap:8 PCMA/8000
a=control:trackID=2
`,
	medias: []camMedia{
		{"h264", 96, "rtsp://{{host}}/live/main/trackID=0"},
		{"h264", 97, "rtsp://{{host}}/live/main/trackID=1"},
		{"pcma", 8, "rtsp://{{host}}/live/main/trackID=2"},
	},
	wantSetup: []int{0, 2}, want: "h264,pcm_alaw",
	wantLog: []string{"pull: left out medias of the source", "media 2 video H264 (a second video track)"},
}, {
	name: "absolute controls naming the camera's LAN address (behind NAT)",
	path: "/live/ch0",
	sdp: `v=0
o=- 1 1 IN IP4 192.168.1.64
s=Abs
t=0 0
m=video 0 RTP/AVP 96
a=rtpmap:96 H264/90000
a=fmtp:96 packetization-mode=1
a=control:rtsp://192.168.1.64:554/live/ch0/track1
m=audio 0 RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=control:rtsp://192.168.1.64:554/live/ch0/track2
`,
	medias: []camMedia{
		{"h264", 96, "rtsp://{{host}}/live/ch0/track1"},
		{"pcmu", 0, "rtsp://{{host}}/live/ch0/track2"},
	},
	wantSetup: []int{0, 1}, want: "h264,pcm_mulaw",
}, {
	name: "relative controls without Content-Base: relative to the request URL",
	path: "/live/ch1",
	sdp: `v=0
o=- 1 1 IN IP4 0.0.0.0
s=Rel
t=0 0
m=video 0 RTP/AVP 96
a=rtpmap:96 H264/90000
a=control:trackID=1
m=audio 0 RTP/AVP 8
a=rtpmap:8 PCMA/8000
a=control:trackID=2
`,
	medias: []camMedia{
		{"h264", 96, "rtsp://{{host}}/live/ch1/trackID=1"},
		{"pcma", 8, "rtsp://{{host}}/live/ch1/trackID=2"},
	},
	wantSetup: []int{0, 1}, want: "h264,pcm_alaw",
}, {
	name: "a video-only camera without any a=control: SETUP on the stream URL",
	path: "/video",
	sdp: `v=0
o=- 1 1 IN IP4 0.0.0.0
s=NoControl
t=0 0
m=video 0 RTP/AVP 96
a=rtpmap:96 H264/90000
a=fmtp:96 packetization-mode=1
`,
	medias:    []camMedia{{"h264", 96, "rtsp://{{host}}/video"}},
	wantSetup: []int{0}, want: "h264",
}, {
	name: "a query in the stream URL and Content-Base (Dahua)",
	path: "/cam/realmonitor?channel=1&subtype=0", contentBase: "rtsp://{{host}}/cam/realmonitor?channel=1&subtype=0/",
	sdp: `v=0
o=- 1 1 IN IP4 0.0.0.0
s=Media Server
t=0 0
a=control:*
m=video 0 RTP/AVP 96
a=rtpmap:96 H264/90000
a=fmtp:96 packetization-mode=1
a=control:trackID=0
m=audio 0 RTP/AVP 8
a=control:trackID=1
`,
	medias: []camMedia{
		{"h264", 96, "rtsp://{{host}}/cam/realmonitor?channel=1&subtype=0/trackID=0"},
		{"pcma", 8, "rtsp://{{host}}/cam/realmonitor?channel=1&subtype=0/trackID=1"},
	},
	wantSetup: []int{0, 1}, want: "h264,pcm_alaw",
}, {
	name: "absolute controls with a query (Axis)",
	path: "/axis-media/media.amp?videocodec=h264", contentBase: "rtsp://{{host}}/axis-media/media.amp/",
	sdp: `v=0
o=- 1 1 IN IP4 0.0.0.0
s=Session streamed with GStreamer
t=0 0
a=control:rtsp://{{host}}/axis-media/media.amp?videocodec=h264
m=video 0 RTP/AVP 96
a=rtpmap:96 H264/90000
a=fmtp:96 packetization-mode=1
a=control:rtsp://{{host}}/axis-media/media.amp/stream=0?videocodec=h264
m=audio 0 RTP/AVP 0
a=control:rtsp://{{host}}/axis-media/media.amp/stream=1?videocodec=h264
`,
	medias: []camMedia{
		{"h264", 96, "rtsp://{{host}}/axis-media/media.amp/stream=0?videocodec=h264"},
		{"pcmu", 0, "rtsp://{{host}}/axis-media/media.amp/stream=1?videocodec=h264"},
	},
	wantSetup: []int{0, 1}, want: "h264,pcm_mulaw",
}, {
	name: "static payload type without rtpmap and an ONVIF metadata track",
	path: "/onvif/profile1", contentBase: "rtsp://{{host}}/onvif/profile1/",
	sdp: `v=0
o=- 1 1 IN IP4 0.0.0.0
s=ONVIF
t=0 0
m=video 0 RTP/AVP 96
a=rtpmap:96 H264/90000
a=fmtp:96 packetization-mode=1
a=control:video
m=audio 0 RTP/AVP 0
a=control:audio
m=application 0 RTP/AVP 107
a=rtpmap:107 vnd.onvif.metadata/90000
a=control:metadata
`,
	medias: []camMedia{
		{"h264", 96, "rtsp://{{host}}/onvif/profile1/video"},
		{"pcmu", 0, "rtsp://{{host}}/onvif/profile1/audio"},
		{"meta", 107, "rtsp://{{host}}/onvif/profile1/metadata"},
	},
	wantSetup: []int{0, 1}, want: "h264,pcm_mulaw",
	wantLog: []string{"pull: left out medias of the source", "media 3 application"},
}, {
	// gortsplib refuses a whole SDP for one media it cannot read: here a
	// dynamic payload type without rtpmap has no clock rate.
	name: "an audio media without rtpmap for its dynamic payload type",
	path: "/h264", contentBase: "rtsp://{{host}}/h264/",
	sdp: `v=0
o=- 1 1 IN IP4 0.0.0.0
s=NoRtpmap
t=0 0
m=video 0 RTP/AVP 96
a=rtpmap:96 H264/90000
a=fmtp:96 packetization-mode=1
a=control:track1
m=audio 0 RTP/AVP 97
a=control:track2
`,
	medias: []camMedia{
		{"h264", 96, "rtsp://{{host}}/h264/track1"},
		{"meta", 97, "rtsp://{{host}}/h264/track2"},
	},
	wantSetup: []int{0}, want: "h264",
	wantLog: []string{"pull: left out medias of the source", "media 2 audio payload type 97 (its SDP does not parse: clock rate not found)"},
}}

// TestPullCamerasWithOddSDPs: Berth pulls a scripted camera per SDP variant
// over RTSP/TCP; each pulled stream goes live, Berth sets up exactly the
// medias it carries at the URLs the camera's a=control lines name, and
// ffprobe reads the stream back from Berth over RTSP with the right codecs.
func TestPullCamerasWithOddSDPs(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	aus := h264AccessUnits(t)
	srv, logs := startPuller(t, nil)
	cams := make([]*fakeCamera, len(cameraCases))
	for i, c := range cameraCases {
		cams[i] = startFakeCamera(t, c, aus)
		addProxy(t, srv, fmt.Sprintf("cam/c%d", i), "rtsp://"+cams[i].host+c.path)
	}
	var wg sync.WaitGroup
	for i, c := range cameraCases {
		path := fmt.Sprintf("cam/c%d", i)
		testutil.WaitFor(t, 10*time.Second, c.name+": "+path+" to be pulled", func() bool {
			st := srv.Hub.Get(path)
			return st != nil && st.FramesIn.Load() > 20
		})
		if got := cams[i].setupMedias(); !slices.Equal(got, c.wantSetup) {
			t.Errorf("%s: Berth set up medias %v; want %v (SETUP URLs: %v)", c.name, got, c.wantSetup, cams[i].setupURLs())
		}
		if len(c.wantLog) > 0 && logs.Line(append([]string{"key=__defaultVhost__/" + path + " "}, c.wantLog...)...) == "" {
			t.Errorf("%s: no log line with %q", c.name, c.wantLog)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got, err := probe(urls(srv, path)["rtsp"]); err != nil || got != c.want {
				t.Errorf("%s: ffprobe over RTSP got %q, %v; want %s", c.name, got, err, c.want)
			}
			if c.wantFLV == "" {
				return
			}
			if got, err := probe(urls(srv, path)["http-flv"]); err != nil || got != c.wantFLV {
				t.Errorf("%s: ffprobe over HTTP-FLV got %q, %v; want %s", c.name, got, err, c.wantFLV)
			}
		}()
		if i%3 == 2 { // three ffprobes at a time on a 2-core machine
			wg.Wait()
		}
	}
	wg.Wait()
}

// h264AccessUnits encodes 2 s of 320x240 H.264 at 25 fps (GOP 25) with
// SPS and PPS in band before every IDR, as cameras send it, and splits it
// into access units of NAL units.
func h264AccessUnits(t *testing.T) [][][]byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "cam.h264")
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
		"testsrc=size=320x240:rate=25:duration=2", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
		"-g", "25", "-bf", "0", "-threads", "1", "-bsf:v", "dump_extra", "-f", "h264", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg making the camera's H.264: %v\n%s", err, b)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var aus [][][]byte
	var au [][]byte
	for _, nalu := range bytes.Split(raw, []byte{0, 0, 1}) {
		nalu = bytes.TrimRight(nalu, "\x00") // the zero of a 4-byte start code
		if len(nalu) == 0 {
			continue
		}
		au = append(au, nalu)
		if typ := nalu[0] & 0x1f; typ == 1 || typ == 5 { // one slice per frame (-threads 1)
			aus = append(aus, au)
			au = nil
		}
	}
	if len(aus) < 25 {
		t.Fatalf("the camera's H.264 has %d access units; want 50", len(aus))
	}
	return aus
}

// fakeCamera is a scripted RTSP camera: it answers OPTIONS, DESCRIBE
// (its SDP, Content-Base), SETUP (only at its medias' URLs; 404 elsewhere,
// as cameras do), PLAY, GET_PARAMETER and TEARDOWN, and sends its medias
// interleaved over TCP in real time once PLAY comes.
type fakeCamera struct {
	t    *testing.T
	c    cameraCase
	host string
	aus  [][][]byte
	ln   net.Listener

	mu     sync.Mutex
	setups []string // SETUP URLs it answered, in order
	conns  map[net.Conn]struct{}
}

func startFakeCamera(t *testing.T, c cameraCase, aus [][][]byte) *fakeCamera {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cam := &fakeCamera{t: t, c: c, host: ln.Addr().String(), aus: aus, ln: ln, conns: map[net.Conn]struct{}{}}
	var wg sync.WaitGroup
	// The camera goes before the Berth that pulls it (cleanups run last
	// first): its connections are closed, not waited for.
	t.Cleanup(func() {
		ln.Close()
		cam.mu.Lock()
		for nc := range cam.conns {
			nc.Close()
		}
		cam.mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			cam.mu.Lock()
			cam.conns[nc] = struct{}{}
			cam.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				cam.serve(nc, &wg)
			}()
		}
	}()
	return cam
}

func (cam *fakeCamera) fill(s string) string { return strings.ReplaceAll(s, "{{host}}", cam.host) }

func (cam *fakeCamera) setupURLs() []string {
	cam.mu.Lock()
	defer cam.mu.Unlock()
	return slices.Clone(cam.setups)
}

// setupMedias are the indexes of the medias set up, in order.
func (cam *fakeCamera) setupMedias() []int {
	var out []int
	for _, u := range cam.setupURLs() {
		for i, m := range cam.c.medias {
			if cam.fill(m.setup) == u {
				out = append(out, i)
			}
		}
	}
	return out
}

// serve runs one RTSP connection until the client leaves.
func (cam *fakeCamera) serve(nc net.Conn, wg *sync.WaitGroup) {
	defer nc.Close()
	rc := conn.NewConn(bufio.NewReader(nc), nc)
	var wmu sync.Mutex        // responses and media share the connection
	channels := map[int]int{} // media -> interleaved RTP channel
	stop := make(chan struct{})
	defer close(stop)
	write := func(res *base.Response) error {
		wmu.Lock()
		defer wmu.Unlock()
		return rc.WriteResponse(res)
	}
	for {
		msg, err := rc.Read()
		if err != nil {
			return
		}
		req, ok := msg.(*base.Request)
		if !ok {
			continue // RTCP from the client
		}
		res := &base.Response{StatusCode: base.StatusOK, Header: base.Header{"CSeq": req.Header["CSeq"], "Session": {"cam1;timeout=60"}}}
		switch req.Method {
		case base.Options:
			res.Header["Public"] = base.HeaderValue{"OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN"}
		case base.Describe:
			res.Header["Content-Type"] = base.HeaderValue{"application/sdp"}
			if cam.c.contentBase != "" {
				res.Header["Content-Base"] = base.HeaderValue{cam.fill(cam.c.contentBase)}
			}
			res.Body = []byte(strings.ReplaceAll(cam.fill(cam.c.sdp), "\n", "\r\n"))
		case base.Setup:
			u := req.URL.String()
			media := slices.IndexFunc(cam.c.medias, func(m camMedia) bool { return cam.fill(m.setup) == u })
			var th headers.Transport
			if media < 0 || th.Unmarshal(req.Header["Transport"]) != nil || th.InterleavedIDs == nil {
				cam.t.Logf("camera %q: SETUP %s: no such media (or not TCP): 404", cam.c.name, u)
				res.StatusCode = base.StatusNotFound
				break
			}
			cam.mu.Lock()
			cam.setups = append(cam.setups, u)
			cam.mu.Unlock()
			channels[media] = th.InterleavedIDs[0]
			res.Header["Transport"] = th.Marshal()
		case base.Play:
			ch := map[int]int{}
			for k, v := range channels {
				ch[k] = v
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				cam.send(rc, &wmu, ch, stop)
			}()
		case base.GetParameter:
		case base.Teardown:
			write(res)
			return
		default:
			res.StatusCode = base.StatusNotImplemented
		}
		if err := write(res); err != nil {
			return
		}
	}
}

// send plays the set-up medias in real time: a video frame every 40 ms
// (the access units looped, timestamps running on), 20 ms of G.711 silence
// every 20 ms.
func (cam *fakeCamera) send(rc *conn.Conn, wmu *sync.Mutex, channels map[int]int, stop <-chan struct{}) {
	encs := map[int]*rtph264.Encoder{}
	seq := map[int]uint16{}
	for m := range channels {
		if cam.c.medias[m].kind == "h264" {
			encs[m] = &rtph264.Encoder{PayloadType: cam.c.medias[m].pt, PacketizationMode: 1}
			if err := encs[m].Init(); err != nil {
				cam.t.Error(err)
				return
			}
		}
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	buf := make([]byte, 2048)
	for n := 0; ; n++ {
		for m, ch := range channels {
			var pkts []*rtp.Packet
			switch kind := cam.c.medias[m].kind; kind {
			case "h264":
				if n%2 != 0 {
					continue
				}
				var err error
				if pkts, err = encs[m].Encode(cam.aus[(n/2)%len(cam.aus)]); err != nil {
					cam.t.Error(err)
					return
				}
				for _, p := range pkts {
					p.Timestamp = uint32(n/2) * 3600
				}
			case "pcmu", "pcma":
				silence := byte(0xff)
				if kind == "pcma" {
					silence = 0xd5
				}
				seq[m]++
				pkts = []*rtp.Packet{{Header: rtp.Header{Version: 2, PayloadType: cam.c.medias[m].pt, SequenceNumber: seq[m],
					Timestamp: uint32(n) * 160, SSRC: 0x1234, Marker: n == 0}, Payload: bytes.Repeat([]byte{silence}, 160)}}
			}
			for _, p := range pkts {
				b, err := p.Marshal()
				if err != nil {
					cam.t.Error(err)
					return
				}
				wmu.Lock()
				err = rc.WriteInterleavedFrame(&base.InterleavedFrame{Channel: ch, Payload: b}, buf)
				wmu.Unlock()
				if err != nil {
					return // the client left
				}
			}
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}
