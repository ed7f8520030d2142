package config

import (
	"errors"
	"fmt"
	"strings"
)

// Keys lists every key Berth has as "section.key" (ZLMediaKit's spelling,
// the form of its getServerConfig/setServerConfig API), in table order.
func Keys() []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k.section+"."+k.name)
	}
	return out
}

// Values returns every key Berth has, "section.key" -> value in the form
// the file takes.
func (c *Config) Values() map[string]string {
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		out[k.section+"."+k.name] = k.get(c)
	}
	return out
}

// ErrNotBerthKey is returned by Set for a key Berth does not have; it wraps
// ErrZLMediaKitOnly when ZLMediaKit has the key (a feature Berth lacks).
var (
	ErrNotBerthKey    = errors.New("not a key Berth has")
	ErrZLMediaKitOnly = fmt.Errorf("a ZLMediaKit key Berth does not use (yet): %w", ErrNotBerthKey)
)

// Set sets one key named "section.key" from its file form, validated as a
// line of the file would be. Errors are *Error naming the key.
func (c *Config) Set(name, value string) error {
	section, key, ok := strings.Cut(name, ".")
	if !ok {
		return &Error{Key: name, Err: errors.New(`a key is named "section.key", for example rtsp.port`)}
	}
	kd := lookup(section, key)
	if kd == nil {
		err := ErrNotBerthKey
		if IsZLMediaKitKey(section, key) {
			err = ErrZLMediaKitOnly
		}
		return &Error{Key: "[" + section + "] " + key, Err: err}
	}
	if err := kd.set(c, strings.TrimSpace(value)); err != nil {
		return &Error{Key: "[" + kd.section + "] " + kd.name, Err: err}
	}
	return nil
}

// CanonicalKey returns Berth's spelling of "section.key" (keys match
// case-insensitively) and whether Berth has it.
func CanonicalKey(name string) (string, bool) {
	section, key, _ := strings.Cut(name, ".")
	if kd := lookup(section, key); kd != nil {
		return kd.section + "." + kd.name, true
	}
	return name, false
}

// Clone returns a copy of c that shares nothing with it: every key is set
// again from its value, so slices (users) are fresh.
func (c *Config) Clone() *Config {
	n := *c
	for _, k := range keys {
		k.set(&n, k.get(c))
	}
	n.Proxy.Pulls = append([]Pull(nil), c.Proxy.Pulls...)
	n.Notes = append([]Note(nil), c.Notes...)
	n.Warnings = append([]string(nil), c.Warnings...)
	return &n
}
