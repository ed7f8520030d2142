// Package srtclient is Berth's SRT caller (gosrt): the srt:// URLs ffmpeg
// takes (streamid, passphrase, pbkeylen, latency in microseconds), a dial
// that a context can abandon, SRT rejections in plain words, and the
// 1316-byte payloads MPEG-TS goes out in. The pull proxy (srt:// sources)
// and the pusher (srt:// targets) use it, as they use rtspclient; it
// imports no Berth package.
package srtclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	gosrt "github.com/datarhei/gosrt"
)

// PayloadSize is one SRT data packet's payload in live mode: 7 TS packets,
// what libsrt and ffmpeg send. Whole TS packets per SRT packet mean a
// packet dropped too late to repair costs whole TS packets, never half.
const PayloadSize = 7 * 188

// ErrBadURL wraps every complaint of ParseURL.
var ErrBadURL = errors.New("bad srt:// URL")

// Options are what an srt:// URL sets.
type Options struct {
	Addr       string // host:port
	StreamID   string // the stream id, as given (URL-decoded)
	Passphrase string // "" = no encryption
	PBKeyLen   int    // 0 = gosrt's default (16)
	Latency    time.Duration
}

// ParseURL reads srt://host:port?streamid=...&passphrase=...&latency=...
// as ffmpeg does: everything after the first '?' is the query, '#' included
// (a stream id in the Access Control form starts with "#!::", which a URL
// parser would take for a fragment), each value URL-decoded; latency is in
// microseconds, as ffmpeg's. Other keys are ignored. Only the caller mode
// is supported.
func ParseURL(raw string) (Options, error) {
	bad := func(format string, a ...any) (Options, error) {
		return Options{}, fmt.Errorf("%w: %s", ErrBadURL, fmt.Sprintf(format, a...))
	}
	rest, ok := cutPrefixFold(raw, "srt://")
	if !ok {
		return bad("%q does not start with srt://", redactQuery(raw))
	}
	hostport, query, _ := strings.Cut(rest, "?")
	hostport, _, _ = strings.Cut(hostport, "/") // a path means nothing to SRT; ffmpeg ignores it too
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || host == "" || port == "" {
		return bad("%q needs a host and a port: srt://host:port?streamid=...", redactQuery(raw))
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return bad("port %q is not a port number", port)
	}
	o := Options{Addr: net.JoinHostPort(host, port)}
	for _, kv := range strings.Split(query, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if dec, err := url.PathUnescape(v); err == nil {
			v = dec
		}
		switch strings.ToLower(k) {
		case "streamid":
			o.StreamID = v
		case "passphrase":
			if n := len(v); n < 10 || n > 79 {
				return bad("passphrase has %d characters; SRT takes 10 to 79", n)
			}
			o.Passphrase = v
		case "pbkeylen":
			n, err := strconv.Atoi(v)
			if err != nil || (n != 0 && n != 16 && n != 24 && n != 32) {
				return bad("pbkeylen=%s: use 16, 24 or 32", v)
			}
			o.PBKeyLen = n
		case "latency":
			us, err := strconv.ParseInt(v, 10, 64)
			if err != nil || us < 0 {
				return bad("latency=%s: microseconds, as ffmpeg's (120000 = 120 ms)", v)
			}
			o.Latency = time.Duration(us) * time.Microsecond
		case "mode":
			if v != "" && v != "caller" {
				return bad("mode=%s: Berth dials out as the caller; drop mode or use mode=caller", v)
			}
		}
	}
	return o, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

// Redact replaces the passphrase of an srt:// URL with ***, for logs and
// the API; the rest (the stream id) stays, it tells what was asked for.
func Redact(raw string) string { return redactQuery(raw) }

func redactQuery(raw string) string {
	head, query, ok := strings.Cut(raw, "?")
	if !ok {
		return raw
	}
	parts := strings.Split(query, "&")
	for i, kv := range parts {
		if k, _, _ := strings.Cut(kv, "="); strings.EqualFold(k, "passphrase") {
			parts[i] = k + "=***"
		}
	}
	return head + "?" + strings.Join(parts, "&")
}

// Dial connects to o.Addr as the caller within timeout (SRT's connection
// timeout; it also drops a peer silent that long, keep-alives included).
// gosrt's Dial takes no context: when ctx ends first Dial returns at once
// and a connection that still comes is closed.
func Dial(ctx context.Context, o Options, timeout time.Duration) (gosrt.Conn, error) {
	c := gosrt.DefaultConfig()
	c.StreamId = o.StreamID
	c.Passphrase = o.Passphrase
	if o.PBKeyLen > 0 {
		c.PBKeylen = o.PBKeyLen
	}
	if o.Latency > 0 {
		c.ReceiverLatency, c.PeerLatency = o.Latency, o.Latency
	}
	if timeout > 0 {
		c.ConnectionTimeout = timeout
		c.PeerIdleTimeout = timeout
	}
	c.Logger = nil
	type result struct {
		conn gosrt.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		conn, err := gosrt.Dial("srt", o.Addr, c)
		ch <- result{conn, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, explainDial(r.err)
		}
		return r.conn, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.conn != nil {
				r.conn.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// RejectedError is a peer that refused the connection in its handshake,
// with the SRT rejection code (libsrt's SRT_REJ_* and the access-control
// REJX_* of docs/features/access-control.md).
type RejectedError struct{ Code uint32 }

// Error says the rejection in words, with the fix where one is known.
func (e *RejectedError) Error() string {
	switch gosrt.RejectionReason(e.Code) {
	case gosrt.REJ_BADSECRET:
		return "the SRT peer refused the passphrase (REJ_BADSECRET): use the same passphrase= on both sides"
	case gosrt.REJ_UNSECURE:
		return "the SRT peer refused: one side encrypts and the other does not (REJ_UNSECURE): set passphrase= as the peer has it, or drop it"
	case gosrt.REJ_PEER:
		return "the SRT peer refused the connection (REJ_PEER)"
	case gosrt.REJX_BAD_REQUEST:
		return "the SRT peer refused the stream id (REJX_BAD_REQUEST): check streamid= (#!::r=app/stream,m=request or m=publish)"
	case gosrt.REJX_UNAUTHORIZED:
		return "the SRT peer wants credentials (REJX_UNAUTHORIZED): add u=USER,pass=PASSWORD to the stream id"
	case gosrt.REJX_FORBIDDEN:
		return "the SRT peer forbids this stream (REJX_FORBIDDEN)"
	case gosrt.REJX_NOTFOUND:
		return "the SRT peer has no such stream (REJX_NOTFOUND)"
	case gosrt.REJX_CONFLICT:
		return "the SRT peer's stream is published already (REJX_CONFLICT)"
	}
	return "the SRT peer rejected the connection (code " + strconv.FormatUint(uint64(e.Code), 10) + ")"
}

// ErrNoAnswer is a dial that got no handshake answer in time.
var ErrNoAnswer = errors.New("no SRT answer: nothing listens at that UDP address, or a firewall drops it")

// explainDial turns gosrt's dial errors, which are plain strings, into
// typed ones: "connection rejected: REJECT (vi)" carries the code in base 32.
func explainDial(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "REJECT ("); i >= 0 {
		code := strings.TrimSuffix(msg[i+len("REJECT ("):], ")")
		if n, perr := strconv.ParseUint(code, 32, 32); perr == nil {
			return &RejectedError{Code: uint32(n)}
		}
	}
	if strings.Contains(msg, "connection timeout") {
		return fmt.Errorf("%w (%v)", ErrNoAnswer, err)
	}
	return err
}

// Packetizer gathers bytes into PayloadSize writes: a Write of a whole
// packet goes out at once, the rest on Flush (a batch's end), so the
// peer never waits a frame for a part-filled packet.
type Packetizer struct {
	W    io.Writer
	Sent uint64 // bytes written to W
	pkt  []byte
}

// Write queues b, writing every full payload.
func (p *Packetizer) Write(b []byte) error {
	if p.pkt == nil {
		p.pkt = make([]byte, 0, PayloadSize)
	}
	for len(b) > 0 {
		n := min(len(b), PayloadSize-len(p.pkt))
		p.pkt = append(p.pkt, b[:n]...)
		b = b[n:]
		if len(p.pkt) == PayloadSize {
			if err := p.Flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Flush writes what is queued (whole TS packets when the input is TS).
func (p *Packetizer) Flush() error {
	if len(p.pkt) == 0 {
		return nil
	}
	n, err := p.W.Write(p.pkt)
	p.Sent += uint64(n)
	p.pkt = p.pkt[:0]
	return err
}

// PeerGone reports whether a read or write error means the peer hung up:
// gosrt reports a peer's shutdown as io.EOF, or as ErrClientClosed when the
// connection closed itself on it before the read returned (a race seen in
// tests), so both are the peer leaving, not this side closing.
func PeerGone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, gosrt.ErrClientClosed)
}
