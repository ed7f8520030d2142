package record

import (
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// RetainEvery is how often the retention limit is applied while Berth runs
// (and once at start).
const RetainEvery = time.Hour

// Retain removes the day directories (<...>/<stream>/<YYYY-MM-DD>) under
// <root>/<appName> older than maxDays, today counting as the first day,
// oldest first, logging each; a day that still holds a file being written
// keeps that file. maxDays <= 0 keeps everything. It returns the
// directories removed.
func Retain(root, appName string, maxDays int, now time.Time, log *slog.Logger) []string {
	if maxDays <= 0 {
		return nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	y, m, d := now.Date()
	cutoff := time.Date(y, m, d, 0, 0, 0, 0, now.Location()).AddDate(0, 0, -(maxDays - 1))
	type day struct {
		path string
		date time.Time
	}
	var old []day
	filepath.WalkDir(filepath.Join(root, appName), func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.IsDir() || !dayRE.MatchString(e.Name()) {
			return nil
		}
		t, perr := time.ParseInLocation("2006-01-02", e.Name(), now.Location())
		if perr == nil && t.Before(cutoff) {
			old = append(old, day{p, t})
		}
		return filepath.SkipDir
	})
	sort.Slice(old, func(i, j int) bool { return old[i].date.Before(old[j].date) })
	var removed []string
	for _, d := range old {
		entries, err := os.ReadDir(d.path)
		if err != nil {
			continue
		}
		var firstErr error
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				continue // being written (or left by a crash: Recover finalises it first)
			}
			if err := os.RemoveAll(filepath.Join(d.path, e.Name())); err != nil && firstErr == nil {
				firstErr = err
			}
		}
		if firstErr == nil && os.Remove(d.path) != nil {
			continue // a file being written keeps its day
		}
		if firstErr != nil {
			log.Warn("recordings older than [record] maxDays could not all be removed", "dir", d.path, "err", firstErr,
				"fix", "check the directory's permissions")
			continue
		}
		log.Info("recordings older than [record] maxDays removed", "dir", d.path, "max_days", maxDays)
		removed = append(removed, d.path)
	}
	return removed
}
