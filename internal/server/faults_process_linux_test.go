package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/rtspclient"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// TestFaultKill9PublisherEndsTheStream: an ffmpeg publisher (RTSP, RTMP)
// of a 4 Mb/s stream killed with SIGKILL, so mid-frame (a frame is ~15
// RTP packets or ~4 RTMP chunks), ends the stream: its RTSP readers are
// closed with nothing lost before, its HTTP-FLV reader gets the end of its
// body, and the path can be published again at once.
func TestFaultKill9PublisherEndsTheStream(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	for _, proto := range []string{"rtsp", "rtmp"} {
		t.Run(proto, func(t *testing.T) {
			srv, _ := start(t)
			path := "live/kill9" + proto
			url := proto + "://" + srv.Addr(proto) + "/" + path
			pub := pushVia(t, exec.Command, srv, testmedia.H264CBR, url, path)
			readers := []*seqReader{playSeq(t, "rtsp://"+srv.Addr("rtsp")+"/"+path, nil, nil), playSeq(t, "rtsp://"+srv.Addr("rtsp")+"/"+path, nil, nil)}
			res, err := http.Get("http://" + srv.Addr("http") + "/" + path + ".live.flv")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { res.Body.Close() })
			flvEnded := make(chan error, 1)
			go func() { _, err := io.Copy(io.Discard, res.Body); flvEnded <- err }()
			testutil.WaitFor(t, 10*time.Second, "the readers' packets", func() bool { p, _ := readers[1].counts(); return p > 100 })

			pub.Process.Signal(syscall.SIGKILL)
			pub.Wait()
			killed := time.Now()
			for i, r := range readers {
				select {
				case <-r.c.Done():
				case <-time.After(10 * time.Second):
					t.Fatalf("RTSP reader %d was not closed 10 s after its publisher was killed", i)
				}
				if _, g := r.counts(); g != 0 {
					t.Errorf("RTSP reader %d: %s; want 0 lost", i, r)
				}
			}
			select {
			case err := <-flvEnded:
				if err != nil {
					t.Errorf("the HTTP-FLV body ended with %v; want its end (EOF)", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the HTTP-FLV reader was not told 10 s after its publisher was killed")
			}
			told := time.Since(killed)
			if srv.Hub.Get(path) != nil {
				t.Error("the stream outlived its killed publisher")
			}
			push(t, srv, testmedia.H264CBR, url, path)
			t.Logf("%s publisher killed: readers told in %s, the path published again %s after the kill; readers %s, %s",
				proto, told.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond), readers[0], readers[1])
		})
	}
}

// TestFaultSIGTERMUnderLoad: Berth as a process of its own, with an RTSP
// publisher and 100 RTSP readers, exits 0 on SIGTERM within its own
// shutdown deadline (5 s; the time it took is logged and in
// docs/reliability.md) and every reader is told (its connection closed).
func TestFaultSIGTERMUnderLoad(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	bin := testutil.GoBinary(t, "github.com/berthmedia/berth/cmd/berth")
	rtspPort := freePort(t)
	ini := filepath.Join(t.TempDir(), "berth.ini")
	os.WriteFile(ini, []byte(fmt.Sprintf("[general]\nlisten_ip=127.0.0.1\n[rtsp]\nport=%d\n[rtmp]\nport=0\n[http]\nport=0\n[rtp_proxy]\nport=0\n"+
		"[srt]\nport=0\n[rtc]\nport=0\n", rtspPort)), 0o644)
	logs := &testutil.LogBuffer{}
	berth := exec.Command(bin, "-c", ini)
	berth.Stdout, berth.Stderr = logs, logs
	if err := berth.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		berth.Process.Kill()
		berth.Wait()
		if t.Failed() {
			t.Logf("Berth's log:\n%s", logs.String())
		}
	})
	logs.WaitLine(t, "Berth is listening")
	if line := logs.Line("unknown key"); line != "" {
		t.Fatalf("the test's ini has a key Berth does not know: %s", line)
	}
	url := fmt.Sprintf("rtsp://127.0.0.1:%d/live/term", rtspPort)
	_, _ = pushLoop(t, url)
	testutil.WaitFor(t, 10*time.Second, "the stream to be live", func() bool {
		c, err := rtspclient.Dial(context.Background(), url, rtspclient.Options{Timeout: 2 * time.Second})
		if err != nil {
			return false
		}
		defer c.Close()
		_, _, err = c.Describe()
		return err == nil
	})
	readers := make([]*seqReader, 100)
	for i := range readers {
		readers[i] = playSeq(t, url, nil, nil)
	}
	testutil.WaitFor(t, 15*time.Second, "every reader's first packets", func() bool {
		for _, r := range readers {
			if p, _ := r.counts(); p == 0 {
				return false
			}
		}
		return true
	})

	berth.Process.Signal(syscall.SIGTERM)
	sent := time.Now()
	exited := make(chan error, 1)
	go func() { exited <- berth.Wait() }()
	var err error
	select {
	case err = <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("Berth did not exit 10 s after SIGTERM")
	}
	took := time.Since(sent)
	if err != nil {
		t.Fatalf("Berth exited with %v after SIGTERM; want exit 0", err)
	}
	if line := logs.Line("shutdown did not finish in time"); line != "" {
		t.Errorf("the shutdown ran past its deadline: %s", line)
	}
	if took > 5*time.Second {
		t.Errorf("Berth took %s to exit, past its own 5 s shutdown deadline", took)
	}
	for i, r := range readers {
		select {
		case <-r.c.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("reader %d was not closed after Berth exited", i)
		}
		if _, g := r.counts(); g != 0 {
			t.Errorf("reader %d: %s; want 0 lost", i, r)
		}
	}
	t.Logf("SIGTERM with 1 publisher and %d readers: exit 0 in %s", len(readers), took.Round(time.Millisecond))
}
