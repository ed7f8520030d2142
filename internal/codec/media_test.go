package codec

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"

	"github.com/berthmedia/berth/internal/testmedia"
)

// mediaAU is one access unit of a real encoded test stream.
type mediaAU struct {
	au       [][]byte
	pts, dts time.Duration
	key      bool
}

// media is a test stream split into access units, with its codec
// parameters (SPS/PPS or VPS/SPS/PPS; AAC config; channels).
type media struct {
	params   [][]byte
	asc      *mpeg4audio.AudioSpecificConfig
	channels int
	aus      []mediaAU
}

var (
	mediaMu    sync.Mutex
	mediaCache = map[string]*media{}
	mediaDir   string
)

func ffmpeg(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
	}
}

// testMedia makes (once per process) a 2 s test stream of codec and splits
// it with mediacommon's parsers: "h264", "h264b" (with B-frames), "h265",
// "h265b", "aac", "opus", "pcma".
func testMedia(t testing.TB, codec string) *media {
	t.Helper()
	testmedia.RequireFFmpeg(t)
	mediaMu.Lock()
	defer mediaMu.Unlock()
	if m := mediaCache[codec]; m != nil {
		return m
	}
	if mediaDir == "" {
		d, err := os.MkdirTemp("", "berth-codec-")
		if err != nil {
			t.Fatal(err)
		}
		mediaDir = d
	}
	p := func(name string) string { return filepath.Join(mediaDir, codec+name) }
	video := []string{"-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=2", "-pix_fmt", "yuv420p"}
	audio := []string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2"}
	var m *media
	switch codec {
	case "h264", "h264b":
		bf := "0"
		if codec == "h264b" {
			bf = "3"
		}
		ffmpeg(t, append(video, "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-bf", bf, p(".mp4"))...)
		ffmpeg(t, "-i", p(".mp4"), "-c:v", "copy", "-bsf:v", "h264_mp4toannexb,h264_metadata=aud=insert", "-f", "h264", p(".h264"))
		m = splitVideo(t, p(".mp4"), p(".h264"), func(n []byte) int { return int(n[0] & 0x1f) }, 9, []int{7, 8})
	case "h265", "h265b":
		bf := "0"
		if codec == "h265b" {
			bf = "3"
		}
		ffmpeg(t, append(video, "-c:v", "libx265", "-preset", "veryfast",
			"-x265-params", "keyint=25:min-keyint=25:bframes="+bf+":log-level=error", p(".mp4"))...)
		ffmpeg(t, "-i", p(".mp4"), "-c:v", "copy", "-bsf:v", "hevc_mp4toannexb,hevc_metadata=aud=insert", "-f", "hevc", p(".h265"))
		m = splitVideo(t, p(".mp4"), p(".h265"), func(n []byte) int { return int(n[0]>>1) & 0x3f }, 35, []int{32, 33, 34})
	case "aac":
		ffmpeg(t, append(audio, "-c:a", "aac", "-b:a", "64k", "-f", "adts", p(".aac"))...)
		var pkts mpeg4audio.ADTSPackets
		if err := pkts.Unmarshal(readFile(t, p(".aac"))); err != nil {
			t.Fatal(err)
		}
		m = &media{asc: &mpeg4audio.AudioSpecificConfig{Type: pkts[0].Type, SampleRate: pkts[0].SampleRate, ChannelConfig: pkts[0].ChannelConfig, ChannelCount: int(pkts[0].ChannelConfig)}}
		for i, pk := range pkts {
			d := time.Duration(i) * 1024 * time.Second / time.Duration(pk.SampleRate)
			m.aus = append(m.aus, mediaAU{au: [][]byte{pk.AU}, pts: d, dts: d})
		}
	case "opus":
		ffmpeg(t, append(audio, "-c:a", "libopus", "-b:a", "64k", "-ac", "2", "-f", "ogg", p(".ogg"))...)
		m = &media{channels: 2}
		var ticks int64
		for i, pk := range oggPackets(t, readFile(t, p(".ogg"))) {
			if i < 2 { // OpusHead, OpusTags (RFC 7845 section 3)
				continue
			}
			d := time.Duration(ticks) * time.Second / 48000
			m.aus = append(m.aus, mediaAU{au: [][]byte{pk}, pts: d, dts: d})
			ticks += opus.PacketDuration2(pk)
		}
	case "pcma":
		ffmpeg(t, append(audio, "-c:a", "pcm_alaw", "-ar", "8000", "-ac", "1", "-f", "alaw", p(".alaw"))...)
		raw := readFile(t, p(".alaw"))
		m = &media{channels: 1}
		for i := 0; i+160 <= len(raw); i += 160 { // 20 ms frames
			d := time.Duration(i) * time.Second / 8000
			m.aus = append(m.aus, mediaAU{au: [][]byte{raw[i : i+160]}, pts: d, dts: d})
		}
	default:
		t.Fatalf("unknown test codec %q", codec)
	}
	if len(m.aus) < 10 {
		t.Fatalf("test stream %s has only %d access units", codec, len(m.aus))
	}
	mediaCache[codec] = m
	return m
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// splitVideo splits an Annex-B stream with access unit delimiters into AUs
// (without the delimiters) and takes each AU's timestamps from ffprobe's
// packet list of the container, which has the same order.
func splitVideo(t testing.TB, container, es string, typ func([]byte) int, aud int, paramTypes []int) *media {
	t.Helper()
	// One AU at a time: mediacommon's AnnexB caps the NALUs per unit.
	var nalus [][]byte
	b := readFile(t, es)
	for len(b) > 0 {
		i := bytes.Index(b[1:], []byte{0, 0, 0, 1})
		if i < 0 {
			i = len(b)
		} else {
			i++
		}
		var au h264.AnnexB
		if err := au.Unmarshal(b[:i]); err != nil {
			t.Fatal(err)
		}
		nalus = append(nalus, au...)
		b = b[i:]
	}
	var aus [][][]byte
	for _, n := range nalus {
		if typ(n) == aud {
			aus = append(aus, nil)
			continue
		}
		if len(aus) == 0 {
			t.Fatalf("%s does not start with an access unit delimiter", es)
		}
		aus[len(aus)-1] = append(aus[len(aus)-1], n)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "packet=pts_time,dts_time,flags", "-of", "csv=p=0", container).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", container, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(aus) {
		t.Fatalf("%s: %d access units but ffprobe lists %d packets", es, len(aus), len(lines))
	}
	m := &media{}
	for i, l := range lines {
		f := strings.Split(l, ",")
		if len(f) < 3 {
			t.Fatalf("ffprobe line %q", l)
		}
		m.aus = append(m.aus, mediaAU{au: aus[i], pts: parseSec(t, f[0]), dts: parseSec(t, f[1]), key: strings.HasPrefix(f[2], "K")})
	}
	for _, pt := range paramTypes {
		for _, n := range m.aus[0].au {
			if typ(n) == pt {
				m.params = append(m.params, n)
				break
			}
		}
	}
	if len(m.params) != len(paramTypes) || !m.aus[0].key {
		t.Fatalf("%s: first access unit is not a keyframe with parameter sets", es)
	}
	// Make DTS start at 0 like a publisher's timeline (Matroska shifts it).
	shift := m.aus[0].dts
	for i := range m.aus {
		m.aus[i].pts -= shift
		m.aus[i].dts -= shift
	}
	return m
}

func parseSec(t testing.TB, s string) time.Duration {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("ffprobe time %q: %v", s, err)
	}
	return time.Duration(v*1e6+0.5) * time.Microsecond
}

// oggPackets returns the packets of an Ogg stream (RFC 3533): each page
// has a 27-byte header, a segment table, and packets laced in 255-byte
// segments, a shorter segment ending a packet.
func oggPackets(t testing.TB, b []byte) [][]byte {
	t.Helper()
	var pkts [][]byte
	var cur []byte
	for len(b) >= 27 {
		if !bytes.Equal(b[:4], []byte("OggS")) {
			t.Fatalf("bad Ogg page")
		}
		nseg := int(b[26])
		table := b[27 : 27+nseg]
		body := b[27+nseg:]
		for _, l := range table {
			cur = append(cur, body[:l]...)
			body = body[l:]
			if l < 255 {
				pkts = append(pkts, cur)
				cur = nil
			}
		}
		b = body
	}
	return pkts
}
