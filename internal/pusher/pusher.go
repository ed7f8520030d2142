package pusher

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/berthmedia/berth/internal/hub"
)

// State is where a pusher is in its life.
type State uint8

const (
	StateWaiting    State = iota // its stream is not published (yet, or any more)
	StateConnecting              // dialling the target, ANNOUNCE/SETUP/RECORD or connect/publish
	StateLive                    // pushing
	StateRetrying                // the last attempt failed; the next one comes after a backoff
	StateStopped                 // deleted, or it gave up after retry_count failures
)

func (s State) String() string {
	switch s {
	case StateWaiting:
		return "waiting for the stream"
	case StateConnecting:
		return "connecting"
	case StateLive:
		return "live"
	case StateRetrying:
		return "retrying"
	case StateStopped:
		return "stopped"
	}
	return "state?"
}

// Info is a pusher as listStreamPusherProxy and the status page show it.
type Info struct {
	Key       string
	Spec      Spec
	State     State
	Cause     string    // why the last attempt failed, in plain words ("" if none did)
	Attempt   int       // failed attempts in a row: "retrying N"
	Republish int       // sessions started after the first (ZLMediaKit's rePublishCount)
	Created   time.Time // when it was added
	LiveSince time.Time // start of the current session; zero unless live
	Bytes     uint64    // media bytes pushed over every session
	// SessionBytes is what the current session pushed (0 unless live).
	SessionBytes uint64
}

// Status is the state in words: "live", "retrying 3: connection refused",
// "stopped: ...".
func (i Info) Status() string {
	switch {
	case i.State == StateRetrying:
		return "retrying " + strconv.Itoa(i.Attempt) + ": " + i.Cause
	case i.State == StateStopped && i.Cause != "":
		return "stopped: " + i.Cause
	}
	return i.State.String()
}

// Backoff is the wait before retry n (1, 2, ...): 1 s doubling up to 30 s,
// so a target that is down for a while is asked twice a minute, and one
// that blinked is back within a second.
func Backoff(n int) time.Duration {
	const first, ceiling = time.Second, 30 * time.Second
	d := first
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}

const (
	// streamPoll is how often a pusher waiting for its stream looks for it.
	// The hub's waiting subscribe would tell on_stream_not_found each time,
	// and a pusher is no player asking for a stream.
	streamPoll = 200 * time.Millisecond
	// stableAfter is how long a session must have been live for its end to
	// count as a new outage (backoff from 1 s again) rather than one more
	// failure of a flapping target.
	stableAfter = 10 * time.Second
	readBatch   = 64
)

// Pusher pushes one stream to one destination until deleted.
type Pusher struct {
	spec   Spec
	key    string
	hub    *hub.Hub
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
	ts     TSOpener // the shared MPEG-TS muxers, for SRT targets

	mu    sync.Mutex
	info  Info
	cur   *hub.Reader // the live session's reader, for its bytes
	bytes uint64      // bytes of the sessions that ended
}

func newPusher(h *hub.Hub, log *slog.Logger, spec Spec) *Pusher {
	key := spec.Key()
	return &Pusher{spec: spec, key: key, hub: h, done: make(chan struct{}),
		log:  log.With("pusher", key, "path", spec.Path(), "target", Redact(spec.DstURL)),
		info: Info{Key: key, Spec: spec, Created: time.Now()}}
}

// Info returns the pusher's state now.
func (p *Pusher) Info() Info {
	p.mu.Lock()
	defer p.mu.Unlock()
	in := p.info
	in.Bytes = p.bytes
	if p.cur != nil {
		in.SessionBytes = p.cur.Bytes()
		in.Bytes += in.SessionBytes
	}
	return in
}

func (p *Pusher) set(s State, cause string, attempt int) {
	p.mu.Lock()
	p.info.State, p.info.Cause, p.info.Attempt = s, cause, attempt
	if s != StateLive {
		p.info.LiveSince = time.Time{}
	}
	p.mu.Unlock()
}

// run is the pusher's life: wait for the stream, push it, and on a failure
// retry after a backoff; when the stream ends, wait for it again.
func (p *Pusher) run(ctx context.Context) {
	defer close(p.done)
	// failures counts attempts in a row that failed, for retry_count: a
	// session that went live ends the row, as in ZLMediaKit. backoff is the
	// retry number the wait is taken from: it starts again only after a
	// session that stayed live, so a target that takes the stream and drops
	// it at once is not asked every second.
	failures, backoff, sessions := 0, 0, 0
	for {
		st := p.waitStream(ctx)
		if st == nil {
			p.set(StateStopped, "", 0)
			return
		}
		p.set(StateConnecting, p.Info().Cause, failures)
		if sessions > 0 {
			p.mu.Lock()
			p.info.Republish++
			p.mu.Unlock()
		}
		sessions++
		live, err := p.session(ctx, st)
		if ctx.Err() != nil {
			p.set(StateStopped, "", 0)
			return
		}
		if st.Ended() {
			// The stream ended, not the target: push the path's next
			// publish (ZLMediaKit's pusher would stop here; docs/pusher.md).
			p.log.Info("pusher's stream ended; waiting for it to be published again")
			failures, backoff = 0, 0
			continue
		}
		if live > 0 {
			failures = 0
		}
		if live >= stableAfter {
			backoff = 0
		}
		failures++
		backoff++
		cause := Cause(err)
		if p.spec.Retries >= 0 && failures > p.spec.Retries {
			p.set(StateStopped, cause, failures)
			p.log.Error("pusher gave up: "+cause, "attempts", failures, "retry_count", p.spec.Retries, "err", err,
				"fix", "fix the target, then add the pusher again (retry_count=-1 retries forever)")
			return
		}
		delay := Backoff(backoff)
		p.set(StateRetrying, cause, failures)
		p.log.Warn("push failed; retrying in "+delay.String()+": "+cause, "attempt", failures, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			p.set(StateStopped, "", 0)
			return
		}
	}
}

// waitStream returns the live stream of the pusher's path, waiting for it
// to be published; nil when ctx ends first.
func (p *Pusher) waitStream(ctx context.Context) *hub.Stream {
	told := false
	tick := time.NewTicker(streamPoll)
	defer tick.Stop()
	for {
		if st := p.hub.Get(p.spec.Path()); st != nil && !st.Ended() {
			return st
		}
		if !told {
			told = true
			p.set(StateWaiting, "", 0)
			p.log.Info("pusher waiting for its stream to be published")
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil
		}
	}
}

// target is one session with the destination server, set up and ready
// for media.
type target interface {
	kind() hub.Kind                  // the frames it takes
	write(frames []*hub.Frame) error // sends a batch
	failed() <-chan struct{}         // closed when the connection fails
	err() error                      // why it failed
	remote() string                  // host:port, for the reader's origin
	close()                          // ends the session (TEARDOWN, close)
	abort()                          // drops the connection at once, failing a write blocked on it
}

// session runs one attempt: set the target up for st, then push until the
// stream ends, the target fails or ctx ends. live is how long it pushed.
func (p *Pusher) session(ctx context.Context, st *hub.Stream) (live time.Duration, err error) {
	var t target
	switch p.spec.Schema {
	case "srt":
		return p.sessionSRT(ctx, st) // the shared TS muxer, not frames (srt.go)
	case "rtsp":
		t, err = dialRTSP(ctx, p.spec, st)
	default:
		t, err = dialRTMP(ctx, p.spec, st)
	}
	if err != nil {
		return 0, err
	}
	defer t.close()
	r, err := st.Subscribe(t.kind(), hub.Origin{Proto: p.spec.Schema, Remote: t.remote(), ID: p.key})
	if err != nil {
		return 0, err
	}
	start := time.Now()
	p.mu.Lock()
	p.info.State, p.info.Attempt, p.info.LiveSince = StateLive, 0, start
	p.cur = r
	p.mu.Unlock()
	p.log.Info("pusher live", "reader_kind", t.kind().String())
	defer func() {
		r.Close()
		p.mu.Lock()
		p.bytes += r.Bytes()
		p.cur = nil
		p.mu.Unlock()
		live = time.Since(start)
	}()
	quit := make(chan struct{})
	defer close(quit)
	go func() {
		// A target that fails or a delete ends the blocked Read. A delete
		// lets the session end politely (TEARDOWN) but does not wait more
		// than a second for a write to a target that stopped reading.
		select {
		case <-t.failed():
		case <-ctx.Done():
			r.Close()
			abort := time.NewTimer(time.Second)
			defer abort.Stop()
			select {
			case <-quit:
			case <-abort.C:
				t.abort()
			}
		case <-quit:
		}
		r.Close()
	}()
	frames := make([]*hub.Frame, readBatch)
	for {
		n, err := r.Read(frames)
		if err != nil {
			if errors.Is(err, hub.ErrReaderClosed) {
				if terr := t.err(); terr != nil {
					return 0, terr
				}
				if ctx.Err() != nil {
					return 0, ctx.Err()
				}
			}
			return 0, err
		}
		if err := t.write(frames[:n]); err != nil {
			if terr := t.err(); terr != nil {
				err = terr // the read side often knows better (EOF, the server's refusal)
			}
			return 0, err
		}
		clear(frames[:n])
	}
}
