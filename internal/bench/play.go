// Package bench is Berth's load tool: many readers (`play`), many
// publishers (`push`), the server's added delay (`latency`) and the floor a
// server's fan-out is compared with (`floor`: the same bytes written with
// plain writev and no protocol). It speaks the protocols, not Berth's API,
// so it measures any RTSP, RTMP or HTTP-FLV server; only the bad-input
// campaign (`chaos`, chaos.go) also asks Berth's /berth/health, /metrics
// and openRtpServer.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/rtspclient"
)

// PlayConfig is `berth bench play`.
type PlayConfig struct {
	URL       string
	N         int
	Duration  time.Duration
	RampN     int           // readers started per RampEvery; 0 = all at once
	RampEvery time.Duration //
	PID       int           // server process to sample from /proc; 0 = none
	Transport rtspclient.Transport
	Timeout   time.Duration // per request; default 10 s
	// Progress receives a line per second; Terminal rewrites one line
	// in place instead.
	Progress io.Writer
	Terminal bool
	// Floor runs the writev floor after the readers with the same number
	// of sockets and the measured per-reader rate, for the ratio.
	Floor         bool
	FloorDuration time.Duration
	FloorInterval time.Duration // default 40 ms: one flush per frame of a 25 fps stream
	// OnTick, if set, sees the running totals once a second (tests use it
	// to start a publisher when every reader is up, and to stop early).
	OnTick func(Tick)
	// TickEvery is the report period; default 1 s.
	TickEvery time.Duration
}

// Tick is the running totals of a play run.
type Tick struct {
	Elapsed              time.Duration
	Up, Failed           int
	Bytes, Packets, Lost uint64
	VideoFrames          uint64
}

// player is one run of Play.
type player struct {
	cfg          PlayConfig
	up, failed   atomic.Int64
	stats        []readerStats
	firstPacket  durations
	firstKey     durations
	playRTT      durations
	firstVideo   atomic.Int64
	firstVideoOK atomic.Int64
	errs         errorSet
}

// Play runs cfg.N readers of cfg.URL for cfg.Duration and summarizes.
func Play(ctx context.Context, cfg PlayConfig) (*Summary, error) {
	proto := protoOf(cfg.URL)
	if proto == "" {
		return nil, fmt.Errorf("bench play %q: not a URL form bench reads; use %s", cfg.URL, PlayForms)
	}
	if cfg.N <= 0 {
		return nil, fmt.Errorf("bench play: -n must be at least 1 (got %d)", cfg.N)
	}
	if err := checkFDs(cfg.N, proto, cfg.Transport.String()); err != nil {
		return nil, err
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 30 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	p := &player{cfg: cfg, stats: make([]readerStats, cfg.N)}

	var base ProcSample
	if cfg.PID > 0 {
		var err error
		if base, err = ReadProc(cfg.PID); err != nil {
			return nil, err
		}
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(cfg.Duration)
	go func() { // the ramp
		step := cfg.RampN
		if step <= 0 {
			step = cfg.N
		}
		for i := 0; i < cfg.N; i++ {
			if i > 0 && i%step == 0 && cfg.RampEvery > 0 {
				select {
				case <-time.After(cfg.RampEvery):
				case <-runCtx.Done():
					return
				}
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.runReader(runCtx, i, proto)
			}()
		}
	}()

	// Report once a second; the measurement window opens at the first tick
	// where every reader is up or has failed, and closes at the end.
	if cfg.TickEvery <= 0 {
		cfg.TickEvery = time.Second
	}
	tick := time.NewTicker(cfg.TickEvery)
	defer tick.Stop()
	var (
		winStart             time.Time
		winBytes0, winPkts0  uint64
		winProc0             ProcSample
		lastBytes, lastLost  uint64
		lastTick             = start
		windowOpen           bool
		endBytes, endPackets uint64
		endProc              ProcSample
		procErr              error
		stopped              bool
	)
	for !stopped {
		var now time.Time
		select {
		case now = <-tick.C:
		case <-ctx.Done():
			now, stopped = time.Now(), true
		}
		if !now.Before(end) {
			stopped = true
		}
		b, pk, lost, _ := p.totals()
		if !windowOpen && (p.up.Load()+p.failed.Load() >= int64(cfg.N) || stopped) {
			windowOpen, winStart, winBytes0, winPkts0 = true, now, b, pk
			if cfg.PID > 0 {
				winProc0, procErr = ReadProc(cfg.PID)
			}
		}
		dt := now.Sub(lastTick).Seconds()
		line := fmt.Sprintf("%5.0fs  readers %d/%d up, %d failed  %8.1f Mb/s  loss %d",
			now.Sub(start).Seconds(), p.up.Load(), cfg.N, p.failed.Load(), float64(b-lastBytes)*8/1e6/max(dt, 1e-3), lost-lastLost)
		lastBytes, lastLost, lastTick = b, lost, now
		if cfg.OnTick != nil {
			cfg.OnTick(Tick{Elapsed: now.Sub(start), Up: int(p.up.Load()), Failed: int(p.failed.Load()), Bytes: b, Packets: pk, Lost: lost, VideoFrames: p.frames()})
		}
		if p.cfg.Terminal {
			fmt.Fprintf(cfg.Progress, "\r%s ", line)
		} else {
			fmt.Fprintln(cfg.Progress, line)
		}
		if stopped {
			endBytes, endPackets = b, pk
			if cfg.PID > 0 && procErr == nil {
				endProc, procErr = ReadProc(cfg.PID)
			}
		}
	}
	if p.cfg.Terminal {
		fmt.Fprintln(cfg.Progress)
	}
	upAtEnd := p.up.Load()
	cancel()
	wg.Wait()

	b, pk, lost, reord := p.totals()
	s := &Summary{
		URL: cfg.URL, Protocol: proto, Readers: cfg.N,
		ReadersOK: int(upAtEnd), ReadersFailed: cfg.N - int(upAtEnd),
		Bytes: b, Packets: pk, Lost: lost, Reordered: reord, VideoFrames: p.frames(),
		SeqChecked:      proto == "rtsp",
		FirstPacket:     percentiles(p.firstPacket.get()),
		FirstKeyframe:   percentiles(p.firstKey.get()),
		PlayResponse:    percentiles(p.playRTT.get()),
		FirstVideoSeen:  int(p.firstVideo.Load()),
		FirstVideoIsKey: int(p.firstVideoOK.Load()),
		Errors:          p.errs.list(),
	}
	if proto == "rtsp" {
		s.Transport = cfg.Transport.String()
	}
	if pk+lost > 0 {
		s.LossPercent = float64(lost) * 100 / float64(pk+lost)
	}
	win := endProc.At.Sub(winStart)
	if cfg.PID == 0 || procErr != nil {
		win = lastTick.Sub(winStart)
	}
	s.WindowSeconds = win.Seconds()
	winBytes := endBytes - winBytes0
	if win > 0 {
		s.EgressMbps = float64(winBytes) * 8 / 1e6 / win.Seconds()
		s.PacketsPerSec = float64(endPackets-winPkts0) / win.Seconds()
	}
	if cfg.PID > 0 {
		if procErr != nil {
			s.Errors = append(s.Errors, "server figures: "+procErr.Error())
		} else {
			cpu := (endProc.CPU - winProc0.CPU).Seconds()
			sf := &ServerFigures{PID: cfg.PID, CPUSeconds: cpu, RSSStartKiB: base.RSSKiB, RSSEndKiB: endProc.RSSKiB}
			if win > 0 {
				sf.CPUPercent = cpu * 100 / win.Seconds()
			}
			if winBytes > 0 {
				sf.CPUSecondsPerG = cpu / (float64(winBytes) / 1e9)
			}
			sf.RSSPerReaderKB = float64(endProc.RSSKiB-base.RSSKiB) / float64(cfg.N)
			if base.AnonKiB > 0 {
				sf.AnonStartKiB, sf.AnonEndKiB = base.AnonKiB, endProc.AnonKiB
				sf.AnonPerReaderKB = float64(endProc.AnonKiB-base.AnonKiB) / float64(cfg.N)
			}
			s.Server = sf
		}
	}
	if cfg.Floor && s.ReadersOK > 0 && s.EgressMbps > 0 {
		fd := cfg.FloorDuration
		if fd <= 0 {
			fd = min(cfg.Duration, 10*time.Second)
		}
		perReader := s.EgressMbps * 1e6 / 8 / float64(s.ReadersOK)
		fr, err := Floor(ctx, FloorConfig{N: s.ReadersOK, BytesPerSec: perReader, Duration: fd, Interval: cfg.FloorInterval})
		if err != nil {
			s.Errors = append(s.Errors, "floor: "+err.Error())
		} else {
			s.FloorCPUSecondsPerGB, s.FloorInterval = fr.CPUSecondsPerGB, fr.Interval
			if s.Server != nil && fr.CPUSecondsPerGB > 0 {
				s.FloorRatio = s.Server.CPUSecondsPerG / fr.CPUSecondsPerGB
			}
		}
	}
	return s, nil
}

func (p *player) frames() (n uint64) {
	for i := range p.stats {
		n += p.stats[i].frames.Load()
	}
	return n
}

func (p *player) totals() (bytes, packets, lost, reordered uint64) {
	for i := range p.stats {
		st := &p.stats[i]
		bytes += st.bytes.Load()
		packets += st.packets.Load()
		lost += st.lost.Load()
		reordered += st.reordered.Load()
	}
	return
}

// runReader runs one reader until ctx ends; a reader that ends before (or
// never starts) counts as failed with its error.
func (p *player) runReader(ctx context.Context, i int, proto string) {
	var isUp bool
	up := func() { isUp = true; p.up.Add(1) }
	var err error
	switch proto {
	case "rtsp":
		err = p.readRTSP(ctx, &p.stats[i], up)
	case "http-flv", "ws-flv":
		err = p.readFLV(ctx, &p.stats[i], up)
	case "http-ts", "ws-ts":
		err = p.readStream(ctx, &p.stats[i], up, &tsScanner{}, "MPEG-TS")
	case "http-fmp4", "ws-fmp4":
		err = p.readStream(ctx, &p.stats[i], up, &fmp4Scanner{}, "fMP4")
	case "hls", "ll-hls":
		err = p.readHLS(ctx, &p.stats[i], up)
	case "rtmp":
		err = p.readRTMP(ctx, &p.stats[i], up)
	}
	if ctx.Err() != nil {
		return // the run ended: this reader lasted
	}
	if isUp {
		p.up.Add(-1)
	}
	p.failed.Add(1)
	if err == nil {
		err = errors.New("ended without an error")
	}
	p.errs.add(err)
}

// firstFrames tracks one reader's first packet, first video packet and
// first keyframe, timed from its request for the media (start): RTSP's
// PLAY, RTMP's play, the HTTP GET or WebSocket upgrade once written, so a
// protocol's set-up (TCP connect, RTSP's DESCRIBE and SETUP, RTMP's
// handshake and connect) is not counted in one protocol and not another.
type firstFrames struct {
	p         *player
	t0        atomic.Int64 // unix nanos of the request (start); an HTTP transport's goroutine sets it
	gotPacket atomic.Bool
	gotVideo  bool // touched by the video track's callback only
	gotKey    bool
}

// newFirstFrames times from now, until start says when the request went.
func newFirstFrames(p *player) *firstFrames {
	f := &firstFrames{p: p}
	f.start()
	return f
}

// start marks the request for the media as sent.
func (f *firstFrames) start() { f.t0.Store(time.Now().UnixNano()) }

func (f *firstFrames) since() time.Duration {
	return time.Duration(time.Now().UnixNano() - f.t0.Load())
}

func (f *firstFrames) packet() {
	if !f.gotPacket.Load() && f.gotPacket.CompareAndSwap(false, true) {
		f.p.firstPacket.add(f.since())
	}
}

// video records a video frame start (for FLV/RTMP every video tag; for
// RTP every packet that may start one) and whether it is a keyframe.
func (f *firstFrames) video(key bool) {
	if !f.gotVideo {
		f.gotVideo = true
		f.p.firstVideo.Add(1)
		if key {
			f.p.firstVideoOK.Add(1)
		}
	}
	if key && !f.gotKey {
		f.gotKey = true
		f.p.firstKey.add(f.since())
	}
}

func (p *player) readRTSP(ctx context.Context, st *readerStats, up func()) error {
	c, err := rtspclient.Dial(ctx, p.cfg.URL, rtspclient.Options{
		Transport: p.cfg.Transport, Timeout: p.cfg.Timeout, ReadBufferSize: 32 << 10,
	})
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
	video := -1
	var det codec.KeyDetector
	for i, m := range desc.Medias {
		if len(m.Formats) == 0 || video >= 0 {
			continue
		}
		if cd := m.Formats[0].Codec(); cd == codec.H264 || cd == codec.H265 {
			video, det.Codec = i, cd
		}
	}
	seqs := make([]seqTrack, len(desc.Medias))
	ff := &firstFrames{p: p}
	c.OnPacket = func(tr int, pkt []byte) {
		st.bytes.Add(uint64(len(pkt)))
		st.packets.Add(1)
		ff.packet()
		h, ok := codec.ParseRTP(pkt)
		if !ok {
			return
		}
		seqs[tr].check(h.Seq, st)
		if tr == video {
			if h.Marker {
				st.frames.Add(1)
			}
			if !ff.gotKey {
				ff.video(det.Key(h))
			}
		}
	}
	ff.start()
	if _, err := c.Play(); err != nil {
		return err
	}
	p.playRTT.add(ff.since())
	up()
	return c.Wait()
}

// checkFDs refuses a run that would run out of file descriptors half-way,
// which would look like the server refusing readers.
func checkFDs(n int, proto, transport string) error {
	soft, hard := fdLimit()
	if soft == 0 {
		return nil
	}
	per := 1
	if proto == "rtsp" && transport == "udp" {
		per = 3 // the control connection and an RTP/RTCP pair per track: more with audio
	}
	if need := uint64(n*per + 64); need > soft {
		return fmt.Errorf("bench play: %d readers need about %d file descriptors and this process may open %d (hard limit %d); raise the hard limit (as root: ulimit -Hn %d, or LimitNOFILE=) or use fewer readers", n, need, soft, hard, need)
	}
	return nil
}
