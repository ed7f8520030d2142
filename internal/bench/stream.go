package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// Byte-stream players: HTTP-TS and HTTP-fMP4 (and FLV) over a chunked
// HTTP response, or the same bytes over a WebSocket (ws://, wss://), where
// the server's message boundaries mean nothing to a byte-stream reader.

// scanner counts what a byte stream carries, whatever its cuts.
type scanner interface {
	scan(b []byte) (mediaCounts, error)
	partial() bool
}

// openStream GETs url over HTTP, or dials it as a WebSocket; sent runs
// when the request is written (for a WebSocket, once connected: the
// upgrade goes at once), the start of a first packet's time.
func (p *player) openStream(ctx context.Context, sent func()) (io.ReadCloser, error) {
	u := p.cfg.URL
	if strings.HasPrefix(u, "ws://") || strings.HasPrefix(u, "wss://") {
		var nd net.Dialer
		d := websocket.Dialer{HandshakeTimeout: p.cfg.Timeout, ReadBufferSize: 32 << 10, WriteBufferSize: 1 << 10,
			NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := nd.DialContext(ctx, network, addr)
				if err == nil {
					sent()
				}
				return c, err
			}}
		c, res, err := d.DialContext(ctx, u, nil)
		if err != nil {
			if res != nil {
				return nil, fmt.Errorf("WebSocket %s: %s", u, res.Status)
			}
			return nil, fmt.Errorf("WebSocket %s: %w", u, err)
		}
		stop := context.AfterFunc(ctx, func() { c.Close() })
		return &wsReader{c: c, stop: stop, timeout: p.cfg.Timeout}, nil
	}
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { sent() }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("URL %q: %w", u, err)
	}
	res, err := flvClient.Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", u, res.Status)
	}
	return res.Body, nil
}

// wsReader reads a WebSocket's binary messages as one byte stream. A
// message must come within timeout.
type wsReader struct {
	c       *websocket.Conn
	r       io.Reader
	stop    func() bool
	timeout time.Duration
}

func (w *wsReader) Read(b []byte) (int, error) {
	for {
		if w.r == nil {
			w.c.SetReadDeadline(time.Now().Add(w.timeout))
			typ, r, err := w.c.NextReader()
			if err != nil {
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				continue // a text message is no media
			}
			w.r = r
		}
		n, err := w.r.Read(b)
		if err == io.EOF {
			w.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (w *wsReader) Close() error {
	w.stop()
	return w.c.Close()
}

// readStream plays an HTTP-TS or HTTP-fMP4 URL (or its ws:// form) and
// counts what comes with sc.
func (p *player) readStream(ctx context.Context, st *readerStats, up func(), sc scanner, format string) error {
	ff := newFirstFrames(p)
	body, err := p.openStream(ctx, ff.start)
	if err != nil {
		return err
	}
	defer body.Close()
	up()
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			st.bytes.Add(uint64(n))
			c, serr := sc.scan(buf[:n])
			c.report(st, ff)
			if serr != nil {
				return fmt.Errorf("reading %s from %s: %w", format, p.cfg.URL, serr)
			}
		}
		if err != nil {
			return fmt.Errorf("reading %s from %s: %w", format, p.cfg.URL, eofMid(err))
		}
	}
}
