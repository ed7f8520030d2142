package logging

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

func TestRecentKeepsTheLastWarningsOldestFirst(t *testing.T) {
	r := NewRecent(3)
	var out bytes.Buffer
	log := slog.New(r.Wrap(slog.NewTextHandler(&out, nil)))
	log.Info("not kept")
	for i := range 5 {
		log.Warn(fmt.Sprintf("warning %d", i))
	}
	recs, total := r.Records()
	var got []string
	for _, rec := range recs {
		got = append(got, rec.Message)
	}
	if strings.Join(got, ",") != "warning 2,warning 3,warning 4" || total != 5 {
		t.Errorf("records %v total %d; want warnings 2..4 of 5", got, total)
	}
	if !strings.Contains(out.String(), "not kept") || !strings.Contains(out.String(), "warning 0") {
		t.Errorf("the wrapped handler did not get every record:\n%s", out.String())
	}
}

func TestRecentFormatsAttributesAsTheTextLog(t *testing.T) {
	r := NewRecent(4)
	log := slog.New(r.Wrap(slog.DiscardHandler)).With("proto", "rtsp").WithGroup("conn")
	log.Error("session failed", "remote", "1.2.3.4:5", "err", "broken pipe", slog.Group("g", "n", 1))
	recs, _ := r.Records()
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	want := `proto=rtsp conn.remote=1.2.3.4:5 conn.err="broken pipe" conn.g.n=1`
	if recs[0].Attrs != want || recs[0].Level != "ERROR" {
		t.Errorf("got %s %q; want ERROR %q", recs[0].Level, recs[0].Attrs, want)
	}
}

// A logger that writes only errors still shows warnings on the status page.
func TestRecentKeepsWarningsTheLogLevelHides(t *testing.T) {
	r := NewRecent(4)
	var out bytes.Buffer
	log := slog.New(r.Wrap(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelError})))
	log.Warn("port moved")
	if recs, _ := r.Records(); len(recs) != 1 || out.Len() != 0 {
		t.Errorf("records %v, log %q; want the warning kept and not written", recs, out.String())
	}
}

func TestRecentIsSafeForConcurrentUse(t *testing.T) {
	r := NewRecent(8)
	log := slog.New(r.Wrap(slog.DiscardHandler))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := log.With("g", g)
			for i := range 100 {
				l.Warn("w", "i", i)
				r.Records()
			}
		}()
	}
	wg.Wait()
	if recs, total := r.Records(); len(recs) != 8 || total != 400 {
		t.Errorf("%d records, total %d; want 8 of 400", len(recs), total)
	}
}
