package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Proxy is one pull: a goroutine that runs source sessions one after the
// other, with a backoff between failures, into one outlet (outlet.go).
type Proxy struct {
	m    *Manager
	key  string
	spec Spec
	kind sourceKind
	out  *outlet

	mu        sync.Mutex
	state     State
	retries   int
	cause     string
	since     time.Time
	liveSince time.Time
	cancel    context.CancelFunc
	done      chan struct{} // closed when the run goroutine ends; nil when none runs
	stopTimer *time.Timer   // on demand / auto close: the no-reader delay
	leftOut   string        // the source's medias last logged as left out (source_rtsp.go)
	joined    string        // the multicast groups last logged as joined (source_rtsp.go)
}

func newProxy(m *Manager, key string, spec Spec) *Proxy {
	k, _ := kindOf(spec.URL)
	p := &Proxy{m: m, key: key, spec: spec, kind: k, since: time.Now()}
	p.out = &outlet{p: p}
	if spec.OnDemand {
		p.state = StateIdle
	} else {
		p.state = StateConnecting
	}
	return p
}

// Info returns the proxy's status.
func (p *Proxy) Info() Info {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Info{Key: p.key, Path: p.spec.Path, URL: Redact(p.spec.URL), State: p.state, Retries: p.retries,
		Cause: p.cause, Since: p.since, LiveSince: p.liveSince, OnDemand: p.spec.OnDemand, Spec: p.spec,
		Bytes: p.out.bytes.Load()}
}

// start runs the pull unless it runs already.
func (p *Proxy) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	p.state, p.since, p.retries, p.cause = StateConnecting, time.Now(), 0, ""
	go p.run(ctx, p.done)
}

// stop ends the pull and waits for it; the stream ends at once.
func (p *Proxy) stop(why string) {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	if p.stopTimer != nil {
		p.stopTimer.Stop()
		p.stopTimer = nil
	}
	p.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	p.out.drop()
	p.mu.Lock()
	p.cancel, p.done = nil, nil
	p.state, p.cause, p.liveSince = StateStopped, why, time.Time{}
	if p.spec.OnDemand && why != "deleted" && why != "server shutting down" {
		p.state = StateIdle
	}
	p.mu.Unlock()
}

func (p *Proxy) setState(s State, retries int, cause string) {
	p.mu.Lock()
	p.state, p.retries, p.cause = s, retries, cause
	if s == StateLive {
		p.liveSince = time.Now()
	} else {
		p.liveSince = time.Time{}
	}
	p.mu.Unlock()
}

// live is called by a session once its first frame went out.
func (p *Proxy) live() {
	p.setState(StateLive, 0, "")
	p.m.log().Info("pull live", "key", p.key, "url", Redact(p.spec.URL))
}

// stableAfter is how long a session must have been live for the next
// failure to start the backoff over.
const stableAfter = 10 * time.Second

// run is the pull's life: sessions with a backoff between failures, until
// ctx ends or retry_count is spent.
func (p *Proxy) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	log := p.m.log().With("key", p.key, "url", Redact(p.spec.URL))
	failures := 0
	lastCause := ""
	for {
		began := time.Now()
		err := p.session(ctx)
		if ctx.Err() != nil {
			return
		}
		wasLive := p.out.sessionLive()
		if wasLive && time.Since(began) >= stableAfter {
			failures = 0
		}
		failures++
		cause := Explain(err, p.spec.URL)
		// Readers stay on the stream while the source comes back; past
		// the grace time they are told it ended.
		p.out.armGrace(p.m.grace(), log)
		if p.spec.RetryCount >= 0 && failures > p.spec.RetryCount {
			p.out.drop()
			p.setState(StateStopped, failures, cause)
			log.Error("pull stopped: the source failed and retry_count is spent", "cause", cause,
				"retry_count", p.spec.RetryCount, "fix", "check the source, then add the proxy again (or use retry_count=-1 to retry forever)")
			return
		}
		wait := p.backoff(failures)
		p.setState(StateRetrying, failures, cause)
		// A source that stays away is retried forever: its line comes at
		// WARN for the first attempts, when the cause changes and every
		// tenth time, at DEBUG otherwise (the status shows every retry).
		level := slog.LevelDebug
		if failures <= 3 || cause != lastCause || failures%10 == 0 {
			level = slog.LevelWarn
		}
		lastCause = cause
		log.Log(ctx, level, "pull failed; retrying", "cause", cause, "attempt", failures, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backoff is the wait before retry n (1-based): BackoffMin doubling up to
// BackoffMax.
func (p *Proxy) backoff(n int) time.Duration {
	lo, hi := p.m.BackoffMin, p.m.BackoffMax
	if lo <= 0 {
		lo = time.Second
	}
	if hi <= 0 {
		hi = 20 * time.Second
	}
	return Backoff(n, lo, hi)
}

// Backoff is lo doubled n-1 times, capped at hi.
func Backoff(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// session runs one connection to the source until it fails.
func (p *Proxy) session(ctx context.Context) error {
	p.out.newSession()
	var err error
	switch p.kind {
	case srcRTSP:
		err = p.pullRTSP(ctx)
	case srcRTMP:
		err = p.pullRTMP(ctx)
	case srcFLV:
		err = p.pullFLV(ctx)
	case srcHLS:
		err = p.pullHLS(ctx)
	case srcSRT:
		err = p.pullSRT(ctx)
	default:
		err = errors.New("no client for this source")
	}
	if err == nil {
		err = errors.New("the source ended the stream")
	}
	return err
}

// errStreamClosed is a session's end when the pulled stream was closed on
// this server (close_streams, a takeover).
var errStreamClosed = errors.New("the stream was closed on this server (close_stream or a takeover)")

// errNoTracks is a source whose description has nothing Berth can carry.
var errNoTracks = fmt.Errorf("the source has no playable track")
