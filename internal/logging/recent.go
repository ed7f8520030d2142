package logging

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Record is one remembered log line, flattened for JSON: the status page
// shows the last warnings and errors without reading the log file.
type Record struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
	Attrs   string    `json:"attrs,omitempty"` // "key=value key=value", as the text log writes them
}

// Recent remembers the last records at or above a level (WARN by default)
// in a fixed-size ring. It is shared by every handler Wrap returns, so a
// logger's With and WithGroup children feed the same ring.
type Recent struct {
	Min slog.Level // records below it are not kept; the zero value is INFO, so set it (NewRecent does)

	mu    sync.Mutex
	ring  []Record
	next  int    // where the next record goes
	total uint64 // records kept over the ring's life, including those overwritten
}

// NewRecent returns a ring of the last n WARN and ERROR records.
func NewRecent(n int) *Recent {
	if n < 1 {
		n = 1
	}
	return &Recent{Min: slog.LevelWarn, ring: make([]Record, 0, n)}
}

// Records returns the kept records, oldest first, and how many were kept
// in all (more than len(records) once the ring has wrapped).
func (r *Recent) Records() (records []Record, total uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Record, 0, len(r.ring))
	if len(r.ring) == cap(r.ring) {
		out = append(out, r.ring[r.next:]...)
		out = append(out, r.ring[:r.next]...)
	} else {
		out = append(out, r.ring...)
	}
	return out, r.total
}

func (r *Recent) add(rec Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total++
	if len(r.ring) < cap(r.ring) {
		r.ring = append(r.ring, rec)
		return
	}
	r.ring[r.next] = rec
	r.next = (r.next + 1) % len(r.ring)
}

// Wrap returns a handler that passes every record to next and keeps those
// at or above r.Min in r, whether or not next's level lets them through.
func (r *Recent) Wrap(next slog.Handler) slog.Handler {
	return &recentHandler{next: next, recent: r}
}

type recentHandler struct {
	next   slog.Handler
	recent *Recent
	prefix string // attributes from With, already formatted
	group  string // the open groups, "a.b." ready to prefix keys
}

func (h *recentHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.recent.Min || h.next.Enabled(ctx, l)
}

func (h *recentHandler) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Level >= h.recent.Min {
		var b strings.Builder
		b.WriteString(h.prefix)
		rec.Attrs(func(a slog.Attr) bool {
			appendAttr(&b, h.group, a)
			return true
		})
		h.recent.add(Record{Time: rec.Time, Level: levelName(rec.Level), Message: rec.Message, Attrs: b.String()})
	}
	if !h.next.Enabled(ctx, rec.Level) {
		return nil
	}
	return h.next.Handle(ctx, rec)
}

func (h *recentHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.prefix)
	for _, a := range as {
		appendAttr(&b, h.group, a)
	}
	return &recentHandler{next: h.next.WithAttrs(as), recent: h.recent, prefix: b.String(), group: h.group}
}

func (h *recentHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &recentHandler{next: h.next.WithGroup(name), recent: h.recent, prefix: h.prefix, group: h.group + name + "."}
}

// appendAttr writes " key=value" (the first without the space), groups
// flattened to dotted keys as the text handler does.
func appendAttr(b *strings.Builder, group string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		g := group
		if a.Key != "" {
			g += a.Key + "."
		}
		for _, ga := range a.Value.Group() {
			appendAttr(b, g, ga)
		}
		return
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	v := a.Value.String()
	if v == "" || strings.ContainsAny(v, " \t\"=") {
		v = quote(v)
	}
	b.WriteString(group + a.Key + "=" + v)
}

func quote(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}

func levelName(l slog.Level) string {
	if l <= LevelTrace {
		return "TRACE"
	}
	return l.String()
}
