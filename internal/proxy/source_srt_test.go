package proxy

import (
	"strings"
	"sync"
	"testing"
	"time"

	gosrt "github.com/datarhei/gosrt"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/srtclient"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

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
	addr, ids, hangUp := srtSource(t, testmedia.SynthTS(t, true, 25, 25, 0)) // a second of 25 fps H.264 and AAC
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
