package rtmp

// End-to-end tests of AV1: an enhanced-RTMP (FourCC av01) publisher read
// over RTSP, RTMP and HTTP-FLV, and an RTSP publisher read over RTMP and
// HTTP-FLV. ffmpeg 5.1 can push AV1 over neither RTMP (enhanced RTMP came
// in 6.1) nor RTP, so Berth's own clients push the temporal units of a
// file SVT-AV1 made; ffmpeg pushes as well where it can. What readers get
// is checked with ffprobe where it reads the protocol, and always by
// writing the temporal units they got into an AV1 file that ffmpeg decodes.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpav1"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/pion/rtp"

	"github.com/berthmedia/berth/internal/flv"
	"github.com/berthmedia/berth/internal/flv/amf0"
	"github.com/berthmedia/berth/internal/rtspclient"
	"github.com/berthmedia/berth/internal/testmedia"
)

// av1Source is a 4 s AV1 stream (320x240, 25 fps, 1 s GOP) that SVT-AV1
// made: its MP4 file, an av1C record, and its temporal units as OBUs with
// obu_size (temporal delimiters left out). The av1C is the MP4's with its
// config OBU replaced by the sequence header of the bitstream: SVT-AV1
// 1.4's stream header, which ffmpeg puts in the MP4, differs from the one
// the frames are coded with, and decoders need the latter.
type av1Source struct {
	mp4  string
	av1C []byte
	tus  [][][]byte
}

const av1Frames = 100

func makeAV1Source(t *testing.T) *av1Source {
	t.Helper()
	testmedia.RequireFFmpeg(t)
	dir := t.TempDir()
	src := &av1Source{mp4: filepath.Join(dir, "av1.mp4")}
	obu := filepath.Join(dir, "av1.obu")
	av1FFmpeg(t, "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=4", "-pix_fmt", "yuv420p",
		"-c:v", "libsvtav1", "-preset", "12", "-g", "25", src.mp4)
	av1FFmpeg(t, "-i", src.mp4, "-c:v", "copy", "-f", "obu", obu)
	mp4, err := os.ReadFile(src.mp4)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(mp4, []byte("av1C"))
	if i < 4 {
		t.Fatal("the AV1 test file has no av1C box")
	}
	size := int(binary.BigEndian.Uint32(mp4[i-4:]))
	if size < 8+4 || i-4+size > len(mp4) {
		t.Fatalf("av1C box of %d bytes", size)
	}
	src.av1C = mp4[i+4 : i+8]
	b, err := os.ReadFile(obu)
	if err != nil {
		t.Fatal(err)
	}
	for len(b) > 0 { // the low-overhead format: every OBU with obu_size
		var size av1.LEB128
		n, err := size.Unmarshal(b[1:])
		if err != nil || b[0]&0x02 == 0 || len(b) < 1+n+int(size) {
			t.Fatalf("%s is not in the low-overhead format", obu)
		}
		o := b[:1+n+int(size)]
		b = b[len(o):]
		if av1OBUType(o) == av1.OBUTypeTemporalDelimiter {
			src.tus = append(src.tus, nil)
			continue
		}
		src.tus[len(src.tus)-1] = append(src.tus[len(src.tus)-1], o)
	}
	if len(src.tus) != av1Frames || !av1.IsRandomAccess2(src.tus[0]) || !av1.IsRandomAccess2(src.tus[25]) {
		t.Fatalf("the AV1 test file has %d temporal units, want %d with keyframes every 25", len(src.tus), av1Frames)
	}
	src.av1C = append(src.av1C, src.tus[0][0]...) // the sequence header, first in the first unit
	return src
}

func av1FFmpeg(t *testing.T, args ...string) {
	t.Helper()
	// SVT-AV1 can hang ffmpeg when its output fails to open: a deadline and SIGKILL.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args = append([]string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y"}, args...)
	if out, err := exec.CommandContext(ctx, "ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func av1OBUType(obu []byte) av1.OBUType { return av1.OBUType((obu[0] >> 3) & 0x0f) }

// ffmpegCan reports whether this ffmpeg writes the AV1 test file's video
// as format (copying it, so no encoder is involved), and what it said.
func ffmpegCan(src *av1Source, format, out string) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-v", "error", "-nostdin", "-i", src.mp4, "-an", "-c:v", "copy",
		"-t", "0.2", "-f", format, "-y", out).CombinedOutput()
	ver, _ := exec.Command("ffmpeg", "-version").Output()
	first, _, _ := strings.Cut(string(ver), "\n")
	return err == nil, first + ": " + strings.TrimSpace(string(b))
}

// sendAV1OverRTMP publishes src as name with Berth's RTMP client, in real
// time and looping, until the test ends: onMetaData, the sequence start
// with the file's av1C, then one av01 CodedFrames tag per temporal unit.
// Keyframes go without their sequence header, which the sequence start
// carries (enhanced RTMP allows it): Berth must put it back for readers.
func sendAV1OverRTMP(t *testing.T, addr, name string, src *av1Source) {
	t.Helper()
	av01 := []byte("av01")
	tags := make([][]byte, len(src.tus))
	for i, tu := range src.tus {
		key := av1.IsRandomAccess2(tu)
		body := append([]byte{0x80 | 2<<4 | 1}, av01...)
		if key {
			body[0] = 0x80 | 1<<4 | 1
		}
		for _, o := range tu {
			if av1OBUType(o) != av1.OBUTypeSequenceHeader {
				body = append(body, o...)
			}
		}
		tags[i] = body
	}
	c := connected(t, addr)
	if code, err := c.Publish(name); err != nil || code != "NetStream.Publish.Start" {
		t.Fatalf("publish: %q, %v", code, err)
	}
	c.Conn().SetDeadline(time.Time{})
	meta := amf0.Encode("@setDataFrame", "onMetaData", amf0.ECMAArray{
		{Key: "videocodecid", Value: float64(binary.BigEndian.Uint32(av01))},
		{Key: "width", Value: 320.0}, {Key: "height", Value: 240.0}, {Key: "framerate", Value: 25.0}})
	if err := c.SendMedia(msgDataAMF0, 0, meta); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMedia(msgVideo, 0, append(append([]byte{0x80 | 1<<4 | 0}, av01...), src.av1C...)); err != nil {
		t.Fatal(err)
	}
	sendEvery40ms(t, "AV1", func(i int) error { return c.SendMedia(msgVideo, uint32(i*40), tags[i%len(tags)]) })
}

// sendEvery40ms calls send(i) every 40 ms (one frame at 25 fps), i = 0, 1,
// ..., until the test ends; what names the media in an error.
func sendEvery40ms(t *testing.T, what string, send func(i int) error) {
	ctx, cancel := context.WithCancel(context.Background())
	sent := make(chan error, 1)
	t.Cleanup(func() {
		cancel()
		if err := <-sent; err != nil {
			t.Errorf("sending %s: %v", what, err)
		}
	})
	go func() {
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			if err := send(i); err != nil {
				sent <- err
				return
			}
			select {
			case <-ctx.Done():
				sent <- nil
				return
			case <-tick.C:
			}
		}
	}()
}

// av1RTPPackets packetizes one temporal unit with rtpav1, checking the
// packets with rtpav1's decoder: gortsplib v5.6.4's encoder merges two
// OBUs when one ends 0 to 2 bytes before a packet's end, so a unit that
// does not come back whole is packed again with a smaller payload size.
func av1RTPPackets(tu [][]byte, ssrc uint32, seq uint16, ts uint32) ([]*rtp.Packet, error) {
	for size := 1400; size > 1380; size -= 3 {
		e := rtpav1.Encoder{PayloadType: 96, SSRC: &ssrc, InitialSequenceNumber: &seq, PayloadMaxSize: size}
		if err := e.Init(); err != nil {
			return nil, err
		}
		pkts, err := e.Encode(tu)
		if err != nil {
			return nil, err
		}
		var d rtpav1.Decoder
		d.Init()
		var got [][]byte
		for _, p := range pkts {
			got, err = d.Decode(p)
			p.Timestamp = ts
		}
		if err == nil && len(got) == len(tu) {
			return pkts, nil
		}
	}
	return nil, errors.New("rtpav1 could not packetize a temporal unit")
}

// sendAV1OverRTSP publishes src as path with Berth's RTSP client (TCP), in
// real time and looping, as an RTSP encoder would: an SDP with AV1/90000,
// OBUs without obu_size, sequence headers in-band in the keyframes.
func sendAV1OverRTSP(t *testing.T, addr, path string, src *av1Source) {
	t.Helper()
	var tus [][][]byte
	for _, tu := range src.tus {
		var bs av1.Bitstream // drops obu_size (RTP AV1 section 4.4)
		for _, o := range tu {
			if err := bs.Unmarshal(o); err != nil {
				t.Fatal(err)
			}
		}
		tus = append(tus, bs)
	}
	pub, err := rtspclient.Dial(context.Background(), "rtsp://"+addr+"/"+path, rtspclient.Options{Transport: rtspclient.TCP, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	sdp := "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=AV1 test\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=video 0 RTP/AVP 96\r\na=rtpmap:96 AV1/90000\r\na=control:trackID=0\r\n"
	desc, err := pub.Announce([]byte(sdp))
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.SetupAll(desc); err != nil {
		t.Fatal(err)
	}
	if err := pub.Record(); err != nil {
		t.Fatal(err)
	}
	seq := uint16(1000)
	sendEvery40ms(t, "AV1", func(i int) error {
		pkts, err := av1RTPPackets(tus[i%len(tus)], 0x1234, seq, uint32(i*3600))
		if err != nil {
			return err
		}
		for _, p := range pkts {
			b, err := p.Marshal()
			if err != nil {
				return err
			}
			if err := pub.WritePacket(0, b); err != nil {
				return err
			}
			seq++
		}
		return nil
	})
}

// av1Reading is what an AV1 reader received, and whether it began the
// way a decoder needs: onMetaData, then the sequence start, then a
// keyframe that carries the sequence header.
type av1Reading struct {
	width, height int      // from onMetaData
	seq           []byte   // from the sequence start's av1C
	tus           [][]byte // temporal units: OBUs, each with obu_size
	firstKey      bool     // the first frame is a keyframe with a sequence header
	ts            []uint32
}

// readAV1Tags reads tags from next until n frames came, checking their order.
func readAV1Tags(t *testing.T, n int, next func() (typ byte, ts uint32, body []byte, err error)) *av1Reading {
	t.Helper()
	r := &av1Reading{}
	var sawMeta, sawStart bool
	for len(r.tus) < n {
		typ, ts, body, err := next()
		if err != nil {
			t.Fatalf("after %d frames: %v", len(r.tus), err)
		}
		switch typ {
		case flv.TagScript:
			vals, _ := amf0.Decode(body)
			if len(vals) == 2 && vals[0] == "onMetaData" {
				sawMeta = true
				if o, ok := vals[1].(amf0.Object); ok {
					w, _ := o.Number("width")
					h, _ := o.Number("height")
					id, _ := o.Number("videocodecid")
					r.width, r.height = int(w), int(h)
					if uint32(id) != binary.BigEndian.Uint32([]byte("av01")) {
						t.Errorf("onMetaData videocodecid = %v, want the FourCC av01", id)
					}
				}
			}
		case flv.TagVideo:
			p, err := flv.ParseVideo(body)
			if err != nil || p.Codec != flv.VideoAV1 {
				t.Fatalf("video tag %x...: %+v, %v; want AV1", body[:min(len(body), 8)], p, err)
			}
			switch p.Type {
			case flv.PacketConfig:
				if !sawMeta || len(r.tus) > 0 {
					t.Error("the sequence start does not come after onMetaData and before the frames")
				}
				sawStart = true
				if r.seq, err = flv.ParseAV1Config(p.Data); err != nil || r.seq == nil {
					t.Fatalf("sequence start's av1C: % x, %v", p.Data, err)
				}
			case flv.PacketFrame:
				if !sawStart {
					t.Fatal("a frame came before the sequence start")
				}
				if len(r.tus) == 0 {
					obus, err := flv.SplitOBUs(bytes.Clone(p.Data), nil)
					r.firstKey = err == nil && p.Key && av1.IsRandomAccess2(obus)
				}
				r.tus = append(r.tus, p.Data)
				r.ts = append(r.ts, ts)
			}
		}
	}
	return r
}

// check asserts the start, the size and the timestamps, and decodes the
// temporal units with ffmpeg from an AV1 file.
func (r *av1Reading) check(t *testing.T) {
	t.Helper()
	if !r.firstKey {
		t.Error("the first frame is not a keyframe with a sequence header")
	}
	if r.width != 320 || r.height != 240 {
		t.Errorf("onMetaData says %dx%d, want 320x240", r.width, r.height)
	}
	var h av1.SequenceHeader
	if err := h.Unmarshal(r.seq); err != nil || h.Width() != 320 || h.Height() != 240 {
		t.Errorf("sequence start's sequence header: %dx%d, %v; want 320x240", h.Width(), h.Height(), err)
	}
	for i := 1; i < len(r.ts); i++ {
		if d := r.ts[i] - r.ts[i-1]; r.ts[i] < r.ts[i-1] || d < 20 || d > 60 {
			t.Errorf("frame %d at %d ms after %d ms; want about 40 ms later", i, r.ts[i], r.ts[i-1])
			break
		}
	}
	decodeAV1(t, r.tus)
}

// decodeAV1 writes temporal units (OBUs with obu_size, as FLV carries
// them) as a low-overhead AV1 file and has ffmpeg probe and decode it.
func decodeAV1(t *testing.T, tus [][]byte) {
	t.Helper()
	var b []byte
	for _, tu := range tus {
		b = append(append(b, 0x12, 0x00), tu...) // a temporal delimiter, then the unit
	}
	p := filepath.Join(t.TempDir(), "read.obu")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	checkOneVideo(t, "what the reader got", "av1", 320, 240, "-f", "obu", p)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-f", "obu", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", p).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != fmt.Sprint(len(tus)) {
		t.Errorf("ffprobe decoded %q frames of the %d temporal units the reader got (err %v)", bytes.TrimSpace(out), len(tus), err)
	}
	if out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-v", "error", "-f", "obu", "-i", p, "-f", "null", "-").CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("ffmpeg decoding what the reader got: err=%v output:\n%s", err, out)
	}
}

// readAV1OverRTMP plays name with Berth's RTMP client.
func readAV1OverRTMP(t *testing.T, addr, name string, n int) *av1Reading {
	t.Helper()
	c := connected(t, addr)
	if code, err := c.Play(name); err != nil || code != "NetStream.Play.Start" {
		t.Fatalf("rtmp play %s: %q, %v", name, code, err)
	}
	c.Conn().SetDeadline(time.Now().Add(30 * time.Second))
	return readAV1Tags(t, n, func() (byte, uint32, []byte, error) {
		for {
			m, err := c.ReadMessage()
			if err != nil {
				return 0, 0, nil, err
			}
			switch m.Type {
			case msgVideo, msgAudio:
				return m.Type, m.Timestamp, m.Body, nil
			case msgDataAMF0:
				return flv.TagScript, m.Timestamp, m.Body, nil
			}
		}
	})
}

// readAV1OverFLV reads url as HTTP-FLV with Berth's FLV reader.
func readAV1OverFLV(t *testing.T, url string, n int) *av1Reading {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	r, err := flv.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Video || r.Audio {
		t.Errorf("FLV header says video %v, audio %v; want video only", r.Video, r.Audio)
	}
	return readAV1Tags(t, n, func() (byte, uint32, []byte, error) {
		tag, err := r.ReadTag()
		return tag.Type, tag.TS, tag.Body, err
	})
}

// readAV1OverRTSP plays url with Berth's RTSP client until n temporal
// units came, and returns the SDP and the units (OBUs with obu_size).
func readAV1OverRTSP(t *testing.T, url string, n int) (sdp string, tus [][]byte, firstKey bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := rtspclient.Dial(ctx, url, rtspclient.Options{Transport: rtspclient.TCP, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	desc, raw, err := c.Describe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetupAll(desc); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var dec rtpav1.Decoder
	dec.Init()
	var decodeErr error
	done := make(chan struct{})
	c.OnPacket = func(_ int, b []byte) {
		mu.Lock()
		defer mu.Unlock()
		var pkt rtp.Packet
		if len(tus) >= n || decodeErr != nil || pkt.Unmarshal(bytes.Clone(b)) != nil {
			return
		}
		tu, err := dec.Decode(&pkt)
		if errors.Is(err, rtpav1.ErrMorePacketsNeeded) {
			return
		}
		if err != nil {
			decodeErr = fmt.Errorf("temporal unit %d: %w", len(tus), err)
			close(done)
			return
		}
		if len(tus) == 0 {
			firstKey = av1.IsRandomAccess2(tu)
		}
		sized, err := av1.Bitstream(tu).Marshal()
		if err != nil {
			decodeErr = err
			close(done)
			return
		}
		if tus = append(tus, sized); len(tus) == n {
			close(done)
		}
	}
	if _, err := c.Play(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-c.Done():
		t.Fatalf("RTSP reader ended: %v", c.Err())
	case <-ctx.Done():
		t.Fatal("RTSP reader got too few temporal units in 30 s")
	}
	mu.Lock()
	defer mu.Unlock()
	if decodeErr != nil {
		t.Fatal(decodeErr)
	}
	return string(raw), tus, firstKey
}

// TestEnhancedRTMPAV1IsReadable: AV1 published over enhanced RTMP (FourCC
// av01 tags from Berth's client; keyframes without the sequence header,
// which only the sequence start carries) is read over RTSP as AV1/90000
// and over RTMP and HTTP-FLV as av01 tags that start with the sequence
// start and a keyframe; what every reader gets decodes with ffmpeg.
func TestEnhancedRTMPAV1IsReadable(t *testing.T) {
	src := makeAV1Source(t)
	cs := startCross(t)
	sendAV1OverRTMP(t, cs.rtmp, "av1", src)
	waitFor(t, "live/av1 to be published", 10*time.Second, func() bool { return cs.hub.Get("live/av1") != nil })
	if line := cs.logs.WaitLine(t, "rtmp stream live", "path=live/av1"); !strings.Contains(line, "AV1") {
		t.Errorf("stream live line %q does not name AV1", line)
	}
	rtspURL := "rtsp://" + cs.rtsp + "/live/av1"

	t.Run("rtsp ffprobe", func(t *testing.T) {
		// ffmpeg's AV1 RTP packetizer and depacketizer came together.
		if ok, why := ffmpegCan(src, "rtp", "rtp://127.0.0.1:9"); !ok {
			t.Skipf("this ffprobe cannot read AV1 over RTP (%s); the rtsp case reads it with Berth's client", why)
		}
		checkOneVideo(t, "RTSP", "av1", 320, 240, "-rtsp_transport", "tcp", rtspURL)
		ffmpegDecodeWith(t, []string{"-rtsp_transport", "tcp"}, rtspURL)
	})
	t.Run("rtsp", func(t *testing.T) {
		sdp, tus, key := readAV1OverRTSP(t, rtspURL, 50)
		if !strings.Contains(sdp, "a=rtpmap:96 AV1/90000") {
			t.Errorf("SDP lacks AV1/90000:\n%s", sdp)
		}
		if !key {
			t.Error("the first temporal unit over RTSP is not a keyframe with a sequence header")
		}
		decodeAV1(t, tus)
	})
	t.Run("rtmp", func(t *testing.T) { readAV1OverRTMP(t, cs.rtmp, "av1", 50).check(t) })
	t.Run("http-flv", func(t *testing.T) {
		url := cs.web + "/live/av1.live.flv"
		readAV1OverFLV(t, url, 50).check(t)
	})
	t.Run("http-flv ffprobe", func(t *testing.T) {
		// ffmpeg's FLV muxer and demuxer learnt enhanced FLV together (6.1).
		if ok, why := ffmpegCan(src, "flv", os.DevNull); !ok {
			t.Skipf("this ffprobe cannot read AV1 in FLV (%s); the http-flv case reads it with Berth's reader", why)
		}
		url := cs.web + "/live/av1.live.flv"
		var video []probeStream
		for _, s := range ffprobeStreams(t, url) {
			if s.CodecType == "video" {
				video = append(video, s)
			}
		}
		if len(video) != 1 || video[0].CodecName != "av1" || video[0].Width != 320 || video[0].Height != 240 {
			t.Errorf("video streams over HTTP-FLV = %+v, want one av1 320x240", video)
		}
		ffmpegDecode(t, url)
	})
}

// TestRTSPPushAV1IsReadableOverRTMPAndFLV: AV1 pushed over RTSP (by
// ffmpeg where it can packetize AV1, always by Berth's RTSP client) is
// read over RTMP and HTTP-FLV as enhanced-RTMP av01 tags starting with the
// sequence start and a keyframe, and over RTSP from a keyframe; what every
// reader gets decodes with ffmpeg.
func TestRTSPPushAV1IsReadableOverRTMPAndFLV(t *testing.T) {
	src := makeAV1Source(t)
	cs := startCross(t)
	readAll := func(t *testing.T, name string) {
		path := "live/" + name
		t.Run("rtmp", func(t *testing.T) { readAV1OverRTMP(t, cs.rtmp, name, 50).check(t) })
		t.Run("http-flv", func(t *testing.T) { readAV1OverFLV(t, cs.web+"/"+path+".live.flv", 50).check(t) })
		t.Run("rtsp", func(t *testing.T) {
			_, tus, key := readAV1OverRTSP(t, "rtsp://"+cs.rtsp+"/"+path, 50)
			if !key {
				t.Error("the first temporal unit over RTSP is not a keyframe with a sequence header")
			}
			decodeAV1(t, tus)
		})
	}

	t.Run("ffmpeg", func(t *testing.T) {
		if ok, why := ffmpegCan(src, "rtp", "rtp://127.0.0.1:9"); !ok {
			t.Skipf("this ffmpeg cannot packetize AV1 for RTP/RTSP (%s)", why)
		}
		startFFmpeg(t, "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1", "-i", src.mp4, "-c", "copy",
			"-f", "rtsp", "-rtsp_transport", "tcp", "rtsp://"+cs.rtsp+"/live/av1ff")
		waitFor(t, "live/av1ff to be published over RTSP", 10*time.Second, func() bool { return cs.hub.Get("live/av1ff") != nil })
		readAll(t, "av1ff")
	})
	t.Run("berth client", func(t *testing.T) {
		sendAV1OverRTSP(t, cs.rtsp, "live/av1r", src)
		waitFor(t, "live/av1r to be published over RTSP", 10*time.Second, func() bool { return cs.hub.Get("live/av1r") != nil })
		readAll(t, "av1r")
	})
}
