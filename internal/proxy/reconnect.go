package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
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
	// src is the source URL in use: spec.URL or one of its Fallbacks. The
	// run goroutine sets it (under mu, for Info) before each session, which
	// reads it without the lock.
	src string

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
	p := &Proxy{m: m, key: key, spec: spec, kind: k, src: spec.URL, since: time.Now()}
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
	return Info{Key: p.key, Path: p.spec.Path, URL: Redact(p.src), State: p.state, Retries: p.retries,
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
	p.m.log().Info("pull live", "key", p.key, "url", Redact(p.src))
}

// stableAfter is how long a session must have been live for the next
// failure to start the backoff over.
const stableAfter = 10 * time.Second

// run is the pull's life: sessions with a backoff between failures, until
// ctx ends, retry_count is spent or the source stayed away GiveUpAfter.
// With Fallbacks, a failure moves to the next source at once and the
// backoff comes after a whole round.
func (p *Proxy) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	srcs := p.spec.sources()
	n := len(srcs)
	failures, at := 0, 0
	away := time.Now()             // since when no session has been live
	lastCause := make([]string, n) // per source, for the log level
	for {
		p.use(srcs[at])
		log := p.m.log().With("key", p.key, "url", Redact(p.src))
		began := time.Now()
		err := p.session(ctx)
		if ctx.Err() != nil {
			return
		}
		wasLive := p.out.sessionLive()
		if wasLive {
			away = time.Now()
			if time.Since(began) >= stableAfter {
				failures = 0
			}
		}
		failures++
		cause := Explain(err, p.src)
		// Readers stay on the stream while the source comes back; past
		// the grace time they are told it ended.
		p.out.armGrace(p.m.grace(), log)
		spent := p.spec.RetryCount >= 0 && failures > p.spec.RetryCount && failures >= n
		late := p.spec.GiveUpAfter > 0 && time.Since(away) >= p.spec.GiveUpAfter
		if spent || late {
			p.giveUp(log, failures, cause, late)
			return
		}
		// The next source right away while this round has untried ones; a
		// source that was live is tried again first (its origin restarted).
		failed := at // the source whose cause this is
		wait := time.Duration(0)
		if !wasLive {
			at = (at + 1) % n
		}
		if wasLive || failures%n == 0 {
			wait = p.backoff((failures + n - 1) / n)
		}
		p.setState(StateRetrying, failures, cause)
		// A source that stays away is retried forever: its line comes at
		// WARN for the first attempts (a single source) or the first
		// failure of each source, when the cause changes and every tenth
		// time, at DEBUG otherwise (the status shows every retry).
		level := slog.LevelDebug
		if (n == 1 && failures <= 3) || cause != lastCause[failed] || failures%10 == 0 {
			level = slog.LevelWarn
		}
		lastCause[failed] = cause
		log.Log(ctx, level, "pull failed; retrying", "cause", cause, "attempt", failures, "in", wait)
		if wait == 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// use makes u the source of the next session.
func (p *Proxy) use(u string) {
	k, _ := kindOf(u) // validated at Add
	p.mu.Lock()
	p.src, p.kind = u, k
	p.mu.Unlock()
}

// giveUp ends a pull whose retries are spent or whose source stayed away
// GiveUpAfter: its stream ends, and a Transient pull is removed.
func (p *Proxy) giveUp(log *slog.Logger, failures int, cause string, late bool) {
	p.out.drop()
	p.setState(StateStopped, failures, cause)
	fix := p.spec.Fix
	if fix == "" {
		fix = "check the source, then add the proxy again (or use retry_count=-1 to retry forever)"
	}
	msg := "pull stopped: the source failed and retry_count is spent"
	if late {
		msg = "pull stopped: the source stayed away longer than its readers wait"
	}
	args := []any{"cause", cause, "retry_count", p.spec.RetryCount, "fix", fix}
	if len(p.spec.Fallbacks) > 0 {
		tried := make([]string, 0, 1+len(p.spec.Fallbacks))
		for _, u := range p.spec.sources() {
			tried = append(tried, Redact(u))
		}
		args = append(args, "sources", strings.Join(tried, " "))
	}
	if p.spec.Transient {
		p.m.forget(p)
		log.Warn(msg, args...) // the next reader starts a new pull: not an operator's error yet
		return
	}
	log.Error(msg, args...)
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
