package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// SetKeys rewrites the ini file at path so that each "section.key" of kv
// holds its value, the way a person would edit it: comments, blank lines,
// order, line endings, unknown keys and sections all stay; a key that is
// there gets its new value in place (every occurrence, since the last one
// wins when the file is read); a missing key goes after the last key of its
// section, or into a new section at the end. The file is replaced
// atomically (a temporary file next to it, then rename), so a crash leaves
// the old file or the new one, never half of each. setServerConfig uses it.
func SetKeys(path string, kv map[string]string) error {
	real, err := filepath.EvalSymlinks(path) // rename onto a symlink would replace the link, not the file
	if err != nil {
		return fmt.Errorf("config %s: cannot resolve the file to rewrite: %w", path, err)
	}
	src, err := os.ReadFile(real)
	if err != nil {
		return fmt.Errorf("config %s: cannot read it to rewrite: %w", path, err)
	}
	out, err := Rewrite(src, kv)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if bytes.Equal(out, src) {
		return nil
	}
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(real); err == nil {
		mode = fi.Mode().Perm()
	}
	dir := filepath.Dir(real)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(real)+".tmp-*")
	if err != nil {
		return fmt.Errorf("config %s: cannot write a temporary file in %s (%w); make the directory writable by Berth, which writes the new file next to the old one and renames it", path, dir, err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(out); err != nil {
		return fmt.Errorf("config %s: writing %s: %w", path, tmp.Name(), err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("config %s: chmod %s: %w", path, tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("config %s: sync %s: %w", path, tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("config %s: closing %s: %w", path, tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), real); err != nil {
		return fmt.Errorf("config %s: cannot replace it with the rewritten file: %w", path, err)
	}
	done = true
	return nil
}

// setting is one key to write.
type setting struct {
	section, key, value string
	found               bool
}

// Rewrite is SetKeys on the file's bytes.
func Rewrite(src []byte, kv map[string]string) ([]byte, error) {
	if len(kv) == 0 {
		return src, nil
	}
	var sets []*setting
	for name, v := range kv {
		section, key, ok := strings.Cut(name, ".")
		section, key = strings.TrimSpace(section), strings.TrimSpace(key)
		switch {
		case !ok || section == "" || key == "":
			return nil, fmt.Errorf("key %q: want section.key, for example rtsp.port", name)
		case strings.ContainsAny(section, "[]\r\n") || strings.ContainsAny(key, "=[]#;\r\n") || strings.TrimSpace(key) != key:
			return nil, fmt.Errorf("key %q: a section or key name cannot hold [ ] = # ; or a line break", name)
		case strings.ContainsAny(v, "\r\n"):
			return nil, fmt.Errorf("key %q: a value cannot span lines", name)
		}
		sets = append(sets, &setting{section: section, key: key, value: strings.TrimSpace(v)})
	}
	sort.Slice(sets, func(i, j int) bool { // map order must not decide the file's order
		if sets[i].section != sets[j].section {
			return sets[i].section < sets[j].section
		}
		return sets[i].key < sets[j].key
	})

	nl := "\n"
	if bytes.Contains(src, []byte("\r\n")) {
		nl = "\r\n"
	}
	text := string(src)
	endsWithNL := strings.HasSuffix(text, "\n")
	if endsWithNL {
		text = strings.TrimSuffix(text, "\n") // its "\r" goes with the last line's, below: once
	}
	var lines []string
	if len(src) > 0 {
		lines = strings.Split(text, "\n")
	}
	for i := range lines {
		if i < len(lines)-1 || endsWithNL { // a last line without "\n" has no CRLF to end it
			lines[i] = strings.TrimSuffix(lines[i], "\r")
		}
	}

	// One pass: replace values in place, and remember where each section's
	// last key is (in its last occurrence) for the keys to add.
	insertAfter := map[string]int{} // lower-case section -> line index
	section := ""
	for i, line := range lines {
		t := strings.TrimSpace(line)
		if i == 0 {
			t = strings.TrimSpace(strings.TrimPrefix(t, "\ufeff"))
		}
		if t == "" || t[0] == '#' || t[0] == ';' {
			continue
		}
		if t[0] == '[' {
			if end := strings.IndexByte(t, ']'); end > 0 {
				section = strings.TrimSpace(t[1:end])
				insertAfter[strings.ToLower(section)] = i
			}
			continue
		}
		eq := strings.IndexByte(line, '=')
		if eq < 0 {
			continue
		}
		key := strings.TrimSpace(strings.TrimPrefix(line[:eq], "\ufeff"))
		if section != "" {
			insertAfter[strings.ToLower(section)] = i
		}
		for _, s := range sets {
			if strings.EqualFold(s.section, section) && strings.EqualFold(s.key, key) {
				lines[i] = line[:eq+1] + spaceAfterEq(line[eq+1:]) + s.value
				s.found = true
			}
		}
	}

	adds := map[int][]string{} // after line index -> lines to insert
	var newSections []string
	var newOrder []string
	newKeys := map[string][]string{}
	for _, s := range sets {
		if s.found {
			continue
		}
		if at, ok := insertAfter[strings.ToLower(s.section)]; ok {
			adds[at] = append(adds[at], s.key+"="+s.value)
			continue
		}
		ls := strings.ToLower(s.section)
		if _, seen := newKeys[ls]; !seen {
			newOrder = append(newOrder, ls)
			newSections = append(newSections, s.section)
		}
		newKeys[ls] = append(newKeys[ls], s.key+"="+s.value)
	}

	var b strings.Builder
	for i, line := range lines {
		b.WriteString(line)
		b.WriteString(nl)
		for _, add := range adds[i] {
			b.WriteString(add)
			b.WriteString(nl)
		}
	}
	for i, ls := range newOrder {
		if b.Len() > 0 && !strings.HasSuffix(b.String(), nl+nl) {
			b.WriteString(nl)
		}
		b.WriteString("[" + newSections[i] + "]" + nl)
		for _, kv := range newKeys[ls] {
			b.WriteString(kv + nl)
		}
	}
	out := b.String()
	if !endsWithNL && len(newOrder) == 0 && len(adds) == 0 && len(lines) > 0 {
		out = strings.TrimSuffix(out, nl) // keep a file without a final newline that way
	}
	return []byte(out), nil
}

// spaceAfterEq keeps "key = value" styled files that way.
func spaceAfterEq(oldValue string) string {
	if strings.HasPrefix(oldValue, " ") || strings.HasPrefix(oldValue, "\t") {
		return oldValue[:1]
	}
	return ""
}

// errNoSuchKey is for tests of iniValue.
var errNoSuchKey = errors.New("no such key")

// iniValue returns the value the file gives section.key (the last
// occurrence wins, as in Parse), for tests and the fuzz target.
func iniValue(src []byte, section, key string) (string, error) {
	cur, val, found := "", "", false
	for i, line := range strings.Split(string(src), "\n") {
		t := strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if i == 0 {
			t = strings.TrimSpace(strings.TrimPrefix(t, "\ufeff"))
		}
		if t == "" || t[0] == '#' || t[0] == ';' {
			continue
		}
		if t[0] == '[' {
			if end := strings.IndexByte(t, ']'); end > 0 {
				cur = strings.TrimSpace(t[1:end])
			}
			continue
		}
		k, v, ok := strings.Cut(t, "=")
		if ok && strings.EqualFold(cur, section) && strings.EqualFold(strings.TrimSpace(k), key) {
			val, found = strings.TrimSpace(v), true
		}
	}
	if !found {
		return "", errNoSuchKey
	}
	return val, nil
}
