package logging

import (
	"context"
	"log/slog"
	"runtime"
	"time"
)

// Attrs is a logger that adds its attributes to each line it writes,
// where slog.Logger.With formats them once, up front. With costs a copy
// of the handler chain and the attributes pre-formatted (about 0.7 KB
// with Berth's handlers) for the life of what it logs for; a playing
// connection writes two or three lines in that life, so a server with
// thousands of players keeps megabytes of log state for lines it will
// mostly never write (issue 14: memory per viewer). Attrs keeps only its
// attributes (no allocation for ints and strings) and does the work when
// a line is written. The lines are the same: its attributes first, then
// the call's, and the caller's source position when the handler adds it.
//
// The zero value drops everything.
type Attrs struct {
	base  *slog.Logger
	attrs []slog.Attr
}

// WithAttrs returns a logger writing to base with attrs on every line.
func WithAttrs(base *slog.Logger, attrs ...slog.Attr) Attrs {
	return Attrs{base: base, attrs: attrs}
}

// Enabled reports whether a line at level would be written.
func (l Attrs) Enabled(ctx context.Context, level slog.Level) bool {
	return l.base != nil && l.base.Enabled(ctx, level)
}

// Log writes a line at level; args are key-value pairs or slog.Attrs, as
// for slog.Logger.Log.
func (l Attrs) Log(ctx context.Context, level slog.Level, msg string, args ...any) {
	l.log(ctx, level, msg, args)
}

// Debug writes a line at slog.LevelDebug.
func (l Attrs) Debug(msg string, args ...any) {
	l.log(context.Background(), slog.LevelDebug, msg, args)
}

// Info writes a line at slog.LevelInfo.
func (l Attrs) Info(msg string, args ...any) {
	l.log(context.Background(), slog.LevelInfo, msg, args)
}

// Warn writes a line at slog.LevelWarn.
func (l Attrs) Warn(msg string, args ...any) {
	l.log(context.Background(), slog.LevelWarn, msg, args)
}

// Error writes a line at slog.LevelError.
func (l Attrs) Error(msg string, args ...any) {
	l.log(context.Background(), slog.LevelError, msg, args)
}

// Trace writes a line at LevelTrace.
func (l Attrs) Trace(msg string, args ...any) {
	l.log(context.Background(), LevelTrace, msg, args)
}

// log is the one frame between a caller and the handler, so the source
// position (runtime.Callers skips itself, log and the exported method) is
// the caller's, as slog's own wrappers do it.
func (l Attrs) log(ctx context.Context, level slog.Level, msg string, args []any) {
	if !l.Enabled(ctx, level) {
		return
	}
	var pcs [1]uintptr
	runtime.Callers(3, pcs[:])
	r := slog.NewRecord(time.Now(), level, msg, pcs[0])
	r.AddAttrs(l.attrs...)
	r.Add(args...)
	_ = l.base.Handler().Handle(ctx, r)
}
