package rtpsend

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/testmedia"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testmedia.Cleanup()
	os.Exit(code)
}

// source is a test stream: its tracks and its access units in decode order.
type source struct {
	tracks []*hub.Track
	frames []*hub.Frame
}

// extract has ffmpeg copy one elementary stream of src into a raw file.
func extract(t testing.TB, src string, args ...string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "es.raw")
	cmd := append([]string{"-hide_banner", "-loglevel", "error", "-y", "-i", src}, args...)
	if b, err := exec.Command("ffmpeg", append(cmd, out)...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", cmd, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// splitAnnexB returns the NAL units of an Annex B byte stream.
func splitAnnexB(b []byte) [][]byte {
	var out [][]byte
	for {
		i := bytes.Index(b, []byte{0, 0, 1})
		if i < 0 {
			return out
		}
		b = b[i+3:]
		j := bytes.Index(b, []byte{0, 0, 1})
		n := b
		if j >= 0 {
			n = b[:j]
		}
		n = bytes.TrimRight(n, "\x00")
		if len(n) > 0 {
			out = append(out, n)
		}
		if j < 0 {
			return out
		}
		b = b[j:]
	}
}

// load makes a source of a test file: its video (cut at the access unit
// delimiters ffmpeg inserts, which are then dropped) and audio (AAC from
// ADTS, or 20 ms G.711 A-law frames), with the file's timing.
func load(t testing.TB, k testmedia.Kind) *source {
	t.Helper()
	src := testmedia.File(t, k)
	s := &source{}
	if k != testmedia.AACOnly {
		hevc := k == testmedia.H265AAC
		var raw []byte
		if hevc {
			raw = extract(t, src, "-an", "-c:v", "copy", "-bsf:v", "hevc_mp4toannexb,hevc_metadata=aud=insert", "-f", "hevc")
		} else {
			raw = extract(t, src, "-an", "-c:v", "copy", "-bsf:v", "h264_mp4toannexb,h264_metadata=aud=insert", "-f", "h264")
		}
		var aus [][][]byte
		var ps codec.ParamSets
		for _, n := range splitAnnexB(raw) {
			if (!hevc && n[0]&0x1f == 9) || (hevc && (n[0]>>1)&0x3f == 35) {
				aus = append(aus, nil)
				continue
			}
			if len(aus) > 0 {
				aus[len(aus)-1] = append(aus[len(aus)-1], n)
			}
		}
		for i, au := range aus {
			ps.Take(au, hevc)
			key := false
			for _, n := range au {
				if (!hevc && n[0]&0x1f == 5) || (hevc && (n[0]>>1)&0x3f >= 16 && (n[0]>>1)&0x3f <= 21) {
					key = true
				}
			}
			d := time.Duration(i) * 40 * time.Millisecond
			s.frames = append(s.frames, &hub.Frame{Track: 0, Key: key, AU: au, PTS: d, DTS: d})
		}
		if hevc {
			s.tracks = append(s.tracks, codec.H265Track(ps.VPS, ps.SPS, ps.PPS))
		} else {
			s.tracks = append(s.tracks, codec.H264Track(ps.SPS, ps.PPS))
		}
	}
	audio := len(s.tracks)
	if k == testmedia.H264PCMA {
		raw := extract(t, src, "-vn", "-c:a", "copy", "-f", "alaw")
		for i := 0; len(raw) >= 160; i++ {
			d := time.Duration(i) * 20 * time.Millisecond
			s.frames = append(s.frames, &hub.Frame{Track: audio, AU: [][]byte{raw[:160]}, PTS: d, DTS: d, Key: s.tracks == nil})
			raw = raw[160:]
		}
		s.tracks = append(s.tracks, codec.G711Track(true, 8000, 1))
	} else {
		var pkts mpeg4audio.ADTSPackets
		if err := pkts.Unmarshal(extract(t, src, "-vn", "-c:a", "copy", "-f", "adts")); err != nil {
			t.Fatal(err)
		}
		for i, p := range pkts {
			d := time.Duration(i) * time.Second * 1024 / time.Duration(p.SampleRate)
			s.frames = append(s.frames, &hub.Frame{Track: audio, AU: [][]byte{p.AU}, PTS: d, DTS: d, Key: audio == 0})
		}
		s.tracks = append(s.tracks, codec.AACTrackConfig(&mpeg4audio.AudioSpecificConfig{
			Type: pkts[0].Type, SampleRate: pkts[0].SampleRate, ChannelConfig: pkts[0].ChannelConfig, ChannelCount: pkts[0].ChannelCount}))
	}
	sort.SliceStable(s.frames, func(i, j int) bool { return s.frames[i].DTS < s.frames[j].DTS })
	return s
}

// track returns the frames of one track.
func (s *source) track(i int) []*hub.Frame {
	var out []*hub.Frame
	for _, f := range s.frames {
		if f.Track == i {
			out = append(out, f)
		}
	}
	return out
}

// publish announces the source's tracks at path; frames come with play.
func publish(t testing.TB, h *hub.Hub, path string, s *source) *hub.Publisher {
	t.Helper()
	p, err := h.Publish(path, hub.Origin{Proto: "test", Remote: "test"}, hub.KindAU, s.tracks, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// play writes every frame (new structs: the hub owns what it gets).
func (s *source) play(p *hub.Publisher) {
	for _, f := range s.frames {
		p.Write(&hub.Frame{Track: f.Track, Key: f.Key, AU: f.AU, PTS: f.PTS, DTS: f.DTS, Recv: time.Now()})
	}
}

// receiver collects the RTP packets a sender sends, over UDP or TCP.
type receiver struct {
	mu   sync.Mutex
	pkts [][]byte
	done chan struct{} // TCP: the sender closed the connection
	addr *net.TCPAddr  // TCP
	port int
}

func (r *receiver) add(p []byte) {
	r.mu.Lock()
	r.pkts = append(r.pkts, bytes.Clone(p))
	r.mu.Unlock()
}

func (r *receiver) packets() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.pkts...)
}

func udpReceiver(t testing.TB) *receiver {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadBuffer(8 << 20)
	r := &receiver{done: make(chan struct{}), port: c.LocalAddr().(*net.UDPAddr).Port}
	go func() {
		defer close(r.done)
		buf := make([]byte, 65536)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			r.add(buf[:n])
		}
	}()
	t.Cleanup(func() { c.Close(); <-r.done })
	return r
}

// tcpReceiver accepts one connection and reads RFC 4571 frames from it.
func tcpReceiver(t testing.TB) *receiver {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{done: make(chan struct{}), port: l.Addr().(*net.TCPAddr).Port}
	go func() {
		defer close(r.done)
		c, err := l.Accept()
		l.Close()
		if err != nil {
			return
		}
		defer c.Close()
		readFramed(c, r.add)
	}()
	t.Cleanup(func() { l.Close() })
	return r
}

// readFramed reads RFC 4571 frames until the connection ends.
func readFramed(c io.Reader, each func([]byte)) {
	var hdr [2]byte
	buf := make([]byte, 65536)
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(c, buf[:n]); err != nil {
			return
		}
		each(buf[:n])
	}
}

// stopped records what OnStopped heard.
type stopped struct {
	ch chan stopEvent
}

type stopEvent struct {
	info Info
	err  error
}

func newStopped() *stopped { return &stopped{ch: make(chan stopEvent, 16)} }

func (s *stopped) fn(in Info, err error) { s.ch <- stopEvent{in, err} }

func (s *stopped) wait(t testing.TB, d time.Duration) stopEvent {
	t.Helper()
	select {
	case e := <-s.ch:
		return e
	case <-time.After(d):
		t.Fatalf("the sender did not stop within %s", d)
	}
	return stopEvent{}
}
