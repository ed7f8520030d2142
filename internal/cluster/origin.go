package cluster

// The static origin form of ZLMediaKit's [cluster] section, for users
// without a registry: an edge told origin_url pulls a stream it does not
// have from the origin(s) when a reader asks for it, and lets the pull go
// once the last reader has left. ZLMediaKit's own code does this in its
// on_stream_not_found path (server/WebHook.cpp, pullStreamFromOrigin); the
// behaviour kept here is documented in docs/cluster.md.

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/proxy"
)

// ErrBadTemplate is an origin_url entry Berth cannot expand or pull.
var ErrBadTemplate = errors.New("bad origin_url")

// Vhost is what $vhost expands to (Berth has one).
const Vhost = proxy.DefaultVhost

// EdgeParam marks a pull from an edge in the origin URL's query, as
// ZLMediaKit marks its own: a ZLMediaKit origin without the stream answers
// such a request at once instead of waiting for a publisher.
const EdgeParam = "edge"

// HopsParam counts the edges a request went through; an edge does not pull
// for a request that went through MaxHops already. With one pull per path
// per node this ends a loop of misconfigured edges (A's origin_url names B
// and B's names A) after MaxHops pulls instead of never.
const HopsParam = "edge_hops"

// MaxHops bounds a chain of edges: origin <- edge <- edge <- edge.
const MaxHops = 4

// Template is one origin_url entry, parsed once: literal text and where
// app, stream and vhost go.
type Template struct {
	raw   string
	parts []part
}

type part struct {
	lit string
	ph  placeholder
}

type placeholder uint8

const (
	phNone placeholder = iota
	phApp
	phStream
	phVhost
)

// ParseTemplate reads an origin_url entry. Placeholders: %s then %s (app,
// then stream: ZLMediaKit's printf form, where %% is a '%'), $app and
// $stream (also ${app}, ${stream}), $1 and $2 (app, stream), $vhost; $$ is
// a '$'. Any other '$' or '%' is kept as written (a password may hold one).
// The stream must appear: without it every stream would pull the same URL.
func ParseTemplate(raw string) (Template, error) {
	t := Template{raw: raw}
	var lit strings.Builder
	flush := func(ph placeholder) {
		t.parts = append(t.parts, part{lit: lit.String(), ph: ph})
		lit.Reset()
	}
	printf := 0
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '%' && i+1 < len(raw) && raw[i+1] == '%':
			lit.WriteByte('%')
			i += 2
		case c == '%' && i+1 < len(raw) && raw[i+1] == 's':
			printf++
			switch printf {
			case 1:
				flush(phApp)
			case 2:
				flush(phStream)
			default:
				return Template{}, fmt.Errorf("%w %q: a third %%s (ZLMediaKit's form takes two: app, then stream)", ErrBadTemplate, raw)
			}
			i += 2
		case c == '$':
			ph, n := dollar(raw[i:])
			if n == 0 {
				lit.WriteByte('$')
				i++
				continue
			}
			if ph == phNone { // $$
				lit.WriteByte('$')
			} else {
				flush(ph)
			}
			i += n
		default:
			lit.WriteByte(c)
			i++
		}
	}
	if lit.Len() > 0 {
		flush(phNone)
	}
	if t.count(phStream) == 0 {
		return Template{}, fmt.Errorf("%w %q names no stream: every stream would pull the same URL; write $stream (or %%s twice: app, then stream), e.g. rtsp://origin:554/$app/$stream", ErrBadTemplate, raw)
	}
	sample := t.Expand("app", "stream")
	if err := proxy.CheckURL(sample); err != nil {
		return Template{}, fmt.Errorf("%w %q: %w", ErrBadTemplate, raw, err)
	}
	return t, nil
}

// dollar reads the placeholder at the start of s (which begins with '$'):
// what it stands for and its length; n = 0 when it is no placeholder, and
// phNone with n = 2 for "$$".
func dollar(s string) (placeholder, int) {
	if strings.HasPrefix(s, "$$") {
		return phNone, 2
	}
	name, n := "", 0
	if strings.HasPrefix(s, "${") {
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return phNone, 0
		}
		name, n = s[2:end], end+1
	} else {
		j := 1
		for j < len(s) && isIdent(s[j]) {
			j++
		}
		name, n = s[1:j], j
	}
	switch name {
	case "app", "1":
		return phApp, n
	case "stream", "2":
		return phStream, n
	case "vhost":
		return phVhost, n
	}
	return phNone, 0
}

func isIdent(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// String is the entry as written.
func (t Template) String() string { return t.raw }

// Expand fills in app and stream. Names come from players (untrusted), so
// every byte but RFC 3986's unreserved ones is percent-encoded (section
// 2.1): a name cannot end the path, start a query or fragment, add
// credentials or split an SRT stream id's keys, whatever the URL's scheme.
// The one exception is '/' inside the stream, which keeps a multi-level
// stream id (a recording's record/live/s/DAY/TIME.mp4) a path on the
// origin too; PathOK refuses the names whose segments would move up.
func (t Template) Expand(app, stream string) string {
	var b strings.Builder
	for _, p := range t.parts {
		b.WriteString(p.lit)
		switch p.ph {
		case phApp:
			escape(&b, app, false)
		case phStream:
			escape(&b, stream, true)
		case phVhost:
			escape(&b, Vhost, false)
		}
	}
	return b.String()
}

// PathOK reports whether app/stream may be pulled: no empty, "." or ".."
// segment, which an origin or a proxy on the way would resolve to another
// path than the one asked for (RFC 3986 section 5.2.4).
func PathOK(app, stream string) bool {
	if app == "" || strings.Contains(app, "/") {
		return false
	}
	for _, seg := range strings.Split(stream, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return app != "." && app != ".."
}

// escape writes s with every byte outside RFC 3986's unreserved set
// (ALPHA DIGIT - . _ ~, section 2.3) percent-encoded; '/' stays when
// slash is set.
func escape(b *strings.Builder, s string, slash bool) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isIdent(c) || c == '-' || c == '.' || c == '~' || slash && c == '/' { // isIdent: ALPHA DIGIT _
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
}

// ParseTemplates parses origin_url's entries, all or none.
func ParseTemplates(raws []string) ([]Template, error) {
	out := make([]Template, 0, len(raws))
	for _, r := range raws {
		t, err := ParseTemplate(r)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// Hops is how many edges the request with this query went through (its
// edge_hops; 1 for a ZLMediaKit edge's edge=1 alone; 0 for a player).
func Hops(params string) int {
	q, _ := url.ParseQuery(params) // what parses is enough: a bad pair is not a hop count
	if n, err := strconv.Atoi(q.Get(HopsParam)); err == nil && n > 0 {
		return min(n, MaxHops)
	}
	if q.Get(EdgeParam) != "" {
		return 1
	}
	return 0
}

// PullQuery is the query an edge adds to its origin URL: the reader's own
// parameters (a token the origin's on_play hook checks; credentials were
// removed where they came in), then edge=1 and the hop count.
func PullQuery(params string, hops int) string {
	q, _ := url.ParseQuery(params)
	for _, k := range []string{EdgeParam, HopsParam, "vhost"} {
		q.Del(k)
	}
	own := url.Values{EdgeParam: {"1"}, HopsParam: {strconv.Itoa(hops)}}.Encode()
	if rest := q.Encode(); rest != "" {
		return rest + "&" + own
	}
	return own
}

// withQuery appends query to u. SRT URLs keep theirs: their query is the
// caller's options and stream id, which take no extra keys.
func withQuery(u, query string) string {
	if strings.HasPrefix(strings.ToLower(u), "srt:") || query == "" {
		return u
	}
	if strings.Contains(u, "?") {
		return u + "&" + query
	}
	return u + "?" + query
}

// Settings are the [cluster] keys of the static form.
type Settings struct {
	Origins    []Template
	Timeout    time.Duration // timeout_sec: readers wait this long; each origin gets its share
	RetryCount int           // retry_count: failed attempts before giving up; -1 = until Timeout
}

// Edge is a hub.Observer that pulls a missing stream from the origins: one
// pull per path however many readers wait (the proxy Manager holds it by
// path), stopped streamNoneReaderDelayMS after its last reader.
type Edge struct {
	Proxies *proxy.Manager
	Log     *slog.Logger

	mu   sync.Mutex
	set  Settings
	next atomic.Uint32 // round robin: each pull starts at the next origin, as ZLMediaKit's do

	refusedLog atomic.Int64 // unix ns of the last hop-limit line: at most one a minute
}

var _ hub.Observer = (*Edge)(nil)

// SetSettings applies [cluster] to pulls started from now on.
func (e *Edge) SetSettings(s Settings) {
	e.mu.Lock()
	e.set = s
	e.mu.Unlock()
}

func (e *Edge) settings() Settings {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.set
}

// Enabled reports whether origin_url names any origin.
func (e *Edge) Enabled() bool { return len(e.settings().Origins) > 0 }

func (e *Edge) log() *slog.Logger {
	if e.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Log
}

// minShare is the least time one origin gets to answer.
const minShare = time.Second

// StreamNotFound starts the pull of path from the origins, unless one
// runs (one pull per path), another pull owns the path (a [proxy] line, the
// API), the path is live after all, or the request came through MaxHops
// edges already. It is the last observer: the others answer first.
func (e *Edge) StreamNotFound(path string, who hub.Origin) {
	set := e.settings()
	n := len(set.Origins)
	if n == 0 || e.Proxies == nil {
		return
	}
	app, stream, _ := strings.Cut(path, "/")
	if !PathOK(app, stream) {
		return // not a path a reader could have asked for on purpose
	}
	hops := Hops(who.Params)
	if hops >= MaxHops {
		now := time.Now().UnixNano()
		if last := e.refusedLog.Load(); now-last >= int64(time.Minute) && e.refusedLog.CompareAndSwap(last, now) {
			e.log().Warn("edge: not pulling a stream asked for through too many edges", "path", path, "hops", hops,
				"from", who.String(), "fix", "origin_url must point up the tree, to nodes that have the stream or pull it from nearer its publisher; a loop of edges never finds it")
		}
		return
	}
	if _, exists := e.Proxies.Get(proxy.Key(path)); exists {
		return
	}
	if h := e.Proxies.Hub; h != nil && h.Get(path) != nil {
		return // an observer before this one published it (a recording played back here)
	}
	start := int(e.next.Add(1)-1) % n
	query := PullQuery(who.Params, hops+1)
	urls := make([]string, n)
	for i := range urls {
		urls[i] = withQuery(set.Origins[(start+i)%n].Expand(app, stream), query)
	}
	share := max(set.Timeout/time.Duration(n), minShare)
	spec := proxy.Spec{Path: path, URL: urls[0], Fallbacks: urls[1:], RetryCount: set.RetryCount,
		Transport: proxy.TCP, Timeout: share, AutoClose: true, GiveUpAfter: set.Timeout, Transient: true,
		Fix: "check that an origin of [cluster] origin_url has the stream (publish it there); the next reader tries again"}
	if _, err := e.Proxies.Add(spec); err != nil {
		if !errors.Is(err, proxy.ErrExists) { // ErrExists: another reader's pull won the race
			e.log().Error("edge: cannot pull from the origin", "path", path, "err", err,
				"fix", "correct [cluster] origin_url")
		}
		return
	}
	redacted := make([]string, n)
	for i, u := range urls {
		redacted[i] = proxy.Redact(u)
	}
	e.log().Info("edge: a reader asked for a stream this node does not have; pulling it from the origin",
		"path", path, "origins", strings.Join(redacted, " "), "each", share, "readers_wait", set.Timeout)
}

// StreamPublished is not needed: readers that waited subscribe themselves.
func (e *Edge) StreamPublished(*hub.Stream) {}

// StreamEnded is not needed: the pull's own session sees its stream end.
func (e *Edge) StreamEnded(*hub.Stream) {}

// ReaderAdded is not needed: the proxy Manager keeps a pull with readers.
func (e *Edge) ReaderAdded(*hub.Reader) {}

// ReaderRemoved is not needed: the proxy Manager stops an auto-close pull
// after its last reader.
func (e *Edge) ReaderRemoved(*hub.Reader) {}

// count is how often ph appears in t.
func (t Template) count(ph placeholder) int {
	n := 0
	for _, p := range t.parts {
		if p.ph == ph {
			n++
		}
	}
	return n
}
