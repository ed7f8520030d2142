package rtpproxy

import (
	"bytes"
	"encoding/binary"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/testmedia"
)

// This file holds the test helpers: a GB28181-style PS muxer (one pack per
// frame, a PSM before every keyframe), an RTP packetizer, and senders over
// UDP and RFC 4571 TCP. They stand in for a camera.

// esFrame is one access unit of a test elementary stream.
type esFrame struct {
	streamID byte
	pts      int64 // 90 kHz
	data     []byte
	key      bool
}

// extract runs ffmpeg to copy one elementary stream of src into a raw file.
func extract(t testing.TB, src string, args ...string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "es.raw")
	cmd := append([]string{"-hide_banner", "-loglevel", "error", "-y", "-i", src}, args...)
	cmd = append(cmd, out)
	if b, err := exec.Command("ffmpeg", cmd...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", cmd, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// videoFrames returns the access units of src's video (25 fps), cut at the
// access unit delimiters ffmpeg inserts.
func videoFrames(t testing.TB, src string, h265 bool, pts0 int64) []esFrame {
	t.Helper()
	var raw []byte
	if h265 {
		raw = extract(t, src, "-an", "-c:v", "copy", "-bsf:v", "hevc_mp4toannexb,hevc_metadata=aud=insert", "-f", "hevc")
	} else {
		raw = extract(t, src, "-an", "-c:v", "copy", "-bsf:v", "h264_mp4toannexb,h264_metadata=aud=insert", "-f", "h264")
	}
	var starts []int
	for i := 0; i+4 < len(raw); i++ {
		if raw[i] == 0 && raw[i+1] == 0 && raw[i+2] == 0 && raw[i+3] == 1 {
			h := raw[i+4]
			if (!h265 && h&0x1f == 9) || (h265 && (h>>1)&0x3f == 35) {
				starts = append(starts, i)
			}
		}
	}
	var out []esFrame
	for k, s := range starts {
		e := len(raw)
		if k+1 < len(starts) {
			e = starts[k+1]
		}
		au := raw[s:e]
		key := false
		for _, n := range splitAnnexB(au) {
			if (!h265 && n[0]&0x1f == 5) || (h265 && (n[0]>>1)&0x3f >= 16 && (n[0]>>1)&0x3f <= 21) {
				key = true
			}
		}
		out = append(out, esFrame{streamID: 0xE0, pts: pts0 + int64(k)*3600, data: au, key: key})
	}
	if len(out) == 0 {
		t.Fatalf("no video access units in %s", src)
	}
	return out
}

func splitAnnexB(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.Index(b, []byte{0, 0, 1})
		if i < 0 {
			break
		}
		b = b[i+3:]
		j := bytes.Index(b, []byte{0, 0, 1})
		n := b
		if j >= 0 {
			n = b[:j]
		}
		for len(n) > 0 && n[len(n)-1] == 0 {
			n = n[:len(n)-1]
		}
		if len(n) > 0 {
			out = append(out, n)
		}
		if j < 0 {
			break
		}
		b = b[j:]
	}
	return out
}

// aacFrames returns src's audio as ADTS frames (48 kHz: 1920 ticks each).
func aacFrames(t testing.TB, src string, pts0 int64) []esFrame {
	t.Helper()
	raw := extract(t, src, "-vn", "-c:a", "copy", "-f", "adts")
	var out []esFrame
	for k := 0; len(raw) >= 7; k++ {
		n := int(raw[3]&3)<<11 | int(raw[4])<<3 | int(raw[5])>>5
		if n < 7 || n > len(raw) {
			t.Fatalf("bad ADTS frame length %d", n)
		}
		out = append(out, esFrame{streamID: 0xC0, pts: pts0 + int64(k)*1920, data: raw[:n]})
		raw = raw[n:]
	}
	return out
}

// alawFrames returns src's audio as 20 ms A-law frames (160 bytes, 1800 ticks).
func alawFrames(t testing.TB, src string, pts0 int64) []esFrame {
	t.Helper()
	raw := extract(t, src, "-vn", "-c:a", "copy", "-f", "alaw")
	var out []esFrame
	for k := 0; len(raw) >= 160; k++ {
		out = append(out, esFrame{streamID: 0xC0, pts: pts0 + int64(k)*1800, data: raw[:160]})
		raw = raw[160:]
	}
	return out
}

// psUnit is one PS pack with the time it carries.
type psUnit struct {
	pts  int64
	data []byte
}

// muxPS builds GB28181-style PS packs: one per frame, in PTS order, with a
// system header and a PSM (stream types videoType, audioType) before every
// keyframe.
func muxPS(video, audio []esFrame, videoType, audioType byte) []psUnit {
	all := append(append([]esFrame(nil), video...), audio...)
	sort.SliceStable(all, func(i, j int) bool { return all[i].pts < all[j].pts })
	var out []psUnit
	for _, f := range all {
		var b []byte
		b = appendPackHeader(b, f.pts)
		if f.key {
			b = appendSystemHeader(b)
			b = appendPSM(b, videoType, audioType)
		}
		b = appendPES(b, f.streamID, f.pts, f.data)
		out = append(out, psUnit{pts: f.pts, data: b})
	}
	return out
}

func appendPackHeader(b []byte, scr int64) []byte {
	scr &= maxClock
	b = append(b, 0, 0, 1, psPack,
		0x44|byte(scr>>27&0x38)|byte(scr>>28&0x03),
		byte(scr>>20),
		byte(scr>>12&0xF8)|0x04|byte(scr>>13&0x03),
		byte(scr>>5),
		byte(scr<<3&0xF8)|0x04,
		0x01,             // SCR extension 0, marker
		0x01, 0x89, 0xC3, // mux rate, markers
		0xF8) // reserved, no stuffing
	return b
}

func appendSystemHeader(b []byte) []byte {
	body := []byte{0x80, 0x01, 0x01, 0x04, 0xE1, 0xFF, 0xE0, 0xE0, 0x80, 0xC0, 0xC0, 0x08}
	b = append(b, 0, 0, 1, psSystem, 0, byte(len(body)))
	return append(b, body...)
}

func appendPSM(b []byte, videoType, audioType byte) []byte {
	var es []byte
	es = append(es, videoType, 0xE0, 0, 0)
	if audioType != 0 {
		es = append(es, audioType, 0xC0, 0, 0)
	}
	body := []byte{0xE0, 0xFF, 0, 0, byte(len(es) >> 8), byte(len(es))}
	body = append(body, es...)
	body = append(body, 0, 0, 0, 0) // CRC, not checked
	b = append(b, 0, 0, 1, psMap, byte(len(body)>>8), byte(len(body)))
	return append(b, body...)
}

// appendPES writes data as PES packets of at most 64 KB; only the first
// carries the PTS, as cameras do with big keyframes.
func appendPES(b []byte, id byte, pts int64, data []byte) []byte {
	first := true
	for len(data) > 0 {
		hdr := []byte{0x80, 0x00, 0x00}
		if first {
			p := pts & maxClock
			hdr = []byte{0x80, 0x80, 5, 0x21 | byte(p>>29&0x0E), byte(p >> 22), byte(p>>14) | 1, byte(p >> 7), byte(p<<1) | 1}
		}
		n := min(len(data), 65535-len(hdr))
		b = append(b, 0, 0, 1, id, byte((n+len(hdr))>>8), byte(n+len(hdr)))
		b = append(b, hdr...)
		b = append(b, data[:n]...)
		data = data[n:]
		first = false
	}
	return b
}

// rtpPackets cuts each unit into RTP packets of at most mtu payload bytes,
// the timestamp being the unit's PTS and the marker on its last packet.
func rtpPackets(units []psUnit, ssrc uint32, pt byte, mtu int) [][]byte {
	return rtpPacketsFrom(units, ssrc, pt, mtu, 1000)
}

// rtpPacketsFrom is rtpPackets starting at sequence number seq.
func rtpPacketsFrom(units []psUnit, ssrc uint32, pt byte, mtu int, seq uint16) [][]byte {
	var out [][]byte
	for _, u := range units {
		d := u.data
		for len(d) > 0 {
			n := min(len(d), mtu)
			p := make([]byte, 12+n)
			p[0] = 0x80
			p[1] = pt
			if n == len(d) {
				p[1] |= 0x80
			}
			binary.BigEndian.PutUint16(p[2:], seq)
			binary.BigEndian.PutUint32(p[4:], uint32(u.pts))
			binary.BigEndian.PutUint32(p[8:], ssrc)
			copy(p[12:], d[:n])
			out = append(out, p)
			d = d[n:]
			seq++
		}
	}
	return out
}

// sendUDP sends pkts to addr, pacing a little so the loopback socket
// buffer never overflows.
func sendUDP(t testing.TB, addr string, pkts [][]byte) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, p := range pkts {
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
		if i%8 == 7 {
			time.Sleep(time.Millisecond) // pacing a sender, not waiting for a condition
		}
	}
}

// sendTCP sends pkts with RFC 4571 framing and returns the open connection.
func sendTCP(t testing.TB, addr string, pkts [][]byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var buf []byte
	for _, p := range pkts {
		buf = append(buf, byte(len(p)>>8), byte(len(p)))
		buf = append(buf, p...)
	}
	if _, err := c.Write(buf); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor polls cond until it holds or the deadline passes.

func requireMedia(t testing.TB, k testmedia.Kind) string {
	t.Helper()
	return testmedia.File(t, k)
}
