package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

var statCases = []struct {
	name         string
	stat         string
	utime, stime int64
	ok           bool
}{
	{"plain", "1234 (berth) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 9 0 100 1000 200", 250, 75, true},
	{"name with spaces and parens", "77 (my (odd) name) R 1 77 77 0 -1 0 0 0 0 0 3 4 0 0", 3, 4, true},
	{"truncated", "77 (x) R 1 2 3", 0, 0, false},
	{"no name", "garbage", 0, 0, false},
	{"not a number", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 aa 4 0 0", 0, 0, false},
}

func TestParseStatTimes(t *testing.T) {
	for _, tc := range statCases {
		t.Run(tc.name, func(t *testing.T) {
			u, s, err := parseStatTimes([]byte(tc.stat))
			if (err == nil) != tc.ok || u != tc.utime || s != tc.stime {
				t.Fatalf("parseStatTimes = %d, %d, %v; want %d, %d, ok=%v", u, s, err, tc.utime, tc.stime, tc.ok)
			}
		})
	}
}

func FuzzParseStatTimes(f *testing.F) {
	for _, tc := range statCases {
		f.Add([]byte(tc.stat))
	}
	f.Fuzz(func(t *testing.T, b []byte) { parseStatTimes(b) })
}

func TestParseVmRSS(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"Name:\tberth\nVmPeak:\t 9 kB\nVmRSS:\t   12345 kB\nThreads: 4\n", 12345, true},
		{"Name:\tx\n", 0, false},
		{"VmRSS:\n", 0, false},
	} {
		got, err := parseVmRSS([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseVmRSS(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	status := "VmRSS:\t   12345 kB\nRssAnon:\t    8000 kB\nRssFile:\t    4345 kB\n"
	if got, err := parseStatusKiB([]byte(status), "RssAnon:"); err != nil || got != 8000 {
		t.Errorf("RssAnon of %q = %d, %v; want 8000", status, got, err)
	}
	if _, err := parseStatusKiB([]byte("VmRSS:\t 1 kB\n"), "RssAnon:"); err == nil {
		t.Error("RssAnon of a status without it: no error")
	}
}

func TestReadProcOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this OS")
	}
	s, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSSKiB <= 0 || s.CPU < 0 {
		t.Fatalf("sample %+v", s)
	}
	if _, err := ReadProc(1 << 30); err == nil {
		t.Fatal("a process that does not exist gave no error")
	}
}

func TestSeqTrack(t *testing.T) {
	for _, tc := range []struct {
		name            string
		seqs            []uint16
		lost, reordered uint64
	}{
		{"in order", []uint16{1, 2, 3, 4}, 0, 0},
		{"wraps", []uint16{65534, 65535, 0, 1}, 0, 0},
		{"gap of two", []uint16{10, 11, 14}, 2, 0},
		{"gap across the wrap", []uint16{65535, 2}, 2, 0},
		{"late packet", []uint16{1, 3, 2, 4}, 1, 1},
		{"duplicate", []uint16{1, 2, 2, 3}, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var st readerStats
			var s seqTrack
			for _, q := range tc.seqs {
				s.check(q, &st)
			}
			if st.lost.Load() != tc.lost || st.reordered.Load() != tc.reordered {
				t.Fatalf("lost %d, reordered %d; want %d, %d", st.lost.Load(), st.reordered.Load(), tc.lost, tc.reordered)
			}
		})
	}
}

func TestPercentiles(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	p := percentiles(d)
	if p.Count != 100 || p.P50 != 50 || p.P90 != 90 || p.P99 != 99 || p.Max != 100 {
		t.Fatalf("percentiles of 1..100 ms = %+v", p)
	}
	if p := percentiles(nil); p.Count != 0 || p.String() != "none" {
		t.Fatalf("percentiles of nothing = %+v", p)
	}
	if p := percentiles([]time.Duration{7 * time.Millisecond}); p.P50 != 7 || p.P99 != 7 {
		t.Fatalf("percentiles of one = %+v", p)
	}
}

// flvVideoCases are video tag data starts; they also seed FuzzFLVReader.
var flvVideoCases = []struct {
	name       string
	data       []byte
	frame, key bool
}{
	{"AVC keyframe NALU", []byte{0x17, 1, 0, 0, 0}, true, true},
	{"AVC inter NALU", []byte{0x27, 1, 0, 0, 0}, true, false},
	{"AVC sequence header", []byte{0x17, 0, 0, 0, 0}, false, false},
	{"AVC end of sequence", []byte{0x17, 2, 0, 0, 0}, false, false},
	{"HEVC (codec 12) keyframe", []byte{0x1c, 1, 0, 0, 0}, true, true},
	{"enhanced HEVC keyframe CodedFramesX", []byte{0x93, 'h', 'v', 'c', '1'}, true, true},
	{"enhanced sequence start", []byte{0x90, 'h', 'v', 'c', '1'}, false, false},
	{"enhanced inter CodedFrames", []byte{0xa1, 'a', 'v', '0', '1'}, true, false},
	{"command frame", []byte{0x57, 0}, false, false},
	{"VP6 keyframe", []byte{0x14, 0}, true, true},
	{"empty", nil, false, false},
	{"AVC without packet type", []byte{0x17}, false, false},
}

func TestFLVVideoKind(t *testing.T) {
	for _, tc := range flvVideoCases {
		t.Run(tc.name, func(t *testing.T) {
			frame, key := flvVideoKind(tc.data)
			if frame != tc.frame || key != tc.key {
				t.Fatalf("flvVideoKind(% x) = %v, %v; want %v, %v", tc.data, frame, key, tc.frame, tc.key)
			}
		})
	}
}

// flvStream builds an FLV body with the given tags.
func flvStream(tags ...[]byte) []byte {
	b := []byte{'F', 'L', 'V', 1, 5, 0, 0, 0, 9}
	prev := 0
	for _, tg := range tags {
		b = binary.BigEndian.AppendUint32(b, uint32(prev))
		b = append(b, tg...)
		prev = len(tg)
	}
	return binary.BigEndian.AppendUint32(b, uint32(prev))
}

func flvTag(typ uint8, ts uint32, data []byte) []byte {
	n := len(data)
	h := []byte{typ, byte(n >> 16), byte(n >> 8), byte(n), byte(ts >> 16), byte(ts >> 8), byte(ts), byte(ts >> 24), 0, 0, 0}
	return append(h, data...)
}

func TestFLVReader(t *testing.T) {
	body := flvStream(
		flvTag(flvTagScript, 0, []byte("onMetaData....")),
		flvTag(flvTagVideo, 0, []byte{0x17, 0, 0, 0, 0, 1, 2, 3}),
		flvTag(flvTagVideo, 0, append([]byte{0x17, 1, 0, 0, 0}, make([]byte, 5000)...)),
		flvTag(flvTagAudio, 23, []byte{0xaf, 1, 9, 9}),
		flvTag(flvTagVideo, 0x1000040, []byte{0x27, 1, 0, 0, 0, 7}),
	)
	r := &flvReader{br: bufio.NewReaderSize(bytes.NewReader(body), 64)}
	type got struct {
		typ        uint8
		ts         uint32
		frame, key bool
		wire       int
	}
	var tags []got
	wire := 9
	for {
		h, head, w, err := r.next()
		if err != nil {
			break
		}
		g := got{typ: h.Type, ts: h.Timestamp, wire: w}
		if h.Type == flvTagVideo {
			g.frame, g.key = flvVideoKind(head)
		}
		tags = append(tags, g)
		wire += w
		if err := r.skip(h); err != nil {
			t.Fatal(err)
		}
	}
	want := []got{
		{flvTagScript, 0, false, false, 15 + 14},
		{flvTagVideo, 0, false, false, 15 + 8},
		{flvTagVideo, 0, true, true, 15 + 5005},
		{flvTagAudio, 23, false, false, 15 + 4},
		{flvTagVideo, 0x1000040, true, false, 15 + 6},
	}
	if len(tags) != len(want) {
		t.Fatalf("read %+v; want %+v", tags, want)
	}
	for i := range want {
		if tags[i] != want[i] {
			t.Fatalf("tag %d = %+v; want %+v", i, tags[i], want[i])
		}
	}
	if wire+4 != len(body) { // the last previous-tag-size is not part of a tag
		t.Fatalf("wire bytes %d + 4; body %d", wire, len(body))
	}
	if _, _, _, err := (&flvReader{br: bufio.NewReader(bytes.NewReader([]byte("<html>....")))}).next(); err != errNotFLV {
		t.Fatalf("HTML body: %v; want errNotFLV", err)
	}
}

func FuzzFLVReader(f *testing.F) {
	for _, tc := range flvVideoCases {
		f.Add(flvStream(flvTag(flvTagVideo, 0, tc.data)))
	}
	f.Add([]byte("FLV\x01\x05\x00\x00\x00\x09"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := &flvReader{br: bufio.NewReaderSize(bytes.NewReader(body), 32)}
		for i := 0; i <= len(body); i++ {
			h, head, _, err := r.next()
			if err != nil {
				return
			}
			flvVideoKind(head)
			if r.skip(h) != nil {
				return
			}
		}
		t.Fatal("no error at the end of the input")
	})
}

// TestSynthStream checks the synthetic stream: valid RTP with continuous
// sequence numbers, a keyframe (by Berth's own detector) once per GOP,
// stamps that read back, and the configured byte rate.
func TestSynthStream(t *testing.T) {
	const rate = 2e6
	s := newSynth(rate, 7)
	det := codec.KeyDetector{Codec: codec.H264}
	var keys, stamped, bytes int
	var next uint16
	for f := 0; f < synthGOP*2; f++ {
		err := s.nextFrame(func(pkt []byte) error {
			stamp(pkt)
			h, ok := codec.ParseRTP(pkt)
			if !ok {
				t.Fatalf("packet % x is not RTP", pkt[:12])
			}
			if h.Seq != next {
				t.Fatalf("seq %d; want %d", h.Seq, next)
			}
			next++
			if det.Key(h) {
				keys++
			}
			if _, ok := stampDelay(pkt[stampOffset:], time.Since(stampEpoch)); ok {
				stamped++
			}
			if len(pkt) > rtpHeaderLen+2+synthMaxFrag {
				t.Fatalf("packet of %d bytes", len(pkt))
			}
			bytes += len(pkt)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if keys != 2 {
		t.Fatalf("%d keyframes in two GOPs; want 2", keys)
	}
	if stamped == 0 {
		t.Fatal("no stamped fragments")
	}
	perSec := float64(bytes) * 8 / 2 // two seconds of frames
	if perSec < rate*0.95 || perSec > rate*1.15 {
		t.Fatalf("%.0f bit/s; want about %.0f", perSec, rate)
	}
}

func TestPushURLs(t *testing.T) {
	if got := PushURLs("rtsp://h/live/s", 1); len(got) != 1 || got[0] != "rtsp://h/live/s" {
		t.Fatal(got)
	}
	got := PushURLs("rtmp://h/live/s?token=1", 3)
	if len(got) != 3 || got[2] != "rtmp://h/live/s_2?token=1" {
		t.Fatal(got)
	}
}

func TestFloorWritesTheRate(t *testing.T) {
	r, err := Floor(context.Background(), FloorConfig{N: 5, BytesPerSec: 250_000, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	want := 5 * 250_000 * r.Seconds
	if float64(r.Bytes) < want*0.9 || float64(r.Bytes) > want*1.1 {
		t.Fatalf("floor wrote %d bytes in %.2f s; want about %.0f", r.Bytes, r.Seconds, want)
	}
	if r.Writes == 0 || r.CPUSecondsPerGB <= 0 {
		t.Fatalf("floor result %+v", r)
	}
}

// TestSynthParameterSetsParse: the built SPS/PPS read back with
// mediacommon's parser as 320x240 with picture order type 2.
func TestSynthParameterSetsParse(t *testing.T) {
	var sps h264.SPS
	if err := sps.Unmarshal(synthSPS); err != nil {
		t.Fatalf("SPS % x: %v", synthSPS, err)
	}
	if sps.Width() != 320 || sps.Height() != 240 || sps.PicOrderCntType != 2 {
		t.Fatalf("SPS %dx%d poc type %d; want 320x240, 2", sps.Width(), sps.Height(), sps.PicOrderCntType)
	}
	if synthPPS[0]&0x1f != 8 || len(synthPPS) < 2 {
		t.Fatalf("PPS % x", synthPPS)
	}
}

// TestStampNeverFormsAStartCode: a send time written into a slice must not
// read as an Annex-B start code (00 00 01) at any time of the process, or a
// server that splits NAL units on start codes sees a bogus SPS or IDR (it
// did, 4.3-8.6 s into a test process, when stamps were plain big-endian).
func TestStampNeverFormsAStartCode(t *testing.T) {
	for _, d := range []time.Duration{0, 1, 1 << 32, 1<<32 + 7<<24, 1<<33 - 1, time.Hour, 1<<63 - 1} {
		b := make([]byte, stampLen)
		copy(b, stampMagic[:])
		putStampTime(b[len(stampMagic):], d)
		if i := bytes.Index(b, []byte{0, 0}); i >= 0 {
			t.Fatalf("stamp of %d ns is % x: two zero bytes at %d", d, b, i)
		}
		got, ok := stampDelay(b, d)
		if !ok || got != 0 {
			t.Fatalf("stamp of %d ns read back as a delay of %v (ok %v); want 0", d, got, ok)
		}
	}
}
