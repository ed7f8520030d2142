// Package logging builds Berth's slog logger: text lines to a writer, with a
// TRACE level below DEBUG for per-request protocol logs.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// LevelTrace sits below slog.LevelDebug. At this level protocol servers log
// every request and response head (RTSP), every command (RTMP).
const LevelTrace = slog.Level(-8)

// ParseLevel maps a config word to a level.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "trace":
		return LevelTrace, nil
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want trace, debug, info, warn or error)", s)
}

// New returns a logger writing text lines to w at level. Pass a
// *slog.LevelVar (see NewLevel) to change the level while running: a hot
// reload of [log] level sets it, and every logger derived with With follows.
// A plain slog.Level fixes it.
func New(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.LevelKey {
				if l, ok := a.Value.Any().(slog.Level); ok && l <= LevelTrace {
					a.Value = slog.StringValue("TRACE")
				}
			}
			return a
		},
	}))
}

// Discard is a logger that drops everything; for tests and library defaults.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Trace logs at LevelTrace.
func Trace(l *slog.Logger, msg string, args ...any) {
	l.Log(context.Background(), LevelTrace, msg, args...)
}

// TraceEnabled reports whether l would emit a TRACE record, so callers can skip
// formatting a request dump nobody will read.
func TraceEnabled(l *slog.Logger) bool {
	return l.Enabled(context.Background(), LevelTrace)
}

// NewLevel returns a level variable set from a config word ("info" when
// the word is not a level), for New and for a reload to change later.
func NewLevel(word string) *slog.LevelVar {
	v := new(slog.LevelVar)
	l, _ := ParseLevel(word)
	v.Set(l)
	return v
}
