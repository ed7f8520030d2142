package proxy

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	mtscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
	gosrt "github.com/datarhei/gosrt"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/srtclient"
	"github.com/berthmedia/berth/internal/testutil"
)

// srtTestTS is a second of 25 fps H.264 (a keyframe with SPS/PPS every 25
// frames) and AAC, as MPEG-TS.
func srtTestTS(t *testing.T) []byte {
	t.Helper()
	sps := []byte{0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfa, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0x99, 0x60}
	pps := []byte{0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0}
	var buf bytes.Buffer
	vt := &mpegts.Track{Codec: &mtscodecs.H264{}}
	at := &mpegts.Track{Codec: &mtscodecs.MPEG4Audio{Config: mpeg4audio.Config{Type: 2, SampleRate: 48000, ChannelCount: 2}}}
	w := &mpegts.Writer{W: &buf, Tracks: []*mpegts.Track{vt, at}}
	if err := w.Initialize(); err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte{0xaa}, 1500)
	for i := 0; i < 25; i++ {
		pts := int64(90000 + i*3600)
		au := [][]byte{append([]byte{0x41}, payload...)}
		if i%25 == 0 {
			au = [][]byte{sps, pps, append([]byte{0x65}, payload...)}
		}
		if err := w.WriteH264(vt, pts, pts, au); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteMPEG4Audio(at, pts, [][]byte{payload[:200]}); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// srtSource is an SRT listener on 127.0.0.1:0 that sends each caller ts,
// remembering the stream ids it was asked for; hangUp closes the callers'
// connections.
func srtSource(t *testing.T, ts []byte) (addr string, ids func() []string, hangUp func()) {
	t.Helper()
	ln, err := gosrt.Listen("srt", "127.0.0.1:0", gosrt.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	var conns []gosrt.Conn
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			req, err := ln.Accept2()
			if err != nil {
				return
			}
			mu.Lock()
			seen = append(seen, req.StreamId())
			mu.Unlock()
			conn, err := req.Accept()
			if err != nil {
				continue
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			out := &srtclient.Packetizer{W: conn}
			out.Write(ts)
			out.Flush()
		}
	}()
	ids = func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), seen...) }
	hangUp = func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}
	return ln.Addr().String(), ids, hangUp
}

// An srt:// source is called with its stream id; its TS becomes a stream
// of H.264 and AAC; its hang-up is a retry with the cause in words.
func TestPullSRTPublishesTheSourcesTS(t *testing.T) {
	addr, ids, hangUp := srtSource(t, srtTestTS(t))
	h := hub.New(hub.Options{Log: logging.Discard()})
	defer h.Close()
	logs := &testutil.LogBuffer{}
	m := &Manager{Hub: h, Log: logging.New(logs, logging.LevelTrace), BackoffMin: 5 * time.Second}
	defer func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	defer m.Close()
	var tracks []string
	url := "srt://" + addr + "?streamid=#!::r=live/src,m=request&latency=200000"
	key, err := m.Add(Spec{Path: "pull/s", URL: url, Timeout: 3 * time.Second, RetryCount: -1})
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "the pulled stream", func() bool {
		st := h.Get("pull/s")
		if st == nil || st.FramesIn.Load() < 20 {
			return false
		}
		tracks = tracks[:0]
		for _, tr := range st.Tracks {
			tracks = append(tracks, tr.Format.Codec())
		}
		return true
	})
	if got := strings.Join(tracks, ","); got != "H264,MPEG-4 Audio" {
		t.Errorf("tracks %s, want H264,MPEG-4 Audio", got)
	}
	if got := ids(); len(got) == 0 || got[0] != "#!::r=live/src,m=request" {
		t.Errorf("stream ids asked for %q, want #!::r=live/src,m=request", got)
	}
	hangUp()
	var info Info
	testutil.WaitFor(t, 5*time.Second, "the retry after the hang-up", func() bool {
		info, _ = m.Get(key)
		return info.State == StateRetrying
	})
	if !strings.Contains(info.Cause, "SRT source closed the connection") {
		t.Errorf("cause %q, want the SRT source's hang-up", info.Cause)
	}
}
