package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/berthmedia/berth/internal/rtspclient"
)

// LatencyConfig is `berth bench latency`.
type LatencyConfig struct {
	PushURL   string // rtsp:// the synthetic stream is published to
	ReadURL   string // rtsp://, rtmp:// or http(s)://...flv it is read back from
	Duration  time.Duration
	Warmup    time.Duration // delays in the first Warmup after the first packet are not counted
	Rate      float64       // bits/s, default 4e6
	Transport rtspclient.Transport
	Timeout   time.Duration
	// Stalls watches the machine's own stalls during the run (Stalls),
	// so that a tail of the delays can be told from the host's.
	Stalls bool
}

// slowDelay is the delay whose excess Stalls checks against the machine:
// the server-added delay a p99 should stay under (issue 14's goal).
const slowDelay = 1500 * time.Microsecond

// LatencyResult is the delay from a packet's write by the publisher to
// its read by the reader, both in this process.
type LatencyResult struct {
	PushURL string      `json:"push_url"`
	ReadURL string      `json:"read_url"`
	Delay   Percentiles `json:"delay"`
	// Unit is what one sample is: an RTP packet (RTSP), or a frame (RTMP,
	// FLV: the delay of its first fragment, so it includes the server
	// waiting for the whole frame).
	Unit string `json:"unit"`
	// FrameDelay (RTSP) is the delay of each frame's last packet.
	FrameDelay *Percentiles `json:"frame_delay,omitempty"`
	Machine    *StallReport `json:"machine,omitempty"`
}

func (r *LatencyResult) String() string {
	s := fmt.Sprintf("%s -> %s: delay per %s: %s", r.PushURL, r.ReadURL, r.Unit, r.Delay)
	if r.FrameDelay != nil {
		s += fmt.Sprintf("\n  per whole frame (its last packet): %s", r.FrameDelay)
	}
	if r.Machine != nil {
		s += "\n" + r.Machine.String()
	}
	return s
}

// Latency publishes the synthetic stream, whose fragments carry their send
// time, reads it back and measures the delay.
func Latency(ctx context.Context, cfg LatencyConfig) (*LatencyResult, error) {
	if protoOf(cfg.PushURL) != "rtsp" {
		return nil, fmt.Errorf("bench latency: PUSH_URL %q must be rtsp:// (the synthetic stream is RTSP)", cfg.PushURL)
	}
	proto := protoOf(cfg.ReadURL)
	if isWHEP(cfg.ReadURL) {
		proto = "whep" // WebRTC, played with a pion peer (whep.go)
	}
	if proto != "rtsp" && proto != "rtmp" && proto != "http-flv" && proto != "whep" {
		return nil, fmt.Errorf("bench latency: READ_URL %q: use rtsp://, rtmp://, http(s)://...flv or a WHEP URL (the send-time stamps are read from those only)", cfg.ReadURL)
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.Warmup < 0 {
		cfg.Warmup = 0
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 4e6
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	ready := make(chan struct{})
	pubErr := make(chan error, 1)
	var st pubStats
	go func() {
		pubErr <- publishSynth(ctx, cfg.PushURL, cfg.Rate, cfg.Transport, &st, func() { close(ready) })
	}()
	select {
	case <-ready:
	case err := <-pubErr:
		return nil, fmt.Errorf("bench latency: publishing: %w", err)
	case <-time.After(cfg.Timeout):
		return nil, fmt.Errorf("bench latency: publishing to %s did not start within %s", cfg.PushURL, cfg.Timeout)
	}

	var mu sync.Mutex
	var delays, frames []time.Duration
	// [sent, read] of the samples over slowDelay that a viewer sees: whole
	// frames where the reader tells them (RTSP), else every sample.
	var slow []stallSpan
	perFrame := proto == "rtsp"
	var first time.Time
	var stalls *Stalls
	if cfg.Stalls {
		stalls = WatchStalls()
		defer stalls.Stop()
	}
	record := func(d time.Duration, frameEnd bool) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if first.IsZero() {
			first = now
		}
		if now.Sub(first) >= cfg.Warmup {
			delays = append(delays, d)
			if frameEnd {
				frames = append(frames, d)
			}
			if d > slowDelay && (frameEnd || !perFrame) {
				slow = append(slow, stallSpan{now.Add(-d), now})
			}
		}
	}
	readCtx, readCancel := context.WithTimeout(ctx, cfg.Duration+cfg.Warmup+cfg.Timeout)
	defer readCancel()
	stopAfter := func() {
		time.AfterFunc(cfg.Warmup+cfg.Duration, readCancel)
	}
	var once sync.Once
	onDelay := func(d time.Duration) {
		once.Do(stopAfter)
		record(d, false)
	}
	// A frame's last RTP packet (the marker's): its delay is when a
	// decoder can show the frame. The server holds a video frame's first
	// packets until its last one came (hub.ring's held wake-ups), so the
	// per-packet figure also counts how long the publisher took to send
	// the frame; this one does not.
	onFrameEnd := func(d time.Duration) {
		once.Do(stopAfter)
		record(d, true)
	}
	res := &LatencyResult{PushURL: cfg.PushURL, ReadURL: cfg.ReadURL, Unit: "frame"}
	var err error
	switch proto {
	case "rtsp":
		res.Unit = "RTP packet"
		err = latencyRTSP(readCtx, cfg, onDelay, onFrameEnd)
	case "http-flv":
		err = latencyFLV(readCtx, cfg, onDelay)
	case "rtmp":
		err = latencyRTMP(readCtx, cfg, onDelay)
	case "whep":
		err = latencyWHEP(readCtx, cfg, onDelay)
	}
	if readCtx.Err() == nil && err != nil {
		return nil, fmt.Errorf("bench latency: reading %s: %w", cfg.ReadURL, err)
	}
	cancel()
	mu.Lock()
	res.Delay = percentiles(delays)
	if len(frames) > 0 {
		f := percentiles(frames)
		res.FrameDelay = &f
	}
	mu.Unlock()
	if stalls != nil {
		stalls.Stop()
		res.Machine = stalls.Summary()
		res.Machine.SlowMs, res.Machine.Slow = float64(slowDelay)/1e6, len(slow)
		for _, sp := range slow {
			if stalls.Overlaps(sp.from, sp.to) {
				res.Machine.InStall++
			}
		}
	}
	if res.Delay.Count == 0 {
		return res, fmt.Errorf("bench latency: no stamped packets came back from %s within %s", cfg.ReadURL, cfg.Timeout)
	}
	return res, nil
}

func latencyRTSP(ctx context.Context, cfg LatencyConfig, onDelay, onFrameEnd func(time.Duration)) error {
	c, err := rtspclient.Dial(ctx, cfg.ReadURL, rtspclient.Options{Transport: cfg.Transport, Timeout: cfg.Timeout})
	if err != nil {
		return err
	}
	defer c.Close()
	desc, _, err := c.Describe()
	if err != nil {
		return err
	}
	if err := c.SetupAll(desc); err != nil {
		return err
	}
	c.OnPacket = func(_ int, pkt []byte) {
		if len(pkt) >= stampOffset+stampLen {
			if d, ok := stampDelay(pkt[stampOffset:], time.Since(stampEpoch)); ok {
				if pkt[1]&0x80 != 0 {
					onFrameEnd(d)
				} else {
					onDelay(d)
				}
			}
		}
	}
	if _, err := c.Play(); err != nil {
		return err
	}
	err = c.Wait()
	if errors.Is(err, rtspclient.ErrClosed) {
		return nil
	}
	return err
}

// findStamp returns the first send time in a frame's bytes.
func findStamp(data []byte) (time.Duration, bool) {
	i := bytes.Index(data, stampMagic[:])
	if i < 0 {
		return 0, false
	}
	return stampDelay(data[i:], time.Since(stampEpoch))
}

func latencyFLV(ctx context.Context, cfg LatencyConfig, onDelay func(time.Duration)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.ReadURL, nil)
	if err != nil {
		return err
	}
	res, err := flvClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", cfg.ReadURL, res.Status)
	}
	r := &flvReader{br: bufio.NewReaderSize(res.Body, 1<<20)}
	for {
		h, _, _, err := r.next()
		if err != nil {
			return err
		}
		if h.Type == flvTagVideo {
			data, _ := r.br.Peek(min(h.Size, r.br.Size()))
			if d, ok := findStamp(data); ok {
				onDelay(d)
			}
		}
		if err := r.skip(h); err != nil {
			return err
		}
	}
}

func latencyRTMP(ctx context.Context, cfg LatencyConfig, onDelay func(time.Duration)) error {
	p := &player{cfg: PlayConfig{URL: cfg.ReadURL, Timeout: cfg.Timeout}}
	var st readerStats
	return p.readRTMPWith(ctx, &st, func() {}, func(typ uint8, body []byte) {
		if typ == flvTagVideo {
			if d, ok := findStamp(body); ok {
				onDelay(d)
			}
		}
	})
}
