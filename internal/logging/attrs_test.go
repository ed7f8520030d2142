package logging

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"testing"
)

// TestAttrsWritesWhatWithWrites: a line logged through Attrs is the line
// the same logger built by With writes (attributes first, then the
// call's), in the text output and in the recent-lines ring; lines below
// the level are dropped, and the zero value drops everything.
func TestAttrsWritesWhatWithWrites(t *testing.T) {
	stamp := regexp.MustCompile(`time=\S+ `)
	cases := []struct {
		name  string
		level slog.Level
		log   func(l lineWriter)
	}{
		{"info with args", slog.LevelInfo, func(l lineWriter) {
			l.Info("play started", "path", "live/s", "tracks", 2)
		}},
		{"warn with an attr and a quoted value", slog.LevelInfo, func(l lineWriter) {
			l.Warn("slow reader dropped", slog.String("reason", "took nothing for 10s"))
		}},
		{"debug below the level", slog.LevelInfo, func(l lineWriter) {
			l.Debug("hidden", "k", 1)
		}},
		{"debug at debug", slog.LevelDebug, func(l lineWriter) {
			l.Debug("shown", "k", 1)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var withOut, attrsOut bytes.Buffer
			withRecent, attrsRecent := NewRecent(4), NewRecent(4)
			withRecent.Min, attrsRecent.Min = slog.LevelInfo, slog.LevelInfo
			withBase := slog.New(withRecent.Wrap(New(&withOut, tc.level).Handler()))
			attrsBase := slog.New(attrsRecent.Wrap(New(&attrsOut, tc.level).Handler()))

			tc.log(withBase.With("conn", uint64(7), "remote", "127.0.0.1:5000"))
			tc.log(WithAttrs(attrsBase, slog.Uint64("conn", 7), slog.String("remote", "127.0.0.1:5000")))

			want, got := stamp.ReplaceAllString(withOut.String(), ""), stamp.ReplaceAllString(attrsOut.String(), "")
			if got != want {
				t.Errorf("Attrs wrote\n%q\nWith wrote\n%q", got, want)
			}
			wr, _ := withRecent.Records()
			ar, _ := attrsRecent.Records()
			if len(wr) != len(ar) || (len(wr) == 1 && (wr[0].Attrs != ar[0].Attrs || wr[0].Message != ar[0].Message)) {
				t.Errorf("recent lines: Attrs %+v, With %+v", ar, wr)
			}
		})
	}
	var zero Attrs
	zero.Error("dropped")
	if zero.Enabled(context.Background(), slog.LevelError) {
		t.Error("the zero Attrs is enabled")
	}
}

// lineWriter is what *slog.Logger and Attrs share.
type lineWriter interface {
	Info(string, ...any)
	Warn(string, ...any)
	Debug(string, ...any)
}

// BenchmarkConnLogger: what a connection's logger costs to build, by With
// and by WithAttrs (issue 14: memory per viewer).
func BenchmarkConnLogger(b *testing.B) {
	base := slog.New(NewRecent(4).Wrap(New(&bytes.Buffer{}, slog.LevelInfo).Handler()))
	b.Run("With", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			sink = base.With("conn", uint64(i), "remote", "127.0.0.1:5000")
		}
	})
	b.Run("WithAttrs", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			sinkAttrs = WithAttrs(base, slog.Uint64("conn", uint64(i)), slog.String("remote", "127.0.0.1:5000"))
		}
	})
}

var (
	sink      *slog.Logger
	sinkAttrs Attrs
)
