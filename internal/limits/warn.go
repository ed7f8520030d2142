// Package limits holds Berth's limits against abuse that every protocol
// shares: the count of open connections (in total and per remote IP) that
// every TCP listener goes through, a token bucket per remote IP for the
// HTTP API, and the rate-limited warning each refusal logs.
//
// It knows no protocol and imports no Berth package, so protocol packages,
// internal/ports' users and internal/server can all use it.
package limits

import (
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Warner logs a warning at most once per Every for each cause, with the
// number of the same warnings it held back since the last line: a flood of
// abusive clients costs one line every few seconds, not one per client, and
// the first refusal is always logged at once. It counts every refusal by
// its limit, logged or not, for berth_limit_refusals_total. The zero value
// (with Log set) works.
type Warner struct {
	Log   *slog.Logger  // nil: count, do not log
	Every time.Duration // 0: 10 s

	mu     sync.Mutex
	last   map[string]*warned
	counts map[string]uint64
}

type warned struct {
	at   time.Time
	held int
}

// maxWarnKeys bounds the causes remembered; a cause is a limit and a scope
// ("general.max_connections_per_ip rtsp"), not a client, so this is only a
// guard.
const maxWarnKeys = 1024

// Warn counts one refusal under limit, the config key that caused it as
// "section.key" ("rtsp.header_timeout_sec"), and logs msg with args and
// limit unless a line of the same limit and scope (a listener, a port; ""
// for none) went out less than Every ago. It reports whether it logged.
func (w *Warner) Warn(limit, scope, msg string, args ...any) bool {
	if w == nil {
		return false
	}
	w.mu.Lock()
	if w.counts == nil {
		w.counts = map[string]uint64{}
	}
	w.counts[limit]++ // limits are config keys: a small fixed set
	w.mu.Unlock()
	return w.Hold(limit+" "+scope, msg, append(args, "limit", limit)...)
}

// Hold logs msg with args unless a line of the same key went out less than
// Every ago, and counts nothing: for warnings that are no limit's but that
// a flood of peers would repeat once each (malformed requests). It reports
// whether it logged.
func (w *Warner) Hold(key, msg string, args ...any) bool {
	if w == nil || w.Log == nil {
		return false
	}
	every := w.Every
	if every <= 0 {
		every = 10 * time.Second
	}
	now := time.Now()
	w.mu.Lock()
	if w.last == nil || len(w.last) >= maxWarnKeys {
		w.last = map[string]*warned{}
	}
	e := w.last[key]
	if e != nil && now.Sub(e.at) < every {
		e.held++
		w.mu.Unlock()
		return false
	}
	held := 0
	if e != nil {
		held = e.held
	}
	w.last[key] = &warned{at: now}
	w.mu.Unlock()
	if held > 0 {
		args = append(args, "same_since_last_line", held)
	}
	w.Log.Warn(msg, args...)
	return true
}

// Counts is the refusals counted so far by limit, cumulative.
func (w *Warner) Counts() map[string]uint64 {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]uint64, len(w.counts))
	for k, n := range w.counts {
		out[k] = n
	}
	return out
}

// Key is limit ("http.maxReqSize") as the config file spells it: "[http]
// maxReqSize", for the line that says what to raise.
func Key(limit string) string {
	section, key, ok := strings.Cut(limit, ".")
	if !ok {
		return limit
	}
	return "[" + section + "] " + key
}

// Own is a protocol server's Warner when it runs alone: the one the
// composition root shares, when set, else one of its own made on first use.
// The zero value is ready.
type Own struct {
	once sync.Once
	w    *Warner
}

// Get returns shared if non-nil, else the server's own Warner on log.
func (o *Own) Get(shared *Warner, log *slog.Logger) *Warner {
	if shared != nil {
		return shared
	}
	o.once.Do(func() { o.w = &Warner{Log: log} })
	return o.w
}
