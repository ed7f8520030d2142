package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthmedia/berth/internal/rtspclient"
)

// SoakConfig is `berth bench soak`: one publisher per ingest protocol and
// many readers of mixed protocols against a running Berth, sampled for
// goroutines, fds, RSS and Go heap (its /metrics) until Duration passes.
type SoakConfig struct {
	Host                                  string // Berth's address, 127.0.0.1 by default
	RTSPPort, RTMPPort, HTTPPort, SRTPort int    // 0 = that protocol is left out
	RTPPort                               int    // [rtp_proxy] port: an MPEG-TS over RTP publisher
	Readers                               int    // spread over the reader kinds and the streams
	Duration                              time.Duration
	Every                                 time.Duration // sampling period
	Warmup                                time.Duration // samples before this are not judged
	File                                  string        // what ffmpeg pushes; "" = made in a temporary directory
	Rate                                  float64       // the RTSP synthetic publisher's bits/s
	CSV                                   io.Writer     // a row per sample
	Progress                              io.Writer     // a line per sample and the publishers' troubles
}

// SoakSample is one row of the CSV.
type SoakSample struct {
	Elapsed    time.Duration
	Goroutines float64
	FDs        float64
	RSSKiB     float64
	HeapKiB    float64 // go_memstats_heap_inuse_bytes / 1024
	ReadersUp  int
	Failed     int
	Mbps       float64 // what the readers received since the last sample
}

// SoakLine is one measured line after warm-up: its first and last value
// and the growth between them in percent of the first.
type SoakLine struct {
	Name          string
	First, Last   float64
	Max           float64
	GrowthPercent float64
}

// SoakResult is the summary of a soak.
type SoakResult struct {
	Samples           []SoakSample
	Lines             []SoakLine // goroutines, fds, rss_kib, heap_kib
	Readers           int
	ReadersFailed     int
	PublisherRestarts int64
	Lost              uint64 // RTP sequence gaps seen by the RTSP readers
	Errors            []string
}

// Line returns the line of the given name (goroutines, fds, rss_kib, heap_kib).
func (r *SoakResult) Line(name string) SoakLine {
	for _, l := range r.Lines {
		if l.Name == name {
			return l
		}
	}
	return SoakLine{Name: name}
}

// Print writes the verdict: each line's growth after warm-up.
func (r *SoakResult) Print(w io.Writer, flatPercent float64) {
	fmt.Fprintf(w, "readers %d, failed %d; publisher restarts %d; RTP loss %d\n", r.Readers, r.ReadersFailed, r.PublisherRestarts, r.Lost)
	for _, l := range r.Lines {
		verdict := "flat"
		if l.GrowthPercent > flatPercent {
			verdict = "GROWS"
		}
		fmt.Fprintf(w, "%-10s after warm-up %12.0f -> %12.0f (max %12.0f)  growth %+6.1f %%  %s\n", l.Name, l.First, l.Last, l.Max, l.GrowthPercent, verdict)
	}
	for _, e := range r.Errors {
		fmt.Fprintln(w, "error:", e)
	}
}

const soakSSRC = 0x50a4 // the RTP-TS publisher's SSRC: stream rtp/000050A4

// soakStreams names the streams of the publishers cfg has ports for.
func soakStreams(cfg SoakConfig) []string {
	var s []string
	if cfg.RTSPPort > 0 {
		s = append(s, "live/soak_rtsp")
	}
	if cfg.RTMPPort > 0 {
		s = append(s, "live/soak_rtmp")
	}
	if cfg.SRTPort > 0 {
		s = append(s, "live/soak_srt")
	}
	if cfg.RTPPort > 0 {
		s = append(s, fmt.Sprintf("rtp/%08X", soakSSRC))
	}
	return s
}

// soakReaderURLs returns the URL of each kind of reader for stream, with
// its RTSP transport.
func soakReaderURLs(cfg SoakConfig, stream string) []struct {
	url string
	tr  rtspclient.Transport
} {
	type u = struct {
		url string
		tr  rtspclient.Transport
	}
	var out []u
	h := cfg.Host
	if cfg.RTSPPort > 0 {
		url := fmt.Sprintf("rtsp://%s:%d/%s", h, cfg.RTSPPort, stream)
		out = append(out, u{url, rtspclient.TCP}, u{url, rtspclient.UDP})
	}
	if cfg.RTMPPort > 0 {
		out = append(out, u{fmt.Sprintf("rtmp://%s:%d/%s", h, cfg.RTMPPort, stream), 0})
	}
	if cfg.HTTPPort > 0 {
		base := fmt.Sprintf("%s:%d/%s", h, cfg.HTTPPort, stream)
		for _, s := range []string{"http://" + base + ".live.flv", "ws://" + base + ".live.flv", "http://" + base + ".live.ts",
			"http://" + base + ".live.mp4", "http://" + base + "/hls.m3u8"} {
			out = append(out, u{s, 0})
		}
	}
	return out
}

// Soak runs the publishers and readers of cfg until cfg.Duration passes
// (or ctx ends), sampling Berth every cfg.Every.
func Soak(ctx context.Context, cfg SoakConfig) (*SoakResult, error) {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.HTTPPort == 0 {
		return nil, fmt.Errorf("bench soak: -http PORT is needed: the samples come from Berth's /metrics on its HTTP port")
	}
	if cfg.RTSPPort == 0 {
		return nil, fmt.Errorf("bench soak: -rtsp PORT is needed: streams are checked live with an RTSP DESCRIBE")
	}
	if cfg.Readers <= 0 {
		cfg.Readers = 400
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 30 * time.Minute
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Minute
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 500e3
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.CSV == nil {
		cfg.CSV = io.Discard
	}
	metricsURL := fmt.Sprintf("http://%s:%d/metrics", cfg.Host, cfg.HTTPPort)
	if _, err := scrapeMetrics(ctx, metricsURL); err != nil {
		return nil, fmt.Errorf("bench soak: %w", err)
	}
	if cfg.File == "" && (cfg.RTMPPort > 0 || cfg.SRTPort > 0 || cfg.RTPPort > 0) {
		dir, err := os.MkdirTemp("", "berth-soak-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		if cfg.File, err = makeSoakFile(ctx, dir); err != nil {
			return nil, err
		}
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	res := &SoakResult{Readers: cfg.Readers}
	var errs errorSet
	var restarts atomic.Int64
	var wg sync.WaitGroup
	streams := soakStreams(cfg)
	for _, stream := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			soakPublish(ctx, cfg, stream, &restarts, &errs)
		}()
	}
	defer wg.Wait()
	for _, stream := range streams {
		if err := waitLive(ctx, fmt.Sprintf("rtsp://%s:%d/%s", cfg.Host, cfg.RTSPPort, stream), 20*time.Second); err != nil {
			cancel()
			return nil, err
		}
	}

	// Readers: every kind over every stream, round robin, each group one
	// Play run for the whole soak.
	type group struct {
		url string
		tr  rtspclient.Transport
		n   int
	}
	var groups []*group
	for _, stream := range streams {
		for _, u := range soakReaderURLs(cfg, stream) {
			groups = append(groups, &group{url: u.url, tr: u.tr})
		}
	}
	for i := 0; i < cfg.Readers; i++ {
		groups[i%len(groups)].n++
	}
	ticks := make([]atomic.Pointer[Tick], len(groups))
	sums := make([]*Summary, len(groups))
	for i, g := range groups {
		if g.n == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Play(ctx, PlayConfig{URL: g.url, N: g.n, Duration: cfg.Duration, Transport: g.tr, RampN: 5, RampEvery: 50 * time.Millisecond,
				TickEvery: time.Second, OnTick: func(t Tick) { ticks[i].Store(&t) }})
			if err != nil {
				errs.add(err)
				return
			}
			sums[i] = s
		}()
	}

	fmt.Fprintln(cfg.CSV, "elapsed_s,goroutines,fds,rss_kib,heap_kib,readers_up,readers_failed,mbps")
	start := time.Now()
	tick := time.NewTicker(cfg.Every)
	defer tick.Stop()
	var lastBytes uint64
	lastAt := start
	for done := false; !done; {
		select {
		case <-tick.C:
		case <-ctx.Done():
			done = true
			continue
		}
		m, err := scrapeMetrics(ctx, metricsURL)
		if err != nil {
			if ctx.Err() == nil {
				errs.add(err)
			}
			continue
		}
		now := time.Now()
		s := SoakSample{Elapsed: now.Sub(start), Goroutines: m["go_goroutines"], FDs: m["process_open_fds"],
			RSSKiB: m["process_resident_memory_bytes"] / 1024, HeapKiB: m["go_memstats_heap_inuse_bytes"] / 1024}
		var b uint64
		for i := range ticks {
			if t := ticks[i].Load(); t != nil {
				s.ReadersUp += t.Up
				s.Failed += t.Failed
				b += t.Bytes
			}
		}
		s.Mbps = float64(b-lastBytes) * 8 / 1e6 / now.Sub(lastAt).Seconds()
		lastBytes, lastAt = b, now
		res.Samples = append(res.Samples, s)
		fmt.Fprintf(cfg.CSV, "%.0f,%.0f,%.0f,%.0f,%.0f,%d,%d,%.2f\n", s.Elapsed.Seconds(), s.Goroutines, s.FDs, s.RSSKiB, s.HeapKiB, s.ReadersUp, s.Failed, s.Mbps)
		fmt.Fprintf(cfg.Progress, "%6.0fs  goroutines %5.0f  fds %5.0f  rss %7.0f KiB  heap %7.0f KiB  readers %d up, %d failed  %.1f Mb/s\n",
			s.Elapsed.Seconds(), s.Goroutines, s.FDs, s.RSSKiB, s.HeapKiB, s.ReadersUp, s.Failed, s.Mbps)
	}
	cancel()
	wg.Wait()
	for _, s := range sums {
		if s != nil {
			res.ReadersFailed += s.ReadersFailed
			res.Lost += s.Lost
			for _, e := range s.Errors {
				errs.add(fmt.Errorf("%s: %s", s.URL, e))
			}
		}
	}
	res.PublisherRestarts = restarts.Load()
	res.Errors = errs.list()
	res.Lines = soakLines(res.Samples, cfg.Warmup)
	return res, nil
}

// soakLines judges the samples taken at or after warmup: the first of them
// is the baseline, the last is compared with it.
func soakLines(samples []SoakSample, warmup time.Duration) []SoakLine {
	var after []SoakSample
	for _, s := range samples {
		if s.Elapsed >= warmup {
			after = append(after, s)
		}
	}
	if len(after) == 0 {
		return nil
	}
	get := []struct {
		name string
		f    func(SoakSample) float64
	}{
		{"goroutines", func(s SoakSample) float64 { return s.Goroutines }},
		{"fds", func(s SoakSample) float64 { return s.FDs }},
		{"rss_kib", func(s SoakSample) float64 { return s.RSSKiB }},
		{"heap_kib", func(s SoakSample) float64 { return s.HeapKiB }},
	}
	var out []SoakLine
	for _, g := range get {
		l := SoakLine{Name: g.name, First: g.f(after[0]), Last: g.f(after[len(after)-1])}
		for _, s := range after {
			l.Max = max(l.Max, g.f(s))
		}
		if l.First > 0 {
			l.GrowthPercent = (l.Last - l.First) * 100 / l.First
		}
		out = append(out, l)
	}
	return out
}

// soakPublish keeps one publisher of stream running until ctx ends,
// starting it again a second after it fails (and counting that).
func soakPublish(ctx context.Context, cfg SoakConfig, stream string, restarts *atomic.Int64, errs *errorSet) {
	for first := true; ctx.Err() == nil; first = false {
		if !first {
			restarts.Add(1)
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return
			}
		}
		var err error
		switch {
		case strings.HasSuffix(stream, "_rtsp"):
			var st pubStats
			err = publishSynth(ctx, fmt.Sprintf("rtsp://%s:%d/%s", cfg.Host, cfg.RTSPPort, stream), cfg.Rate, rtspclient.TCP, &st, nil)
		case strings.HasSuffix(stream, "_rtmp"):
			err = runFFmpeg(ctx, cfg.File, "-f", "flv", fmt.Sprintf("rtmp://%s:%d/%s", cfg.Host, cfg.RTMPPort, stream))
		case strings.HasSuffix(stream, "_srt"):
			err = runFFmpeg(ctx, cfg.File, "-f", "mpegts", fmt.Sprintf("srt://%s:%d?streamid=#!::r=%s,m=publish", cfg.Host, cfg.SRTPort, stream))
		default:
			err = runFFmpeg(ctx, cfg.File, "-f", "rtp_mpegts", "-rtp_muxer_options", fmt.Sprintf("ssrc=%d", soakSSRC),
				fmt.Sprintf("rtp://%s:%d", cfg.Host, cfg.RTPPort))
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = fmt.Errorf("publisher of %s ended", stream)
		}
		errs.add(err)
		fmt.Fprintf(cfg.Progress, "publisher of %s: %v; starting it again\n", stream, err)
	}
}

// makeSoakFile makes the file the ffmpeg publishers loop: 10 s of 320x240
// H.264 (1 s GOP) and AAC, as the end-to-end tests push.
func makeSoakFile(ctx context.Context, dir string) (string, error) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		return "", fmt.Errorf("bench soak needs ffmpeg on PATH for its RTMP, SRT and RTP publishers (apt-get install ffmpeg): %w", err)
	}
	p := filepath.Join(dir, "soak.mp4")
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=10", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=10",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25", "-bf", "0", "-c:a", "aac", "-b:a", "64k", "-shortest", p).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("making the soak's media file with ffmpeg: %v: %s", err, out)
	}
	return p, nil
}

// waitLive polls an RTSP DESCRIBE of url until it succeeds.
func waitLive(ctx context.Context, url string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := rtspclient.Dial(ctx, url, rtspclient.Options{Timeout: 2 * time.Second})
		if err == nil {
			_, _, err = c.Describe()
			c.Close()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("bench soak: %s did not go live within %s (is its publisher refused? check Berth's log): %w", url, d, err)
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
		}
	}
}
