package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/rtspclient"
	"github.com/berthmedia/berth/internal/server"
)

func startBenchTarget(t *testing.T) *server.Server {
	t.Helper()
	cfg := config.Default()
	cfg.General.ListenIP = "127.0.0.1"
	srv := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv.Ephemeral = true
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv
}

func TestBenchFlagErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"bench"},
		{"bench", "dance"},
		{"bench", "play"},
		{"bench", "play", "rtsp://h/s", "-ramp", "fast"},
		{"bench", "play", "rtsp://h/s", "-transport", "sctp"},
		{"bench", "play", "ftp://h/s"},
		{"bench", "play", "http://h/live/s"}, // no file: not a form bench reads
		{"bench", "push", "rtsp://h/s", "-rate", "lots"},
		{"bench", "latency", "rtsp://h/s"},
		{"bench", "floor", "extra"},
		{"bench", "chaos", "rtsp://h/s"}, // addresses are flags
		{"bench", "chaos", "-rate", "lots"},
		{"bench", "soak", "400"}, // readers are -n
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != exitConfig {
			t.Errorf("berth %s: exit %d; want %d (stderr %q)", strings.Join(args, " "), code, exitConfig, errb.String())
		}
	}
}

// TestBenchPlayAndPushAgainstBerth runs the CLI as a user would: push the
// synthetic stream, read it with two readers, and check the JSON summary.
func TestBenchPlayAndPushAgainstBerth(t *testing.T) {
	srv := startBenchTarget(t)
	url := "rtsp://" + srv.Addr("rtsp") + "/live/cli"

	pushDone := make(chan int, 1)
	var pushOut, pushErr bytes.Buffer
	go func() {
		pushDone <- run([]string{"bench", "push", url, "-duration", "4s", "-rate", "1M", "-json"}, &pushOut, &pushErr)
	}()

	// Wait until the stream is published: DESCRIBE answers 200.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := rtspclient.Dial(context.Background(), url, rtspclient.Options{Timeout: time.Second})
		if err == nil {
			_, _, err = c.Describe()
			c.Close()
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pushed stream never appeared: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}

	var out, errb bytes.Buffer
	code := run([]string{"bench", "play", url, "-n", "2", "-duration", "2s", "-json", "-ramp", "1/100ms"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("bench play exit %d\nstdout %s\nstderr %s", code, out.String(), errb.String())
	}
	var s struct {
		ReadersOK   int     `json:"readers_ok"`
		Packets     uint64  `json:"packets"`
		Bytes       uint64  `json:"bytes"`
		Lost        uint64  `json:"lost"`
		EgressMbps  float64 `json:"egress_mbps"`
		FirstPacket struct {
			Count int `json:"count"`
		} `json:"first_packet"`
	}
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("play -json printed %q: %v", out.String(), err)
	}
	if s.ReadersOK != 2 || s.Packets == 0 || s.Bytes == 0 || s.Lost != 0 || s.FirstPacket.Count != 2 {
		t.Fatalf("summary %+v", s)
	}
	if !strings.Contains(errb.String(), "readers 2/2 up") {
		t.Fatalf("no per-second progress on stderr with -json: %q", errb.String())
	}
	if code := <-pushDone; code != exitOK {
		t.Fatalf("bench push exit %d: %s %s", code, pushOut.String(), pushErr.String())
	}
	var ps struct {
		Publishers int    `json:"publishers"`
		Failed     int    `json:"failed"`
		Bytes      uint64 `json:"bytes"`
	}
	if err := json.Unmarshal(pushOut.Bytes(), &ps); err != nil || ps.Publishers != 1 || ps.Failed != 0 || ps.Bytes == 0 {
		t.Fatalf("push summary %q (%v)", pushOut.String(), err)
	}
}

func TestBenchFloorPrintsCPUPerGB(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"bench", "floor", "-n", "4", "-rate", "2M", "-duration", "500ms"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "CPU-s per GB") {
		t.Fatalf("floor printed %q", out.String())
	}
}
