package hls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/muxring"
)

// TSOpener opens a cursor on a stream's shared MPEG-TS muxer, whose Key
// chunks each begin with PAT, PMT and a keyframe.
type TSOpener func(*hub.Stream) (*muxring.Cursor, error)

// tsSegmentPrefix begins every TS segment's file name: hls-<channel>-<seq>.ts.
const tsSegmentPrefix = "hls-"

// tsSegment is one finished segment: the TS muxer's chunks from a Key
// chunk to the next one at least SegDur later, shared, never copied.
type tsSegment struct {
	seq   uint64
	start time.Duration
	dur   time.Duration
	disc  bool // EXT-X-DISCONTINUITY before it
	bufs  [][]byte
	size  int
}

// tsChannel is the HLS-TS playlist of one path. It outlives a stream: a
// publisher's restart continues the same media sequence after an
// EXT-X-DISCONTINUITY, so players carry on.
type tsChannel struct {
	linger
	path string
	id   string // in segment names: a later channel of the path never reuses a URL

	// Guarded by the Handler's mu.
	stream *hub.Stream
	cancel context.CancelFunc
	gone   bool
	err    error // why the stream's TS muxer would not start: its viewers are refused at once

	mu       sync.Mutex
	segs     []*tsSegment // oldest first: the listed ones last, retained ones before
	discBase uint64       // discontinuities of segments already dropped
	nextSeq  uint64
	cur      *tsSegment
	lastDTS  time.Duration
	discNext bool
	wake     chan struct{}
}

func (h *Handler) tsChannelLocked(p string) *tsChannel {
	if h.ts == nil {
		h.ts = map[string]*tsChannel{}
	}
	c := h.ts[p]
	if c == nil {
		c = &tsChannel{path: p, id: newToken()[:8], wake: make(chan struct{})}
		h.ts[p] = c
	}
	h.holdLocked(&c.linger)
	return c
}

// attach makes st the channel's source (called with the Handler's mu).
func (c *tsChannel) attach(st *hub.Stream, h *Handler, log *slog.Logger) {
	if c.stream == st || c.gone {
		return
	}
	if c.cancel != nil {
		c.cancel()
	}
	restart := c.stream != nil
	c.stream = st
	cur, err := h.TS(st)
	c.err = err
	if err != nil {
		log.Warn("hls: the stream's TS muxer would not start; its viewers are refused", "err", err)
		c.cancel = nil
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	h.started.Add(1)
	if restart {
		log.Info("hls: the stream was published again; its playlist continues after a discontinuity")
	} else {
		log.Info("hls muxer started", "segment", h.cfg().SegDur)
	}
	go c.feed(ctx, cur, restart, h, log)
}

func (c *tsChannel) stopLocked(h *Handler) func() {
	return func() {
		if !c.gone && h.ts[c.path] == c {
			delete(h.ts, c.path)
		}
		c.gone = true
		c.stop()
	}
}

func (c *tsChannel) stop() {
	if c.cancel != nil {
		c.cancel()
	}
}

// feed cuts segments out of one stream's chunks until it ends or the
// channel moves on.
func (c *tsChannel) feed(ctx context.Context, cur *muxring.Cursor, restart bool, h *Handler, log *slog.Logger) {
	defer cur.Close()
	c.mu.Lock()
	c.closeCurLocked(h.cfg())
	if restart {
		c.discNext = true
	}
	c.mu.Unlock()
	buf := make([]*muxring.Chunk, 0, 64)
	for {
		var err error
		buf, err = cur.Next(ctx, buf[:0])
		set := h.cfg()
		c.mu.Lock()
		for _, ch := range buf {
			c.takeLocked(ch, set)
		}
		if err != nil {
			c.closeCurLocked(set) // the end of a stream is not lost
		}
		c.mu.Unlock()
		clear(buf)
		if err != nil {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, hub.ErrEnded) && !errors.Is(err, muxring.ErrStopped) {
				log.Warn("hls: the TS muxer stopped; the next request restarts it", "err", err)
			}
			return
		}
	}
}

func (c *tsChannel) takeLocked(ch *muxring.Chunk, set Settings) {
	if ch.Discontinuity && c.cur != nil {
		c.closeCurLocked(set)
		c.discNext = true
	}
	if c.cur == nil {
		if !ch.Key {
			return // a segment starts at a keyframe
		}
		c.cur = &tsSegment{start: ch.DTS, disc: c.discNext || ch.Discontinuity}
		c.discNext = false
		c.lastDTS = ch.DTS
	} else if ch.Key && ch.DTS-c.cur.start >= set.SegDur {
		c.cur.dur = ch.DTS - c.cur.start
		c.publishLocked(set)
		c.cur = &tsSegment{start: ch.DTS}
	}
	c.cur.bufs = append(c.cur.bufs, ch.Data)
	c.cur.size += len(ch.Data)
	c.lastDTS = max(c.lastDTS, ch.DTS)
}

// closeCurLocked ends the segment in progress at its last chunk.
func (c *tsChannel) closeCurLocked(set Settings) {
	if c.cur == nil {
		return
	}
	if n := len(c.cur.bufs); n > 0 {
		// The last chunk's own length is unknown: take the mean spacing
		// of the segment's chunks, within a frame's usual bounds.
		span := max(c.lastDTS-c.cur.start, 0)
		gap := 40 * time.Millisecond
		if n > 1 {
			gap = min(max(span/time.Duration(n-1), 10*time.Millisecond), 100*time.Millisecond)
		}
		c.cur.dur = span + gap
		c.publishLocked(set)
	}
	c.cur = nil
}

func (c *tsChannel) publishLocked(set Settings) {
	s := c.cur
	s.seq = c.nextSeq
	c.nextSeq++
	c.segs = append(c.segs, s)
	for len(c.segs) > set.SegNum+set.SegRetain {
		if c.segs[0].disc {
			c.discBase++
		}
		c.segs[0] = nil
		c.segs = c.segs[1:]
	}
	close(c.wake)
	c.wake = make(chan struct{})
}

// playlist renders the live playlist; ok is false before the first segment.
func (c *tsChannel) playlist(set Settings, token string) (body []byte, wake <-chan struct{}, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.segs) == 0 {
		return nil, c.wake, false
	}
	listed := c.segs[max(len(c.segs)-set.SegNum, 0):]
	disc := c.discBase
	for _, s := range c.segs[:len(c.segs)-len(listed)] {
		if s.disc {
			disc++
		}
	}
	target := set.SegDur
	for _, s := range listed {
		target = max(target, s.dur)
	}
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-ALLOW-CACHE:NO\n")
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n", int(math.Ceil(target.Seconds())))
	fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n", listed[0].seq)
	if disc > 0 {
		fmt.Fprintf(&b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", disc)
	}
	for _, s := range listed {
		if s.disc {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		fmt.Fprintf(&b, "#EXTINF:%.3f,\n%s%s-%d.ts?%s=%s\n", s.dur.Seconds(), tsSegmentPrefix, c.id, s.seq, SessionParam, token)
	}
	return []byte(b.String()), nil, true
}

// segment finds a segment by its file name.
func (c *tsChannel) segment(file string) *tsSegment {
	rest, ok := strings.CutPrefix(file, tsSegmentPrefix+c.id+"-")
	if !ok {
		return nil
	}
	seq, err := strconv.ParseUint(strings.TrimSuffix(rest, ".ts"), 10, 64)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.segs {
		if s.seq == seq {
			return s
		}
	}
	return nil
}

// serveTS answers a request of the HLS-TS form from the path's channel.
func (h *Handler) serveTS(w *countingWriter, r *http.Request, v *viewer, st *hub.Stream, file string, log *slog.Logger) {
	h.mu.Lock()
	c := v.ts
	var err error
	if c != nil {
		err = c.err
	}
	h.mu.Unlock()
	if c == nil {
		http.Error(w, "this HLS viewer has ended; reload "+TSPlaylist, http.StatusGone)
		return
	}
	if err != nil {
		// A stream of codecs MPEG-TS cannot carry (AV1, G.711 alone): say so
		// now rather than after a wait for segments that never come.
		http.Error(w, fmt.Sprintf("stream %s cannot be served as %s: %v; try %s", st.Path, TSPlaylist, err, FMP4Playlist), http.StatusUnsupportedMediaType)
		return
	}
	set := h.cfg()
	if file == TSPlaylist {
		deadline := time.NewTimer(10*time.Second + 2*set.SegDur)
		defer deadline.Stop()
		for {
			body, wake, ok := c.playlist(set, v.token)
			if ok {
				hdr := w.Header()
				hdr.Set("Content-Type", "application/vnd.apple.mpegurl")
				hdr.Set("Cache-Control", "no-cache")
				hdr.Set("Content-Length", strconv.Itoa(len(body)))
				w.Write(body)
				return
			}
			select {
			case <-wake:
			case <-r.Context().Done():
				return
			case <-deadline.C:
				log.Info("hls play refused: no segment yet (no keyframe came)")
				http.Error(w, fmt.Sprintf("stream %s has made no HLS segment yet (no keyframe came); retry", st.Path), http.StatusGatewayTimeout)
				return
			}
		}
	}
	s := c.segment(file)
	if s == nil {
		http.Error(w, "no such HLS segment: it left the playlist and the segRetain ones after it; reload "+TSPlaylist, http.StatusNotFound)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "video/mp2t")
	hdr.Set("Cache-Control", "public, max-age=3600") // a segment's URL never names other bytes
	hdr.Set("Content-Length", strconv.Itoa(s.size))
	if r.Method == http.MethodHead {
		return
	}
	for _, b := range s.bufs {
		if _, err := w.Write(b); err != nil {
			return
		}
	}
}
