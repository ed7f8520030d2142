package record

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// ErrBadArgument is returned for a period, name or path that is not one a
// recording has (and could climb out of the recordings' root).
var ErrBadArgument = errors.New("bad argument")

var (
	monthRE = regexp.MustCompile(`^\d{4}-\d{2}$`)
	dayRE   = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
)

// safeName refuses what could climb out of a directory: empty names,
// dot names, separators.
func safeName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, `/\`+"\x00") && !strings.HasPrefix(s, ".")
}

// safeApp allows an app with slashes (ZLMediaKit's apps may nest) but no
// part that is empty or climbs.
func safeApp(s string) bool {
	for _, part := range strings.Split(s, "/") {
		if !safeName(part) {
			return false
		}
	}
	return true
}

// StreamDir is the directory of a stream's MP4 recordings, with root the
// customized path when one is given (ZLMediaKit's getRecordPath).
func (m *Manager) StreamDir(app, stream, customRoot string) (string, error) {
	if !safeApp(app) || !safeName(stream) {
		return "", fmt.Errorf("%w: app %q and stream %q must be plain names", ErrBadArgument, app, stream)
	}
	set := m.Settings()
	root := set.Root
	if customRoot != "" {
		root = customRoot
	}
	return streamDir(root, set.AppName, app, stream) + string(filepath.Separator), nil
}

// List is getMp4RecordFile: with a period YYYY-MM the stream's days of
// that month ("2026-12-04"), with YYYY-MM-DD that day's files
// ("12-00-00.mp4"), as ZLMediaKit answers; dir is the directory listed (its
// rootPath). Files still being written (hidden) are not listed.
func (m *Manager) List(app, stream, period, customRoot string) (dir string, paths []string, err error) {
	dir, err = m.StreamDir(app, stream, customRoot)
	if err != nil {
		return "", nil, err
	}
	wantFiles := dayRE.MatchString(period)
	if !wantFiles && !monthRE.MatchString(period) {
		return "", nil, fmt.Errorf("%w: period %q is neither YYYY-MM (list days) nor YYYY-MM-DD (list files)", ErrBadArgument, period)
	}
	if wantFiles {
		dir = filepath.Join(dir, period) + string(filepath.Separator)
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return dir, nil, err
	}
	paths = []string{}
	for _, e := range entries {
		name := e.Name()
		switch {
		case wantFiles && !e.IsDir() && !strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".mp4"):
			paths = append(paths, name)
		case !wantFiles && e.IsDir() && strings.HasPrefix(name, period) && dayRE.MatchString(name):
			paths = append(paths, name)
		}
	}
	sort.Strings(paths)
	return dir, paths, nil
}

// Delete is deleteRecordDirectory: it removes a stream's day of
// recordings (period YYYY-MM-DD), or one file of it (name). A file being
// written is kept (its recording goes on). It returns what it removed.
func (m *Manager) Delete(app, stream, period, name, customRoot string) (string, error) {
	dir, err := m.StreamDir(app, stream, customRoot)
	if err != nil {
		return "", err
	}
	if !dayRE.MatchString(period) {
		return "", fmt.Errorf("%w: period %q is not a day, YYYY-MM-DD", ErrBadArgument, period)
	}
	day := filepath.Join(dir, period)
	if name != "" {
		if !safeName(name) {
			return "", fmt.Errorf("%w: name %q is not a file name", ErrBadArgument, name)
		}
		p := filepath.Join(day, name)
		return p, os.Remove(p)
	}
	entries, err := os.ReadDir(day)
	if err != nil {
		return day, err
	}
	var firstErr error
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue // in progress
		}
		if err := os.RemoveAll(filepath.Join(day, e.Name())); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	os.Remove(day) // only when empty: a file in progress keeps it
	return day, firstErr
}
