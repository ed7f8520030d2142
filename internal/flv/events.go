package flv

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/berthmedia/berth/internal/fanout"
	"github.com/berthmedia/berth/internal/hub"
)

// An event-driven HTTP-FLV player (see package fanout): the handler takes
// the connection over from net/http, writes the response head itself, and
// returns; from then on the player holds no goroutine at all. Its hub
// reader wakes the handler's sender goroutines, which write each batch of
// tags as one HTTP chunk with one non-blocking writev.
type eventPlayer struct {
	h     *Handler
	rd    *hub.Reader
	m     *Muxer
	nc    net.Conn
	log   *slog.Logger
	start time.Time

	w       *fanout.Writer
	runner  *fanout.Runner
	chunked bool
	frames  [readBatch]*hub.Frame
	bufs    [][]byte
	nb      net.Buffers // the blocking write's, on the heap once
	size    [18]byte    // the chunk-size line
	sent    uint64
	over    bool // end has been called
}

// readBatch is how many frames a player takes from the ring per write.
const readBatch = 64

// crlf ends an HTTP chunk.
var crlf = []byte("\r\n")

// startEvents serves an HTTP-FLV GET event-driven where the connection
// can be taken over and written that way. It reports false, having
// written nothing, when not; the caller then serves it the plain way.
func (h *Handler) startEvents(w http.ResponseWriter, r *http.Request, rd *hub.Reader, m *Muxer, log *slog.Logger) bool {
	// Over TLS the taken-over connection is a *tls.Conn, whose bytes a raw
	// writev would bypass: such a player is served the plain way.
	if r.ProtoMajor != 1 || r.TLS != nil || !fanout.Supported() {
		return false
	}
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	fw, ok := fanout.NewWriter(nc, readBatch+8)
	if !ok {
		// Only a connection that is not a socket gets here, and it is
		// taken over already: it cannot be answered the plain way.
		log.Error("flv play failed: the connection is not a socket Berth can write; closed it", "conn", fmt.Sprintf("%T", nc))
		nc.Close()
		rd.Close()
		h.untrack(rd)
		return true
	}
	p := &eventPlayer{h: h, rd: rd, m: m, nc: nc, log: log, start: time.Now(), w: fw,
		chunked: r.ProtoAtLeast(1, 1), bufs: make([][]byte, 0, readBatch+8)}
	// The response head, as net/http would have written it for a streamed
	// body: chunked for HTTP/1.1, ended by the close for HTTP/1.0.
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	hdr := w.Header()
	hdr.Set("Content-Type", "video/x-flv")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("Connection", "close")
	hdr.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	if p.chunked {
		hdr.Set("Transfer-Encoding", "chunked")
	}
	hdr.Write(&head)
	head.WriteString("\r\n")
	// Sent now, so the player hears 200 even if the first keyframe is a
	// while away; the FLV header goes with the first tags.
	nc.SetWriteDeadline(time.Now().Add(h.writeTimeout()))
	if _, err := brw.Writer.Write(head.Bytes()); err == nil {
		err = brw.Writer.Flush()
	}
	nc.SetWriteDeadline(time.Time{})
	if err != nil {
		nc.Close()
		p.end(err)
		return true
	}
	p.bufs = append(p.bufs, nil, Header(m.VideoTrack >= 0, m.AudioTrack >= 0))
	log.Info("flv play started", "video", m.Video.String(), "audio", m.Audio.String())
	p.runner = fanout.NewRunner(&h.senders, p.serve, p.crashed)
	rd.SetReady(p.runner.Wake)
	p.runner.Start()
	return true
}

// serve is the player's turn: it writes what the reader has until it parks
// (true), or gives the turn away (false): the play ended, or a goroutine
// of its own finishes a write the socket did not take.
func (p *eventPlayer) serve() bool {
	if p.over {
		return false
	}
	for {
		n, err := p.rd.TryRead(p.frames[:])
		if err != nil {
			p.over = true
			go p.end(err) // its last chunk's write may block
			return false
		}
		if n == 0 {
			return true
		}
		bufs := p.batch(n)
		if bufs == nil {
			continue
		}
		w, ok := p.w.TryWrite(bufs)
		p.sent += uint64(w)
		if !ok {
			go p.finishWrite(fanout.Rest(bufs, w))
			return false
		}
		p.bufs = p.bufs[:1]
	}
}

// batch turns frames[:n] into one HTTP chunk of tags, or nil when none of
// them is for this player. p.bufs[0] is the chunk-size line; p.bufs may
// already hold the FLV header.
func (p *eventPlayer) batch(n int) [][]byte {
	for i, f := range p.frames[:n] {
		p.frames[i] = nil
		if !p.m.Carries(f) {
			continue
		}
		tags, ok := p.m.Start(f)
		if !ok {
			continue
		}
		for _, t := range tags {
			p.bufs = append(p.bufs, AppendTag(nil, t.Type, t.TS, t.Body))
		}
		p.bufs = append(p.bufs, p.m.FrameTag(f))
	}
	if len(p.bufs) == 1 {
		return nil
	}
	if !p.chunked {
		return p.bufs[1:]
	}
	size := 0
	for _, b := range p.bufs[1:] {
		size += len(b)
	}
	line := strconv.AppendInt(p.size[:0], int64(size), 16)
	p.bufs[0] = append(line, '\r', '\n')
	return append(p.bufs, crlf)
}

// crashed ends a player whose turn panicked.
func (p *eventPlayer) crashed(v any) {
	p.log.Error("flv player crashed; closed its connection, others are unaffected", "panic", v, "stack", string(debug.Stack()))
	if !p.over {
		p.over = true
		go p.end(fmt.Errorf("internal error: %v", v))
	}
}

// finishWrite writes the rest of a batch, waiting for the socket up to the
// write timeout, then serves the player here until its reader parks.
func (p *eventPlayer) finishWrite(rest [][]byte) {
	p.nc.SetWriteDeadline(time.Now().Add(p.h.writeTimeout()))
	p.nb = rest
	w, err := p.nb.WriteTo(p.nc)
	p.sent += uint64(w)
	if err != nil {
		p.over = true
		p.end(err)
		return
	}
	// Non-blocking writes set no deadline; one left set would fail them.
	p.nc.SetWriteDeadline(time.Time{})
	p.bufs = p.bufs[:1]
	p.runner.Run()
}

// end finishes the body where the stream ended, closes the connection and
// logs why the play ended.
func (p *eventPlayer) end(err error) {
	if p.chunked && p.sent > 0 && isEnded(err) {
		p.nc.SetWriteDeadline(time.Now().Add(p.h.writeTimeout()))
		p.nc.Write([]byte("0\r\n\r\n")) // the last chunk: a clean end of the body
	}
	p.nc.Close()
	p.rd.Close()
	p.h.untrack(p.rd)
	p.h.logEnd(p.log, err, p.start, p.sent)
}
