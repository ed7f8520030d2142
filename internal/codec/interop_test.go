package codec

import (
	"bytes"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/sdp"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	psdp "github.com/pion/sdp/v3"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/testmedia"
)

type received struct {
	track int
	pkt   []byte
	at    time.Time
}

// videoSpec says how to make, split and recognise a video codec's test stream.
type videoSpec struct {
	name   string
	encode []string
	bsf    string // to Annex-B with access unit delimiters
	format string
	typ    func([]byte) int
	aud    int
	params []int // parameter set NALU types, in order
	sei    []int
	key    string // KeyDetector codec
}

var videoSpecs = []videoSpec{
	{
		name: "H264", encode: []string{"-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-bf", "3"},
		bsf: "h264_mp4toannexb,h264_metadata=aud=insert", format: "h264",
		typ: func(n []byte) int { return int(n[0] & 0x1f) }, aud: 9, params: []int{7, 8}, sei: []int{6}, key: H264,
	},
	{
		name: "H265", encode: []string{"-c:v", "libx265", "-preset", "veryfast", "-x265-params", "keyint=25:min-keyint=25:bframes=3:log-level=error"},
		bsf: "hevc_mp4toannexb,hevc_metadata=aud=insert", format: "hevc",
		typ: func(n []byte) int { return int(n[0]>>1) & 0x3f }, aud: 35, params: []int{32, 33, 34}, sei: []int{39, 40}, key: H265,
	},
}

// withoutTypes returns au without the NAL units of the given types.
func withoutTypes(au [][]byte, typ func([]byte) int, types []int) [][]byte {
	var out [][]byte
	for _, n := range au {
		if !slices.Contains(types, typ(n)) {
			out = append(out, n)
		}
	}
	return out
}

// TestFFmpegRTPBecomesAlignedAccessUnits has ffmpeg send video with
// B-frames (H.264, H.265) and AAC over RTP in real time (-re), as an RTSP
// publisher's packets would arrive, and checks the access units read from
// the hub: the source's bytes, its timestamps, and audio aligned with
// video, for a reader that joins mid-stream (the converter starts at the
// newest keyframe) and for one there from the first packet.
func TestFFmpegRTPBecomesAlignedAccessUnits(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	for _, vs := range videoSpecs {
		t.Run(vs.name, func(t *testing.T) { testFFmpegRTP(t, vs) })
	}
}

func testFFmpegRTP(t *testing.T, vs videoSpec) {
	dir := t.TempDir()
	src := filepath.Join(dir, "av.mp4")
	ffmpeg(t, append(append([]string{"-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=2", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2"},
		vs.encode...), "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", src)...)
	ffmpeg(t, "-i", src, "-c:v", "copy", "-bsf:v", vs.bsf, "-f", vs.format, filepath.Join(dir, "v.es"))
	ffmpeg(t, "-i", src, "-c:a", "copy", "-f", "adts", filepath.Join(dir, "a.aac"))
	mv := splitVideo(t, src, filepath.Join(dir, "v.es"), vs.typ, vs.aud, vs.params)
	if !reordered(mv) {
		t.Fatalf("%s test stream has no B-frames", vs.name)
	}
	var adts mpeg4audio.ADTSPackets
	if err := adts.Unmarshal(readFile(t, filepath.Join(dir, "a.aac"))); err != nil {
		t.Fatal(err)
	}
	// Where audio starts against video in the source: the first packets'
	// PTS (the AAC priming frame sits before 0; the video starts at 0).
	firstPTS := func(stream string) time.Duration {
		out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", stream, "-read_intervals", "%+#1",
			"-show_entries", "packet=pts_time", "-of", "csv=p=0", src).Output()
		if err != nil {
			t.Fatal(err)
		}
		return parseSec(t, string(bytes.TrimRight(bytes.TrimSpace(out), ",")))
	}
	srcAVOffset := firstPTS("a:0") - firstPTS("v:0") // audio start - video start
	t.Logf("source: audio starts %v after video", srcAVOffset)

	var mu sync.Mutex
	var pkts []received
	var wg sync.WaitGroup
	conns := make([]*net.UDPConn, 2)
	for i := range conns {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
		wg.Add(1)
		go func(track int, c *net.UDPConn) {
			defer wg.Done()
			buf := make([]byte, 2048)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				at := time.Now()
				if n >= 2 && buf[1] >= 192 && buf[1] <= 223 {
					continue // RTCP that ffmpeg sends to port+1 (RFC 5761 section 4)
				}
				mu.Lock()
				pkts = append(pkts, received{track, bytes.Clone(buf[:n]), at})
				mu.Unlock()
			}
		}(i, c)
	}
	sdpFile := filepath.Join(dir, "out.sdp")
	port := func(c *net.UDPConn) string { return c.LocalAddr().String() }
	ffmpeg(t, "-re", "-i", src, "-map", "0:v", "-c", "copy", "-f", "rtp", "rtp://"+port(conns[0]),
		"-map", "0:a", "-c", "copy", "-f", "rtp", "rtp://"+port(conns[1]), "-sdp_file", sdpFile)
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond)) // drain what is queued
	}
	wg.Wait()

	var sd sdp.SessionDescription
	if err := sd.Unmarshal(readFile(t, sdpFile)); err != nil {
		t.Fatal(err)
	}
	var desc description.Session
	if err := desc.Unmarshal2((*psdp.SessionDescription)(&sd)); err != nil {
		t.Fatal(err)
	}
	tracks := make([]*hub.Track, len(desc.Medias))
	for i, m := range desc.Medias {
		tracks[i] = &hub.Track{Format: m.Formats[0], Media: m, Video: m.Type == description.MediaTypeVideo}
	}

	sort.SliceStable(pkts, func(i, j int) bool { return pkts[i].at.Before(pkts[j].at) })
	for _, tc := range []struct {
		name    string
		midway  bool
		maxSkew time.Duration
	}{
		// Mid-stream, packets arrive at their decoding time (-re paces by
		// DTS), which is what the converter assumes.
		{"reader joins mid-stream", true, 20 * time.Millisecond},
		// At the start -re sends the frames with negative DTS at once; the
		// median over the first 500 ms sees through the burst.
		{"reader from the first packet", false, 40 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkFFmpegRTP(t, vs, tracks, readFile(t, sdpFile), pkts, mv, adts, srcAVOffset, tc.midway, tc.maxSkew)
		})
	}
}

func checkFFmpegRTP(t *testing.T, vs videoSpec, tracks []*hub.Track, sdpBody []byte, pkts []received, mv *media,
	adts mpeg4audio.ADTSPackets, srcAVOffset time.Duration, midway bool, maxSkew time.Duration) {
	h := hub.New(hub.Options{Converters: Converters(testLog(t)), Log: testLog(t)})
	defer h.Close()
	pub, err := h.Publish("live/ffmpeg", hub.Origin{Proto: "rtsp"}, hub.KindRTP, tracks, sdpBody)
	if err != nil {
		t.Fatal(err)
	}
	subscribe := func() *hub.Reader {
		r, err := h.Subscribe("live/ffmpeg", hub.KindAU, hub.Origin{Proto: "rtmp"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Close)
		return r
	}
	var r *hub.Reader
	if !midway {
		r = subscribe()
	}
	// Replay the packets as if they arrived just after the publish, with
	// their recorded spacing.
	base := time.Now().Add(50 * time.Millisecond)
	keys := KeyDetector{Codec: vs.key}
	for _, p := range pkts {
		key := false
		if hd, ok := ParseRTP(p.pkt); ok && p.track == 0 {
			key = keys.Key(hd)
		}
		pub.Write(hub.NewRTPFrame(p.track, p.pkt, key, base.Add(p.at.Sub(pkts[0].at))))
	}
	first := 0 // the source AU the reader starts at
	if midway {
		r = subscribe()
		for i, au := range mv.aus {
			if au.key {
				first = i
			}
		}
	}
	var v, a []*hub.Frame
	readUntil(t, r, func(fs []*hub.Frame) bool {
		v, a = v[:0], a[:0]
		for _, f := range fs {
			if f.Track == 0 {
				v = append(v, f)
			} else {
				a = append(a, f)
			}
		}
		return len(v) == len(mv.aus)-first && len(a) >= 10
	})

	for i, f := range v {
		in := mv.aus[first+i]
		// SEI aside: the reader starts at the packet the RTSP publisher
		// marks as a keyframe (the IDR's), so the first AU misses the SEI
		// sent before it, and hevc_mp4toannexb repeats hvcC's SEI at every
		// keyframe of the source, which ffmpeg's RTP sender does not send.
		skip := append(slices.Clone(vs.params), vs.sei...)
		inAU := withoutTypes(in.au, vs.typ, skip)
		if !equalAU(withoutTypes(f.AU, vs.typ, skip), inAU) {
			var got, want []int
			for _, n := range f.AU {
				got = append(got, vs.typ(n), len(n))
			}
			for _, n := range in.au {
				want = append(want, vs.typ(n), len(n))
			}
			t.Fatalf("video AU %d differs from the source: (type, size) %v, source %v", first+i, got, want)
		}
		if f.Key != in.key {
			t.Errorf("video AU %d: Key %v, source %v", first+i, f.Key, in.key)
		}
		if f.Key && !equalAU(f.AU[:min(len(f.AU), len(mv.params))], mv.params) {
			t.Errorf("keyframe AU %d does not start with the parameter sets", first+i)
		}
		if want := v[0].PTS + in.pts - mv.aus[first].pts; absDur(f.PTS-want) > 20*time.Microsecond {
			t.Errorf("video AU %d: PTS %v, want %v", first+i, f.PTS, want)
		}
		if f.DTS > f.PTS || (i > 0 && f.DTS <= v[i-1].DTS) {
			t.Errorf("video AU %d: DTS %v, PTS %v", first+i, f.DTS, f.PTS)
		}
	}
	// Which source AU the first audio AU read is.
	skipped := -1
	for k := range adts {
		if k+1 < len(adts) && bytes.Equal(adts[k].AU, a[0].AU[0]) && bytes.Equal(adts[k+1].AU, a[1].AU[0]) {
			skipped = k
			break
		}
	}
	if skipped < 0 {
		t.Fatal("the first audio AU read is not in the source")
	}
	for i, f := range a[:min(len(a), len(adts)-skipped)] {
		if !bytes.Equal(f.AU[0], adts[skipped+i].AU) {
			t.Fatalf("audio AU %d differs from the source", skipped+i)
		}
	}
	// In source time, video AU i shows at its PTS and audio AU k at
	// srcAVOffset + k frames of 1024 samples.
	srcVideo := mv.aus[first].pts - mv.aus[0].pts
	srcAudio := srcAVOffset + time.Duration(skipped)*1024*time.Second/48000
	want := v[0].PTS - srcVideo + srcAudio
	skew := a[0].PTS - want
	t.Logf("A/V skew with ffmpeg -re as the RTP sender: %v (first audio %v, first video %v)", skew, a[0].PTS, v[0].PTS)
	if absDur(skew) > maxSkew {
		t.Errorf("audio AU %d at %v, want %v: audio and video misaligned by %v", skipped, a[0].PTS, want, skew)
	}
}
