package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berthmedia/berth/internal/rtspclient"
)

// ChaosConfig is `berth bench chaos`: N malformed or mutated inputs spread
// over every listener of a running Berth while a legitimate publisher and
// readers run. Each address is host:port; "" leaves that listener out.
type ChaosConfig struct {
	RTSP, RTMP, HTTP string
	RTP              string // [rtp_proxy] port: TCP frames (RFC 4571) and UDP datagrams
	RTPUDP           string // the rtp_proxy UDP address when it differs from RTP's; "" = RTP's, "-" = openRtpServer ports only
	SRT              string // UDP
	RTC, RTCTCP      string // WebRTC ICE: UDP and ICE-TCP
	// The TLS listeners (Berth opens them only with a certificate): the
	// same inputs as their plain twins after a handshake, and damaged
	// ClientHellos.
	HTTPS, RTSPS, RTMPS string
	Secret              string // [api] secret: calls with it reach the endpoints' argument parsing

	N           int   // inputs; default 100,000
	Concurrency int   // inputs in flight; default 16
	Seed        int64 // input i is made from (Seed, i) alone: rerun one with -seed and -only
	Only        int   // >0: send just input number Only-1 (to reproduce one)

	Readers int           // legitimate RTSP/TCP readers; default 20
	Rate    float64       // legitimate stream bits/s; default 1e6
	Path    string        // legitimate app/stream; default live/chaos
	PID     int           // the server's process id: alive check, fds and RSS from /proc
	Settle  time.Duration // how long resources may take to return to baseline; default 30 s
	Timeout time.Duration // per input; default 2 s
	// RSSSlackKiB is how far above its baseline the server's RSS may stay
	// after the settle time; 0 = half the baseline or 64 MiB, whichever is
	// more (the Go heap returns freed pages to the OS minutes later).
	RSSSlackKiB int64
	Progress    io.Writer
}

// ChaosResources are a server's goroutines, open files and resident memory.
type ChaosResources struct {
	Goroutines int   `json:"goroutines"`
	FDs        int   `json:"fds"`
	RSSKiB     int64 `json:"rss_kib"`
}

// ChaosReport is the outcome of a campaign.
type ChaosReport struct {
	Seed     int64          `json:"seed"`
	Inputs   int            `json:"inputs"`
	ByTarget map[string]int `json:"by_target"`
	// TargetMeanMS is the mean time an input of each kind took, dial to
	// hang-up: where a campaign spends its time.
	TargetMeanMS map[string]float64 `json:"target_mean_ms"`
	Refused      int                `json:"refused"` // inputs whose connection the server refused or reset before we wrote (limits)
	Seconds      float64            `json:"seconds"`
	InputsPerSec float64            `json:"inputs_per_second"`

	ServerAlive bool `json:"server_alive"` // the process exists (-pid) and /berth/health answers
	Crashes     int  `json:"crashes"`

	Readers          int    `json:"readers"`
	ReadersOK        int    `json:"readers_ok"`
	ReaderPackets    uint64 `json:"reader_packets"`
	ReaderLost       uint64 `json:"reader_lost"`
	PublisherPackets uint64 `json:"publisher_packets"`
	PublisherOK      bool   `json:"publisher_ok"`

	Before         ChaosResources `json:"before"`
	Peak           ChaosResources `json:"peak"`
	After          ChaosResources `json:"after"`
	SettleSeconds  float64        `json:"settle_seconds"`
	BackToBaseline bool           `json:"back_to_baseline"`

	Failures []string `json:"failures,omitempty"` // why the campaign failed, in words
	Errors   []string `json:"errors,omitempty"`   // legitimate clients' errors
}

// OK is the campaign's verdict: the server lived, nobody legitimate lost a
// packet, and its resources came back.
func (r *ChaosReport) OK() bool { return len(r.Failures) == 0 }

// Print writes the human summary.
func (r *ChaosReport) Print(w io.Writer) {
	fmt.Fprintf(w, "\n%d inputs in %.1fs (%.0f/s), seed %d, %d refused by limits\n", r.Inputs, r.Seconds, r.InputsPerSec, r.Seed, r.Refused)
	var names []string
	for k := range r.ByTarget {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(w, "  %-16s %7d  %6.1f ms each\n", k, r.ByTarget[k], r.TargetMeanMS[k])
	}
	fmt.Fprintf(w, "server alive: %v, crashes %d\n", r.ServerAlive, r.Crashes)
	fmt.Fprintf(w, "legitimate: publisher ok %v (%d packets), readers %d/%d ok, %d packets, %d lost\n",
		r.PublisherOK, r.PublisherPackets, r.ReadersOK, r.Readers, r.ReaderPackets, r.ReaderLost)
	fmt.Fprintf(w, "%-11s %10s %10s %10s\n", "", "goroutines", "fds", "RSS MiB")
	for _, row := range []struct {
		n string
		r ChaosResources
	}{{"before", r.Before}, {"peak", r.Peak}, {"after", r.After}} {
		fmt.Fprintf(w, "%-11s %10d %10d %10.1f\n", row.n, row.r.Goroutines, row.r.FDs, float64(row.r.RSSKiB)/1024)
	}
	fmt.Fprintf(w, "back to baseline: %v (after %.1fs)\n", r.BackToBaseline, r.SettleSeconds)
	for _, e := range r.Errors {
		fmt.Fprintln(w, "  error", e)
	}
	if r.OK() {
		fmt.Fprintln(w, "PASS")
		return
	}
	for _, f := range r.Failures {
		fmt.Fprintln(w, "FAIL", f)
	}
}

// withinBaseline is the settle test: a few goroutines and files for
// timers and pooled connections, and memory the Go heap keeps for reuse
// (it returns pages to the OS minutes later, not seconds).
func withinBaseline(before, now ChaosResources, rssSlack int64) bool {
	if rssSlack <= 0 {
		rssSlack = max(before.RSSKiB/2, 64<<10)
	}
	return now.Goroutines <= before.Goroutines+10 && now.FDs <= before.FDs+10 && now.RSSKiB <= before.RSSKiB+rssSlack
}

// chaosInput is one bad input: it dials, writes, reads what comes back and
// hangs up. An error is the server refusing or resetting, which is allowed.
type chaosInput func(ctx context.Context, c *chaosRun, r *rand.Rand) error

// chaosRun is a campaign in progress.
type chaosRun struct {
	cfg     ChaosConfig
	targets []chaosTarget
	// rtpPorts are ports openRtpServer gave the campaign (UDP and TCP).
	rtpPorts []int
	rtpHost  string
	tls      bool // inputs go over TLS (a copy of the run for the TLS targets)
}

type chaosTarget struct {
	name string
	send chaosInput
}

// Chaos runs a campaign.
func Chaos(ctx context.Context, cfg ChaosConfig) (*ChaosReport, error) {
	if cfg.N <= 0 {
		cfg.N = 100000
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.Readers < 0 {
		cfg.Readers = 0
	} else if cfg.Readers == 0 {
		cfg.Readers = 20
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 1e6
	}
	if cfg.Path == "" {
		cfg.Path = "live/chaos"
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 30 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.RTPUDP == "" {
		cfg.RTPUDP = cfg.RTP
	}
	if cfg.RTSP == "" || cfg.HTTP == "" {
		return nil, errors.New("bench chaos needs the RTSP address (the legitimate stream) and the HTTP address (health, API, metrics)")
	}
	c := &chaosRun{cfg: cfg}
	c.targets = c.chooseTargets()
	rep := &ChaosReport{Seed: cfg.Seed, Readers: cfg.Readers, ByTarget: map[string]int{}, TargetMeanMS: map[string]float64{}}

	if !c.alive() {
		return nil, fmt.Errorf("bench chaos: no Berth answers http://%s/berth/health (is it running? give -http and -pid)", cfg.HTTP)
	}

	// The legitimate publisher and readers run through the whole campaign.
	legitCtx, stopLegit := context.WithCancel(ctx)
	defer stopLegit()
	url := "rtsp://" + cfg.RTSP + "/" + cfg.Path
	var pub pubStats
	pubUp := make(chan struct{})
	pubErr := make(chan error, 1)
	go func() {
		pubErr <- publishSynth(legitCtx, url, cfg.Rate, rtspclient.TCP, &pub, func() { close(pubUp) })
	}()
	select {
	case <-pubUp:
	case err := <-pubErr:
		return nil, fmt.Errorf("bench chaos: the legitimate publisher could not start: %w", err)
	case <-time.After(10 * time.Second):
		return nil, fmt.Errorf("bench chaos: the legitimate publisher to %s did not start within 10s", url)
	}
	var readersUp atomic.Int64
	playDone := make(chan *Summary, 1)
	go func() {
		s, err := Play(legitCtx, PlayConfig{URL: url, N: cfg.Readers, Duration: 24 * time.Hour, Transport: rtspclient.TCP,
			TickEvery: 100 * time.Millisecond, OnTick: func(t Tick) { readersUp.Store(int64(t.Up)) }})
		if err != nil {
			s = &Summary{Readers: cfg.Readers, ReadersFailed: cfg.Readers, Errors: []string{err.Error()}}
		}
		playDone <- s
	}()
	for deadline := time.Now().Add(10 * time.Second); readersUp.Load() < int64(cfg.Readers); {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("bench chaos: only %d of %d legitimate readers of %s started in 10s", readersUp.Load(), cfg.Readers, url)
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	if err := c.openRTPServers(); err != nil {
		fmt.Fprintln(cfg.Progress, "bench chaos: no openRtpServer ports, RTP goes to the shared port only:", err)
	}
	var err error
	if rep.Before, err = c.resources(); err != nil {
		return nil, err
	}
	rep.Peak = rep.Before

	// The campaign: a bounded pool takes input numbers in order.
	start := time.Now()
	var next, done, refused atomic.Int64
	counts := make([]atomic.Int64, len(c.targets))
	spent := make([]atomic.Int64, len(c.targets)) // nanoseconds
	first, last := int64(0), int64(cfg.N)
	if cfg.Only > 0 {
		first, last = int64(cfg.Only-1), int64(cfg.Only)
	}
	next.Store(first)
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= last {
					return
				}
				r := rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(i)))
				k := r.IntN(len(c.targets))
				ictx, cancel := context.WithTimeout(ctx, cfg.Timeout)
				t0 := time.Now()
				if err := c.targets[k].send(ictx, c, r); isRefusal(err) {
					refused.Add(1)
				}
				spent[k].Add(int64(time.Since(t0)))
				cancel()
				counts[k].Add(1)
				done.Add(1)
			}
		}()
	}
	tick := time.NewTicker(time.Second)
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	for loop := true; loop; {
		select {
		case <-finished:
			loop = false
		case <-tick.C:
			res, _ := c.resources()
			rep.Peak = peak(rep.Peak, res)
			fmt.Fprintf(cfg.Progress, "%5.0fs  %7d/%d inputs  readers %d/%d  goroutines %d  fds %d  RSS %.1f MiB\n",
				time.Since(start).Seconds(), done.Load(), last-first, readersUp.Load(), cfg.Readers, res.Goroutines, res.FDs, float64(res.RSSKiB)/1024)
		}
	}
	tick.Stop()
	rep.Seconds = time.Since(start).Seconds()
	rep.Inputs = int(done.Load())
	rep.InputsPerSec = float64(rep.Inputs) / rep.Seconds
	rep.Refused = int(refused.Load())
	for k, t := range c.targets {
		if n := counts[k].Load(); n > 0 {
			rep.ByTarget[t.name] = int(n)
			rep.TargetMeanMS[t.name] = float64(spent[k].Load()) / float64(n) / 1e6
		}
	}
	c.closeRTPServers()

	// Settle: the legitimate clients keep running while the server's
	// timeouts end what the campaign left half-open.
	settleStart := time.Now()
	for {
		rep.After, err = c.resources()
		if err == nil && withinBaseline(rep.Before, rep.After, cfg.RSSSlackKiB) {
			rep.BackToBaseline = true
			break
		}
		if time.Since(settleStart) > cfg.Settle || ctx.Err() != nil {
			break
		}
		time.Sleep(500 * time.Millisecond) // polling interval
	}
	rep.SettleSeconds = time.Since(settleStart).Seconds()
	rep.ServerAlive = c.alive()

	stopLegit()
	s := <-playDone
	perr := <-pubErr
	rep.ReadersOK, rep.ReaderPackets, rep.ReaderLost = s.ReadersOK, s.Packets, s.Lost
	rep.PublisherPackets, rep.PublisherOK = pub.packets.Load(), perr == nil
	rep.Errors = append(rep.Errors, s.Errors...)
	if perr != nil {
		rep.Errors = append(rep.Errors, "publisher: "+perr.Error())
	}
	if !rep.ServerAlive {
		rep.Crashes = 1
		rep.Failures = append(rep.Failures, "the server died or stopped answering /berth/health")
	}
	if !rep.PublisherOK {
		rep.Failures = append(rep.Failures, "the legitimate publisher was cut off: "+perr.Error())
	}
	if rep.ReadersOK < cfg.Readers {
		rep.Failures = append(rep.Failures, fmt.Sprintf("%d of %d legitimate readers ended early", cfg.Readers-rep.ReadersOK, cfg.Readers))
	}
	if rep.ReaderLost > 0 {
		rep.Failures = append(rep.Failures, fmt.Sprintf("the legitimate readers lost %d packets", rep.ReaderLost))
	}
	if !rep.BackToBaseline {
		rep.Failures = append(rep.Failures, fmt.Sprintf("resources not back to baseline after %s: before %+v, after %+v", cfg.Settle, rep.Before, rep.After))
	}
	return rep, nil
}

func peak(a, b ChaosResources) ChaosResources {
	return ChaosResources{Goroutines: max(a.Goroutines, b.Goroutines), FDs: max(a.FDs, b.FDs), RSSKiB: max(a.RSSKiB, b.RSSKiB)}
}

// isRefusal reports a connection the server refused or reset before we
// could write: a connection limit doing its job, counted apart.
func isRefusal(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || (err != nil && strings.Contains(err.Error(), "connection refused"))
}
