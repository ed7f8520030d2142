package httpstream

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The WebSocket side of an event-driven player (RFC 6455): the handshake
// answered on the taken-over connection, the header of each binary message
// Berth sends, and a parser of what the page sends back, which is only
// ever control frames worth answering (ping, close) or data to discard. A
// player is a byte stream out; gorilla/websocket's connection, with its
// 64 KB write buffer and a goroutine to read, is kept for the plain path.

// wsGUID is RFC 6455's key suffix (section 1.3).
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// wsAccept checks that r is a WebSocket upgrade Berth can answer itself
// and returns its Sec-WebSocket-Accept; false leaves the request to
// gorilla's Upgrader, which answers what is wrong with it. As gorilla
// (without EnableCompression), it takes no extension a browser offers
// (permessage-deflate) and names no subprotocol.
func wsAccept(r *http.Request) (string, bool) {
	if r.Method != http.MethodGet || !headerHas(r.Header, "Connection", "upgrade") || !headerHas(r.Header, "Upgrade", "websocket") ||
		r.Header.Get("Sec-Websocket-Version") != "13" {
		return "", false
	}
	key := r.Header.Get("Sec-Websocket-Key")
	if b, err := base64.StdEncoding.DecodeString(key); err != nil || len(b) != 16 {
		return "", false
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(sum[:]), true
}

// headerHas reports whether a comma-separated header holds token, in any case.
func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// WebSocket opcodes (RFC 6455 5.2).
const (
	wsContinuation = 0x0
	wsText         = 0x1
	wsBinary       = 0x2
	wsClose        = 0x8
	wsPing         = 0x9
	wsPong         = 0xA
)

// wsMaxHeader is the longest header of a frame Berth sends (unmasked).
const wsMaxHeader = 10

// appendWSHeader appends the header of an unmasked final frame of op with
// a payload of n bytes.
func appendWSHeader(dst []byte, op byte, n int) []byte {
	dst = append(dst, 0x80|op)
	switch {
	case n < 126:
		return append(dst, byte(n))
	case n <= 0xFFFF:
		return binary.BigEndian.AppendUint16(append(dst, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, 127), uint64(n))
	}
}

// wsControl is an unmasked control frame of op with payload (≤ 125 bytes).
func wsControl(op byte, payload []byte) []byte {
	return append(appendWSHeader(make([]byte, 0, 2+len(payload)), op, len(payload)), payload...)
}

// wsCloseFrame is a close frame with code and reason.
func wsCloseFrame(code uint16, reason string) []byte {
	p := binary.BigEndian.AppendUint16(nil, code)
	return wsControl(wsClose, append(p, reason[:min(len(reason), 123)]...))
}

// errWSClosed is a page's close of its WebSocket: the end of a play, not a fault.
var errWSClosed = errors.New("the player closed the WebSocket")

// wsReader parses the frames a page sends, fed whatever bytes came; only a
// frame header or a control frame (at most 139 bytes) is ever held.
type wsReader struct {
	held []byte // a frame header, or a whole control frame, not yet complete
	skip uint64 // payload bytes of a data frame still to discard
}

// wsReply is what a page's frames call for: a control frame to send (the
// pong of the latest ping, or the close reply), and whether the play ends
// after it (end is errWSClosed, or a protocol error).
type wsReply struct {
	ctl []byte
	end error
}

// feed parses b. It stops at the first close or protocol error: nothing
// after it is read.
func (r *wsReader) feed(b []byte, out *wsReply) {
	for len(b) > 0 && out.end == nil {
		if r.skip > 0 {
			n := min(r.skip, uint64(len(b)))
			r.skip -= n
			b = b[n:]
			continue
		}
		if len(r.held) == 0 && len(b) >= wsNeed(b) {
			b = b[r.frame(b, out):] // the common case: parsed in place
			continue
		}
		// Gather the frame in held; what it needs is known once its first
		// two bytes are.
		if r.held == nil {
			r.held = make([]byte, 0, 6+8+125)
		}
		for len(b) > 0 && len(r.held) < wsNeed(r.held) {
			take := min(wsNeed(r.held)-len(r.held), len(b))
			r.held = append(r.held, b[:take]...)
			b = b[take:]
		}
		if len(r.held) < wsNeed(r.held) {
			return // the rest comes with the next read
		}
		r.frame(r.held, out)
		r.held = nil // a waiting player keeps no buffer
	}
}

// wsNeed is how many bytes the frame starting with h needs before it can
// be parsed: its header, plus the payload of a control frame. Its first
// two bytes tell it all.
func wsNeed(h []byte) int {
	if len(h) < 2 || h[1]&0x80 == 0 {
		return 2 // an unmasked frame fails on its first two bytes
	}
	n := 2 + 4 // the mask key
	switch h[1] & 0x7F {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[0]&0x08 != 0 && h[1]&0x7F < 126 { // a control frame: its payload too
		n += int(h[1] & 0x7F)
	}
	return n
}

// frame handles the frame at the start of f (whole header; whole payload
// for a control frame) and returns the bytes it used.
func (r *wsReader) frame(f []byte, out *wsReply) int {
	op := f[0] & 0x0F
	fail := func(why string) int {
		out.ctl = wsCloseFrame(1002, why)
		out.end = fmt.Errorf("the player broke the WebSocket protocol (%s); closed it with 1002", why)
		return len(f)
	}
	if f[0]&0x70 != 0 {
		return fail("reserved bits set")
	}
	if f[1]&0x80 == 0 {
		return fail("unmasked frame from the client")
	}
	length := uint64(f[1] & 0x7F)
	hl := 2
	switch length {
	case 126:
		length, hl = uint64(binary.BigEndian.Uint16(f[2:])), 4
	case 127:
		length, hl = binary.BigEndian.Uint64(f[2:]), 10
		if length>>63 != 0 {
			return fail("frame length over 2^63")
		}
	}
	hl += 4 // the mask key
	switch op {
	case wsContinuation, wsText, wsBinary:
		r.skip = length // what a page sends is of no interest to a player
		return hl
	case wsClose, wsPing, wsPong:
	default:
		return fail(fmt.Sprintf("unknown opcode %#x", op))
	}
	// The 7-bit length, not the field: a control frame's length in the
	// extended form is not allowed, and wsNeed did not wait for its payload.
	if f[0]&0x80 == 0 || f[1]&0x7F > 125 {
		return fail("fragmented or long control frame")
	}
	payload := make([]byte, length)
	mask := f[hl-4 : hl]
	for i := range payload {
		payload[i] = f[hl+i] ^ mask[i%4]
	}
	switch op {
	case wsPing:
		out.ctl = wsControl(wsPong, payload) // only the latest ping is answered (RFC 6455 5.5.3)
	case wsClose:
		if length == 1 {
			return fail("close frame of one byte")
		}
		code := uint16(1000)
		if length >= 2 {
			code = binary.BigEndian.Uint16(payload)
		}
		out.ctl = wsCloseFrame(code, "")
		out.end = errWSClosed
	}
	return hl + int(length)
}

// wsReadPool lends a reading turn its buffer: a page sends a few bytes now
// and then, so a player holds none while it waits.
var wsReadPool = sync.Pool{New: func() any { return new([2048]byte) }}

// startReading waits for what the page sends: first the bytes net/http
// read ahead with the request, then the socket, through the poller.
func (p *player) startReading(br *bufio.Reader) {
	p.nc.SetReadDeadline(time.Time{}) // net/http's, if it set one, is not the player's
	w, watched := p.Poller.Watch(p.nc, func() { go p.readWS(true) })
	if watched {
		p.ws.watch = w
	}
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		if p.heard(b, nil) {
			return
		}
	}
	if !watched {
		go p.readWS(false)
		return
	}
	w.Arm()
}

// readWS reads what the page sent: once per wake-up of the poller, which
// it then asks for the next, or (armed false) until the play ends.
func (p *player) readWS(armed bool) {
	buf := wsReadPool.Get().(*[2048]byte)
	defer wsReadPool.Put(buf)
	for {
		n, err := p.nc.Read(buf[:])
		if p.heard(buf[:n], err) {
			return
		}
		if armed {
			p.ws.watch.Arm()
			return
		}
	}
}

// heard parses what the page sent (and the read's error) and hands the
// sender what it calls for; it reports whether the play ends.
func (p *player) heard(b []byte, err error) bool {
	var out wsReply
	p.ws.rd.feed(b, &out)
	if out.end == nil && err != nil {
		out.end = err // the page went away without a close
	}
	if out.ctl == nil && out.end == nil {
		return false
	}
	p.ws.mu.Lock()
	if p.ws.reply.end == nil { // a later pong replaces an earlier; an end stays
		p.ws.reply = out
	}
	p.ws.mu.Unlock()
	p.runner.Wake()
	return out.end != nil
}

// sendControl writes, ahead of the next batch, what the page's frames
// called for. It reports false when the turn leaves the runner: the play
// ends (after the close reply), or a goroutine finishes the write.
func (p *player) sendControl() bool {
	p.ws.mu.Lock()
	reply := p.ws.reply
	p.ws.reply = wsReply{}
	p.ws.mu.Unlock()
	if reply.end != nil {
		p.over = true
		p.ws.final = reply.ctl
		go p.end(reply.end) // the close reply's write may block
		return false
	}
	if reply.ctl == nil {
		return true
	}
	p.ws.one[0] = reply.ctl
	w, ok := p.w.TryWrite(p.ws.one[:])
	p.ws.one[0] = nil
	p.wrote(w)
	if !ok {
		go p.finishWrite([][]byte{reply.ctl[w:]}, false)
		return false
	}
	return true
}
