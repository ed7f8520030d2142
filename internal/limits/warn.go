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
	"sync"
	"time"
)

// Warner logs a warning at most once per Every for each key, with the number
// of the same warnings it held back since the last line: a flood of abusive
// clients costs one line every few seconds, not one per client, and the first
// refusal is always logged at once. The zero value (with Log set) works.
type Warner struct {
	Log   *slog.Logger  // nil: discard
	Every time.Duration // 0: 10 s

	mu   sync.Mutex
	last map[string]*warned
}

type warned struct {
	at   time.Time
	held int
}

// maxWarnKeys bounds the keys remembered; keys are causes ("per-IP cap on
// rtsp"), not clients, so this is only a guard.
const maxWarnKeys = 1024

// Warn logs msg with args under key unless a line with the same key went
// out less than Every ago; it reports whether it logged.
func (w *Warner) Warn(key, msg string, args ...any) bool {
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
