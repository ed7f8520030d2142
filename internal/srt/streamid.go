// Package srt serves SRT (Secure Reliable Transport) on one UDP port with
// github.com/datarhei/gosrt: publishers send MPEG-TS (streamid m=publish),
// which is demuxed into a hub stream; players (m=request) get the stream's
// shared MPEG-TS muxer, from a keyframe on. See docs/srt.md.
package srt

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Mode is what an SRT caller asks for in its stream id.
type Mode uint8

const (
	// Request is play: Berth sends the stream (the SRT Access Control
	// default when m= is absent).
	Request Mode = iota
	// Publish is the caller sending a stream to Berth.
	Publish
)

func (m Mode) String() string {
	if m == Publish {
		return "publish"
	}
	return "request"
}

// StreamID is a parsed SRT stream id.
type StreamID struct {
	Vhost  string // h=, "" when absent
	App    string
	Stream string
	Mode   Mode
	User   string // u= (SRT Access Control) or user= (Berth's URL credential)
	Pass   string // pass=
	// Params are the other keys as a URL query, in the order sent (what a
	// hook's params say; credentials removed), as ZLMediaKit passes them.
	Params string
}

// Path is the hub path app/stream.
func (s StreamID) Path() string { return s.App + "/" + s.Stream }

// ErrStreamID is the cause of every stream id refusal: errors.Is finds it.
var ErrStreamID = errors.New("bad SRT stream id")

// accessControlPrefix starts the SRT Access Control syntax:
// https://github.com/Haivision/srt/blob/master/docs/features/access-control.md
const accessControlPrefix = "#!::"

// maxStreamID is SRT's limit on the stream id (512 bytes, the SRTO_STREAMID
// option); gosrt enforces it on the wire too.
const maxStreamID = 512

// ParseStreamID reads the stream id forms SRT callers send:
//
//   - SRT Access Control, as ZLMediaKit reads it:
//     "#!::r=app/stream,m=publish" ("#!::h=__defaultVhost__,r=app/stream,m=request,u=alice,pass=x,token=1").
//     r= is the resource; m= publish or request (the default); h= the
//     vhost; u= the user; other keys become the params.
//   - MediaMTX's "publish:app/stream" and "read:app/stream" (user:pass
//     before the path is not taken: use u= and pass=).
//   - A plain "app/stream", optionally with "?query": a play, as srt-live-
//     transmit users type it; "app/stream?m=publish" publishes.
//
// The path needs an app and a stream; a deeper path keeps its slashes in
// Stream.
func ParseStreamID(id string) (StreamID, error) {
	if len(id) > maxStreamID {
		return StreamID{}, fmt.Errorf("%w: %d bytes (SRT allows %d)", ErrStreamID, len(id), maxStreamID)
	}
	if rest, ok := strings.CutPrefix(id, accessControlPrefix); ok {
		return parseAccessControl(rest)
	}
	var s StreamID
	path, query, _ := strings.Cut(id, "?")
	switch {
	case strings.HasPrefix(path, "publish:"):
		s.Mode, path = Publish, path[len("publish:"):]
	case strings.HasPrefix(path, "read:"):
		path = path[len("read:"):]
	}
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return StreamID{}, fmt.Errorf("%w: query %q: %v", ErrStreamID, query, err)
		}
		var keep []string
		for _, kv := range strings.Split(query, "&") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "m":
				m, err := parseMode(v)
				if err != nil {
					return StreamID{}, err
				}
				s.Mode = m
			case "user", "u":
				s.User = q.Get(k)
			case "pass":
				s.Pass = q.Get(k)
			case "":
			default:
				keep = append(keep, kv)
			}
		}
		s.Params = strings.Join(keep, "&")
	}
	if err := s.setPath(path); err != nil {
		return StreamID{}, err
	}
	return s, nil
}

func parseAccessControl(rest string) (StreamID, error) {
	var s StreamID
	var keep []string
	resource := ""
	for _, kv := range strings.Split(rest, ",") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return StreamID{}, fmt.Errorf("%w: %q is not key=value; write #!::r=app/stream,m=publish", ErrStreamID, kv)
		}
		switch k {
		case "r":
			resource = v
		case "m":
			m, err := parseMode(v)
			if err != nil {
				return StreamID{}, err
			}
			s.Mode = m
		case "h":
			s.Vhost = v
		case "u", "user":
			s.User = v
		case "pass":
			s.Pass = v
		default:
			keep = append(keep, url.QueryEscape(k)+"="+url.QueryEscape(v))
		}
	}
	s.Params = strings.Join(keep, "&")
	if resource == "" {
		return StreamID{}, fmt.Errorf("%w: no r= resource; write #!::r=app/stream,m=publish (or m=request to play)", ErrStreamID)
	}
	if err := s.setPath(resource); err != nil {
		return StreamID{}, err
	}
	return s, nil
}

func parseMode(v string) (Mode, error) {
	switch v {
	case "publish":
		return Publish, nil
	case "request", "":
		return Request, nil
	}
	return 0, fmt.Errorf("%w: m=%s; Berth takes m=publish or m=request (bidirectional is not supported)", ErrStreamID, v)
}

// setPath splits app/stream; a leading or trailing slash is ignored.
func (s *StreamID) setPath(p string) error {
	p = strings.Trim(p, "/")
	app, stream, ok := strings.Cut(p, "/")
	if !ok || app == "" || stream == "" {
		return fmt.Errorf("%w: path %q needs an app and a stream name, as live/stream", ErrStreamID, p)
	}
	if strings.Contains(p, "..") || strings.ContainsAny(p, "\x00?#") || strings.Contains(p, "//") {
		return fmt.Errorf("%w: path %q has a character or segment a stream name cannot hold", ErrStreamID, p)
	}
	s.App, s.Stream = app, stream
	return nil
}
