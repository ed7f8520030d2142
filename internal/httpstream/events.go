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
// HTTP chunk (or WebSocket message) with one non-blocking writev.
// HTTP-FLV, HTTP-TS and HTTP-fMP4 players share it, over plain HTTP and
// over a WebSocket; what differs is the Source. A WebSocket player's page
// may send pings and a close: the handler's poller waits for them (ws.go).

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

	// WebSocket serves the request, an upgrade, as a WebSocket of binary
	// messages: each batch one message, or each buffer one with
	// PerMessage (fMP4 segments a page appends one message at a time).
	WebSocket, PerMessage bool
	// Poller waits for what a WebSocket player's page sends (the
	// handler's; it lives as long as the handler). Required for WebSocket.
	Poller *fanout.Poller
}

// player is a Play under way.
type player struct {
	*Play
	nc      net.Conn // the taken-over connection: a *tls.Conn over TLS
	w       *fanout.Writer
	runner  *fanout.Runner
	chunked bool
	bufs    [][]byte    // bufs[0] is the chunk-size line; nil while parked with nothing pending (bufPool)
	nb      net.Buffers // the blocking write's, on the heap once
	size    [18]byte    // the chunk-size line's (or WebSocket header's) bytes
	sent    uint64
	over    bool     // end has been called
	ws      *wsState // nil for plain HTTP
}

// wsState is a WebSocket player's: what its page asked for, and the
// headers of PerMessage framing.
type wsState struct {
	rd    wsReader      // only the goroutine reading the page touches it
	watch *fanout.Watch // nil where a goroutine of the player's own reads the page
	mu    sync.Mutex
	reply wsReply   // pending for the sender: a pong, or the close and the end
	final []byte    // the close frame end sends; the turn's holder sets it
	one   [1][]byte // a control frame's write
	msgs  [][]byte  // PerMessage: header, buffer, header, buffer...
	hdrs  []byte    // PerMessage: the headers msgs points into (never grown)
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
	// writev would bypass: it seals each batch into memory first (through
	// the fanout.SealConn the server put under it), or, without one, the
	// player is served the plain way. A WebSocket over TLS is gorilla's:
	// its page's pings would have to be read through the TLS layer.
	if r.ProtoMajor != 1 || !fanout.Supported() || (r.TLS != nil && (p.WebSocket || !sealable(r))) {
		return false
	}
	var accept string
	if p.WebSocket {
		var ok bool
		if accept, ok = wsAccept(r); !ok || p.Poller == nil {
			return false // gorilla's Upgrader answers what is wrong with it
		}
	}
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	maxBufs := p.MaxBufs + 3
	if p.WebSocket && p.PerMessage {
		maxBufs = 2*p.MaxBufs + 2
	}
	fw, ok := fanout.NewWriter(nc, maxBufs) // over TLS, through the SealConn under it
	if !ok {
		// Only a connection that is not a socket gets here, and it is
		// taken over already: it cannot be answered the plain way.
		nc.Close()
		p.Done(fmt.Errorf("the connection is not a socket Berth can write (%T)", nc), 0)
		return true
	}
	pl := &player{Play: p, nc: nc, w: fw, chunked: r.ProtoAtLeast(1, 1) && !p.WebSocket}
	pl.takeBufs()
	var head bytes.Buffer
	hdr := w.Header()
	if p.WebSocket {
		pl.ws = &wsState{}
		if p.PerMessage {
			pl.ws.msgs = make([][]byte, 0, 2*p.MaxBufs+2)
			pl.ws.hdrs = make([]byte, 0, wsMaxHeader*(p.MaxBufs+1))
		}
		head.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
		hdr.Del("Content-Type")
		hdr.Set("Upgrade", "websocket")
		hdr.Set("Connection", "Upgrade")
		hdr.Set("Sec-WebSocket-Accept", accept)
	} else {
		// As net/http would have written it for a streamed body: chunked
		// for HTTP/1.1, ended by the close for HTTP/1.0.
		head.WriteString("HTTP/1.1 200 OK\r\n")
		hdr.Set("Cache-Control", "no-cache")
		hdr.Set("Connection", "close")
		hdr.Set("Date", time.Now().UTC().Format(http.TimeFormat))
		if pl.chunked {
			hdr.Set("Transfer-Encoding", "chunked")
		}
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
	if pl.ws != nil {
		pl.startReading(brw.Reader)
	}
	p.Src.SetReady(pl.runner.Wake)
	pl.runner.Start()
	return true
}

// sealable reports whether r came over TLS on a fanout.SealConn, which
// only the server's own TLS listeners make (and ConnContext keeps). A
// handler used alone (its package's tests, httptest's TLS server) serves
// TLS players the plain way.
func sealable(r *http.Request) bool {
	nc, ok := r.Context().Value(connKey{}).(net.Conn)
	return ok && fanout.Sealed(nc)
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
		if p.ws != nil && !p.sendControl() {
			return false
		}
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
		if !p.send(p.frame()) {
			return false
		}
		p.clearBatch()
	}
}

// send writes one framed batch with one writev that never waits. It
// reports false when the turn is given away: the socket did not take it
// all (a goroutine of the player's own finishes it), or sealing it failed.
func (p *player) send(bufs [][]byte) bool {
	w, ok := p.w.TryWrite(bufs)
	p.wrote(w)
	if !ok {
		go p.finishWrite(fanout.Rest(bufs, w), true)
	}
	return ok
}

// clearBatch empties the batch just written, holding no buffer of it.
func (p *player) clearBatch() {
	clear(p.bufs[1:])
	p.bufs = p.bufs[:1]
	if p.ws != nil && p.ws.msgs != nil {
		clear(p.ws.msgs)
		p.ws.msgs = p.ws.msgs[:0]
	}
}

// frame frames p.bufs[1:] for the wire: one HTTP chunk, one WebSocket
// message, or a message per buffer.
func (p *player) frame() [][]byte {
	switch {
	case p.ws == nil:
		return p.chunk()
	case p.ws.msgs == nil:
		size := 0
		for _, b := range p.bufs[1:] {
			size += len(b)
		}
		p.bufs[0] = appendWSHeader(p.size[:0], wsBinary, size)
		return p.bufs
	}
	hdrs := p.ws.hdrs[:0]
	for _, b := range p.bufs[1:] {
		at := len(hdrs)
		hdrs = appendWSHeader(hdrs, wsBinary, len(b)) // within cap: msgs point into it
		p.ws.msgs = append(p.ws.msgs, hdrs[at:], b)
	}
	return p.ws.msgs
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

// finishWrite writes the rest of a batch (or of a control frame: batch
// false), waiting for the socket up to the write timeout, then serves the
// player here until its source parks.
func (p *player) finishWrite(rest [][]byte, batch bool) {
	p.nc.SetWriteDeadline(time.Now().Add(p.Timeout))
	p.nb = rest
	w, err := p.nb.WriteTo(p.nc)
	p.nb = nil
	if err == nil {
		err = p.w.Flush() // over TLS: what the socket did not take of a sealed batch
	}
	p.wrote(int(w))
	if err != nil {
		p.over = true
		p.end(err)
		return
	}
	// Non-blocking writes set no deadline; one left set would fail them.
	p.nc.SetWriteDeadline(time.Time{})
	if batch {
		p.clearBatch()
	}
	p.runner.Run()
}

// end finishes the body where the stream ended, closes the connection and
// hands over to Done.
func (p *player) end(err error) {
	clean := p.Clean != nil && p.Clean(err)
	switch {
	case p.ws != nil:
		final := p.ws.final
		if final == nil && clean {
			final = wsCloseFrame(1000, "the stream ended")
		}
		if final != nil {
			p.nc.SetWriteDeadline(time.Now().Add(p.Timeout))
			p.nc.Write(final)
		}
		if p.ws.watch != nil {
			p.ws.watch.Stop() // before the close, which epoll would not report
		}
	case p.chunked && p.sent > 0 && clean:
		p.nc.SetWriteDeadline(time.Now().Add(p.Timeout))
		p.nc.Write([]byte("0\r\n\r\n")) // the last chunk: a clean end of the body
	}
	p.nc.Close()
	p.Done(err, p.sent)
}

// Players is what a server's event-driven HTTP players share, whatever
// their format: the sender goroutines that write for them and the poller
// that waits for what WebSocket players' pages send. One set serves every
// handler, so a server runs one epoll goroutine and one sender per CPU for
// all its HTTP players, not a set per format. The zero value is ready;
// both start with the first player.
type Players struct {
	Senders fanout.Pool
	Poller  fanout.Poller
}

// PlayersRef is a handler's hold on the Players its players use: Shared,
// the server's set, or the handler's own when Shared is nil (a handler
// used alone, as in its package's tests). The zero value is ready.
type PlayersRef struct {
	Shared *Players
	own    Players
}

// Get is the set to use.
func (r *PlayersRef) Get() *Players {
	if r.Shared != nil {
		return r.Shared
	}
	return &r.own
}
