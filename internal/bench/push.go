package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthmedia/berth/internal/rtspclient"
)

// PushConfig is `berth bench push`.
type PushConfig struct {
	URL       string
	N         int
	File      string        // pushed with ffmpeg -re -stream_loop -1 -c copy; "" = the synthetic stream (RTSP or RTMP)
	Rate      float64       // synthetic stream bits/s; default 4e6
	Duration  time.Duration // 0 = until ctx ends
	Transport rtspclient.Transport
	Progress  io.Writer
}

// PushSummary is the result of a push run.
type PushSummary struct {
	URLs       []string `json:"urls"`
	Publishers int      `json:"publishers"`
	Failed     int      `json:"failed"`
	Bytes      uint64   `json:"bytes"`   // synthetic mode only
	Packets    uint64   `json:"packets"` // synthetic mode only
	Mbps       float64  `json:"mbps"`
	Errors     []string `json:"errors,omitempty"`
}

// PushURLs names the streams of n publishers: the URL itself for one, else
// URL_0 ... URL_{n-1} (the suffix on the stream name, before any query).
func PushURLs(url string, n int) []string {
	if n == 1 {
		return []string{url}
	}
	base, query := url, ""
	if i := strings.IndexByte(url, '?'); i >= 0 {
		base, query = url[:i], url[i:]
	}
	out := make([]string, n)
	for i := range out {
		out[i] = base + "_" + strconv.Itoa(i) + query
	}
	return out
}

// Push runs cfg.N publishers at real-time speed until ctx ends (or
// cfg.Duration passes).
func Push(ctx context.Context, cfg PushConfig) (*PushSummary, error) {
	proto := protoOf(cfg.URL)
	if proto != "rtsp" && proto != "rtmp" {
		return nil, fmt.Errorf("bench push %q: use an rtsp:// or rtmp:// URL", cfg.URL)
	}
	if cfg.N <= 0 {
		return nil, fmt.Errorf("bench push: -n must be at least 1 (got %d)", cfg.N)
	}
	if cfg.File != "" {
		if _, err := exec.LookPath("ffmpeg"); err != nil {
			return nil, fmt.Errorf("bench push -file needs ffmpeg on PATH (apt-get install ffmpeg): %w", err)
		}
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 4e6
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	urls := PushURLs(cfg.URL, cfg.N)
	var st pubStats
	var up, failed atomic.Int64
	var errs errorSet
	var wg sync.WaitGroup
	start := time.Now()
	for _, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if cfg.File != "" {
				up.Add(1)
				err = pushFile(ctx, u, cfg.File, proto, cfg.Transport)
				up.Add(-1)
			} else {
				var isUp bool
				ready := func() { isUp = true; up.Add(1) }
				if proto == "rtmp" {
					err = publishSynthRTMP(ctx, u, cfg.Rate, &st, ready)
				} else {
					err = publishSynth(ctx, u, cfg.Rate, cfg.Transport, &st, ready)
				}
				if isUp {
					up.Add(-1)
				}
			}
			if ctx.Err() == nil {
				failed.Add(1)
				if err == nil {
					err = fmt.Errorf("%s: publisher ended early", u)
				}
				errs.add(err)
			}
		}()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last uint64
	for ctx.Err() == nil {
		select {
		case <-tick.C:
		case <-ctx.Done():
			continue
		}
		b := st.bytes.Load()
		line := fmt.Sprintf("%5.0fs  publishers %d/%d up, %d failed", time.Since(start).Seconds(), up.Load(), cfg.N, failed.Load())
		if cfg.File == "" {
			line += fmt.Sprintf("  %8.1f Mb/s", float64(b-last)*8/1e6)
		}
		last = b
		fmt.Fprintln(cfg.Progress, line)
		if failed.Load() == int64(cfg.N) {
			break
		}
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	s := &PushSummary{URLs: urls, Publishers: cfg.N, Failed: int(failed.Load()), Bytes: st.bytes.Load(),
		Packets: st.packets.Load(), Mbps: float64(st.bytes.Load()) * 8 / 1e6 / el, Errors: errs.list()}
	return s, nil
}

// pushFile runs ffmpeg pushing file to url in a loop at real-time speed.
func pushFile(ctx context.Context, url, file, proto string, tr rtspclient.Transport) error {
	if proto == "rtsp" {
		return runFFmpeg(ctx, file, "-f", "rtsp", "-rtsp_transport", tr.String(), url)
	}
	return runFFmpeg(ctx, file, "-f", "flv", url)
}

// runFFmpeg pushes file in a loop at real-time speed with the output args,
// the last of which is the destination. It returns nil once ctx ends, else
// why ffmpeg stopped with the end of its stderr.
func runFFmpeg(ctx context.Context, file string, out ...string) error {
	args := append([]string{"-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", file, "-c", "copy"}, out...)
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		return nil
	}
	msg := strings.TrimSpace(stderr.String())
	if len(msg) > 300 {
		msg = msg[len(msg)-300:]
	}
	return fmt.Errorf("ffmpeg pushing %s to %s: %w: %s", file, out[len(out)-1], err, msg)
}
