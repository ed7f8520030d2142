package httpstream

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/berthmedia/berth/internal/fanout"
)

// An event-driven HTTP player (see package fanout): the handler takes the
// connection over from net/http, writes the response head itself, and
// returns; from then on the player holds no goroutine at all. Its source
// wakes the handler's sender goroutines, which write each batch as one
// HTTP chunk with one non-blocking writev. HTTP-FLV, HTTP-TS and HTTP-fMP4
// players share it; what differs is the Source.

// Source is what an event-driven player sends.
type Source interface {
	// Next appends the bytes waiting for the player to bufs and returns
	// it: unchanged when nothing waits (the player then parks until the
	// function given to SetReady runs). An error ends the play.
	Next(bufs [][]byte) ([][]byte, error)
	// SetReady makes ready run whenever Next may have more. It must only
	// schedule work: it runs on the publisher's or the muxer's goroutine.
	SetReady(ready func())
}

// Play is one event-driven player's set-up.
type Play struct {
	Src     Source
	Pool    *fanout.Pool  // the handler's senders; they live as long as it
	MaxBufs int           // the most buffers one Next appends
	First   []byte        // sent before the first batch (FLV header, fMP4 init segment); nil for none
	Timeout time.Duration // a socket that takes nothing this long ends the play
	Log     *slog.Logger  // for a crash; the play's own lines are Done's
	// Wrote is told of every write (a hub registration's byte count); nil
	// for none.
	Wrote func(n int)
	// Clean reports whether err is the stream's end, after which a chunked
	// body gets its last chunk: the player sees a clean end, not a cut.
	Clean func(err error) bool
	// Started runs once the response head is out, before the first batch
	// (the play's "started" line); nil for none.
	Started func()
	// Done runs once when the play ended and the connection is closed,
	// with why and the bytes sent: release the source, log the end.
	Done func(err error, sent uint64)
}

// player is a Play under way.
type player struct {
	*Play
	nc      net.Conn
	w       *fanout.Writer
	runner  *fanout.Runner
	chunked bool
	bufs    [][]byte    // bufs[0] is the chunk-size line; nil while parked with nothing pending (bufPool)
	nb      net.Buffers // the blocking write's, on the heap once
	size    [18]byte    // the chunk-size line's bytes
	sent    uint64
	over    bool // end has been called
}

// crlf ends an HTTP chunk.
var crlf = []byte("\r\n")

// pooledBufs is the capacity of the batches a parked player gives back:
// a player waits far longer than it writes, so its 1-2 KB of buffer
// headers are borrowed for a turn, not held (issue 14: memory per viewer).
const pooledBufs = 80

var bufPool = sync.Pool{New: func() any { b := make([][]byte, 1, pooledBufs); return &b }}

// takeBufs gives the player a batch for its turn.
func (p *player) takeBufs() {
	if p.bufs != nil {
		return
	}
	if p.MaxBufs+3 > pooledBufs {
		p.bufs = make([][]byte, 1, p.MaxBufs+3)
		return
	}
	p.bufs = (*bufPool.Get().(*[][]byte))[:1]
}

// parkBufs gives an empty batch back as the player parks.
func (p *player) parkBufs() {
	if len(p.bufs) != 1 || cap(p.bufs) != pooledBufs {
		return // First still waits in it, or it is not the pool's
	}
	b := p.bufs[:1]
	b[0] = nil
	p.bufs = nil
	bufPool.Put(&b)
}

// StartEvents serves a GET event-driven where the connection can be taken
// over and written that way, with the response head w's header holds (its
// Content-Type set). It reports false, having written nothing, when not;
// the caller then serves it the plain way. Once it reports true the play
// is p's: Done runs when it ends, also when it fails at once.
func StartEvents(w http.ResponseWriter, r *http.Request, p *Play) bool {
	// Over TLS the taken-over connection is a *tls.Conn, whose bytes a raw
	// writev would bypass: such a player is served the plain way.
	if r.ProtoMajor != 1 || r.TLS != nil || !fanout.Supported() {
		return false
	}
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	fw, ok := fanout.NewWriter(nc, p.MaxBufs+3)
	if !ok {
		// Only a connection that is not a socket gets here, and it is
		// taken over already: it cannot be answered the plain way.
		nc.Close()
		p.Done(fmt.Errorf("the connection is not a socket Berth can write (%T)", nc), 0)
		return true
	}
	pl := &player{Play: p, nc: nc, w: fw, chunked: r.ProtoAtLeast(1, 1)}
	pl.takeBufs()
	// The response head, as net/http would have written it for a streamed
	// body: chunked for HTTP/1.1, ended by the close for HTTP/1.0.
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("Connection", "close")
	hdr.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	if pl.chunked {
		hdr.Set("Transfer-Encoding", "chunked")
	}
	hdr.Write(&head)
	head.WriteString("\r\n")
	// Sent now, so the player hears 200 even if the first keyframe is a
	// while away; First goes with the first batch.
	nc.SetWriteDeadline(time.Now().Add(p.Timeout))
	if _, err = brw.Writer.Write(head.Bytes()); err == nil {
		err = brw.Writer.Flush()
	}
	nc.SetWriteDeadline(time.Time{})
	if err != nil {
		pl.over = true
		pl.end(err)
		return true
	}
	if p.First != nil {
		pl.bufs = append(pl.bufs, p.First)
	}
	if p.Started != nil {
		p.Started()
	}
	pl.runner = fanout.NewRunner(p.Pool, pl.serve, pl.crashed)
	p.Src.SetReady(pl.runner.Wake)
	pl.runner.Start()
	return true
}

// serve is the player's turn: it writes what the source has until it parks
// (true), or gives the turn away (false): the play ended, or a goroutine
// of its own finishes a write the socket did not take.
func (p *player) serve() bool {
	if p.over {
		return false
	}
	p.takeBufs()
	for {
		before := len(p.bufs)
		bufs, err := p.Src.Next(p.bufs)
		if err != nil {
			p.over = true
			go p.end(err) // its last chunk's write may block
			return false
		}
		p.bufs = bufs
		if len(bufs) == before {
			p.parkBufs() // nothing new; what First holds waits for the first batch
			return true
		}
		bufs = p.chunk()
		w, ok := p.w.TryWrite(bufs)
		p.wrote(w)
		if !ok {
			go p.finishWrite(fanout.Rest(bufs, w))
			return false
		}
		clear(p.bufs[1:])
		p.bufs = p.bufs[:1]
	}
}

// chunk frames p.bufs[1:] as one HTTP chunk (or as they are for HTTP/1.0).
func (p *player) chunk() [][]byte {
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

func (p *player) wrote(n int) {
	p.sent += uint64(n)
	if p.Wrote != nil && n > 0 {
		p.Wrote(n)
	}
}

// crashed ends a player whose turn panicked.
func (p *player) crashed(v any) {
	if p.Log != nil {
		p.Log.Error("player crashed; closed its connection, others are unaffected", "panic", v, "stack", string(debug.Stack()))
	}
	if !p.over {
		p.over = true
		go p.end(fmt.Errorf("internal error: %v", v))
	}
}

// finishWrite writes the rest of a batch, waiting for the socket up to the
// write timeout, then serves the player here until its source parks.
func (p *player) finishWrite(rest [][]byte) {
	p.nc.SetWriteDeadline(time.Now().Add(p.Timeout))
	p.nb = rest
	w, err := p.nb.WriteTo(p.nc)
	p.nb = nil
	p.wrote(int(w))
	if err != nil {
		p.over = true
		p.end(err)
		return
	}
	// Non-blocking writes set no deadline; one left set would fail them.
	p.nc.SetWriteDeadline(time.Time{})
	clear(p.bufs[1:])
	p.bufs = p.bufs[:1]
	p.runner.Run()
}

// end finishes the body where the stream ended, closes the connection and
// hands over to Done.
func (p *player) end(err error) {
	if p.chunked && p.sent > 0 && p.Clean != nil && p.Clean(err) {
		p.nc.SetWriteDeadline(time.Now().Add(p.Timeout))
		p.nc.Write([]byte("0\r\n\r\n")) // the last chunk: a clean end of the body
	}
	p.nc.Close()
	p.Done(err, p.sent)
}
