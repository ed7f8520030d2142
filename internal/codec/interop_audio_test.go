package codec

import (
	"bytes"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/sdp"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	psdp "github.com/pion/sdp/v3"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/testmedia"
)

// TestFFmpegAudioRTPBecomesAccessUnits has ffmpeg send Opus and G.711 over
// RTP (an audio-only RTSP publisher) and checks that the AUs read carry the
// source's bytes with gapless timestamps.
func TestFFmpegAudioRTPBecomesAccessUnits(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	cases := []struct {
		name  string
		codec []string
		pt    uint8 // the static payload type ffmpeg must announce, or 0
		// duration of an AU, from its bytes
		dur func([]byte) time.Duration
	}{
		{"opus", []string{"-c:a", "libopus", "-b:a", "64k", "-ac", "2"}, 0,
			func(b []byte) time.Duration { return time.Duration(opus.PacketDuration2(b)) * time.Second / 48000 }},
		{"pcma", []string{"-c:a", "pcm_alaw", "-ar", "8000", "-ac", "1"}, 8,
			func(b []byte) time.Duration { return time.Duration(len(b)) * time.Second / 8000 }},
		{"pcmu", []string{"-c:a", "pcm_mulaw", "-ar", "8000", "-ac", "1"}, 0,
			func(b []byte) time.Duration { return time.Duration(len(b)) * time.Second / 8000 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			done := make(chan []received)
			go func() {
				var pkts []received
				buf := make([]byte, 2048)
				for {
					n, err := c.Read(buf)
					if err != nil {
						done <- pkts
						return
					}
					if n >= 2 && buf[1] >= 192 && buf[1] <= 223 {
						continue // RTCP
					}
					pkts = append(pkts, received{0, bytes.Clone(buf[:n]), time.Now()})
				}
			}()
			sdpFile := filepath.Join(dir, "out.sdp")
			ffmpeg(t, append(append([]string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1"}, tc.codec...),
				"-f", "rtp", "-sdp_file", sdpFile, "rtp://"+c.LocalAddr().String())...)
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			pkts := <-done

			var sd sdp.SessionDescription
			if err := sd.Unmarshal(readFile(t, sdpFile)); err != nil {
				t.Fatal(err)
			}
			var desc description.Session
			if err := desc.Unmarshal2((*psdp.SessionDescription)(&sd)); err != nil {
				t.Fatal(err)
			}
			tracks := []*hub.Track{{Format: desc.Medias[0].Formats[0], Media: desc.Medias[0]}}
			h := hub.New(hub.Options{Converters: Converters(testLog(t)), Log: testLog(t)})
			defer h.Close()
			pub, err := h.Publish("live/audio", hub.Origin{Proto: "rtsp"}, hub.KindRTP, tracks, readFile(t, sdpFile))
			if err != nil {
				t.Fatal(err)
			}
			r, err := h.Subscribe("live/audio", hub.KindAU, hub.Origin{Proto: "rtmp"})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var payload []byte
			base := time.Now()
			for _, p := range pkts {
				hd, ok := ParseRTP(p.pkt)
				if !ok {
					t.Fatal("ffmpeg sent a packet that is not RTP")
				}
				payload = append(payload, hd.Payload...)
				pub.Write(hub.NewRTPFrame(0, p.pkt, false, base.Add(p.at.Sub(pkts[0].at))))
			}
			pub.Close() // the converter flushes what it holds at the end
			got := readUntil(t, r, func(fs []*hub.Frame) bool { return len(fs) == len(pkts) })

			var out []byte
			for i, f := range got {
				if !f.Key {
					t.Errorf("AU %d of an audio-only stream is not a keyframe", i)
				}
				out = append(out, f.AU[0]...)
				if i > 0 {
					if want := got[i-1].PTS + tc.dur(got[i-1].AU[0]); absDur(f.PTS-want) > 50*time.Microsecond {
						t.Errorf("AU %d: PTS %v, want %v (gapless after %v)", i, f.PTS, want, got[i-1].PTS)
					}
				}
			}
			if !bytes.Equal(out, payload) {
				t.Errorf("AUs carry %d bytes, the RTP payloads %d", len(out), len(payload))
			}
			if tc.pt != 0 && tracks[0].Format.PayloadType() != tc.pt {
				t.Errorf("payload type %d", tracks[0].Format.PayloadType())
			}
		})
	}
}
