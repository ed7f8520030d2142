// Requests and responses on the connection: one round trip at a time, the 401 retry,
// and answers to the server's own requests.

package rtspclient

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
)

// do sends a request and waits for its response, answering one 401 with
// credentials from the URL.
func (c *Client) do(method base.Method, u *base.URL, h base.Header, body []byte) (*base.Response, error) {
	for attempt := 0; ; attempt++ {
		res, err := c.roundTrip(method, u, h, body)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.lastRes = res
		c.mu.Unlock()
		if res.StatusCode == base.StatusUnauthorized && attempt == 0 && c.user != "" {
			s := &auth.Sender{WWWAuth: res.Header["WWW-Authenticate"], User: c.user, Pass: c.pass}
			if err := s.Initialize(); err != nil {
				return res, fmt.Errorf("rtsp %s %s: 401 with a challenge the client cannot answer: %w", method, u, err)
			}
			c.mu.Lock()
			c.sender = s
			c.mu.Unlock()
			continue
		}
		if res.StatusCode < 200 || res.StatusCode > 299 {
			return res, &StatusError{Method: method, URL: u.String(), Code: res.StatusCode, Reason: res.StatusMessage, Header: res.Header}
		}
		return res, nil
	}
}

func (c *Client) roundTrip(method base.Method, u *base.URL, h base.Header, body []byte) (*base.Response, error) {
	if err := c.Err(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(c.opts.Timeout)
	if c.running.Load() {
		// The read loop owns the reader: it hands our response over by CSeq.
		ch := make(chan *base.Response, 1)
		c.mu.Lock()
		c.conn.SetWriteDeadline(deadline)
		c.writeDL = deadline
		cseq, err := c.writeRequestLocked(method, u, h, body)
		if err == nil {
			c.pmu.Lock()
			c.pending[cseq] = ch
			c.pmu.Unlock()
		}
		c.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("rtsp %s %s: sending: %w", method, u, err)
		}
		defer func() {
			c.pmu.Lock()
			delete(c.pending, cseq)
			c.pmu.Unlock()
		}()
		select {
		case res := <-ch:
			return res, nil
		case <-c.done:
			return nil, c.err
		case <-time.After(time.Until(deadline)):
			return nil, fmt.Errorf("rtsp %s %s: no response within %s: %w", method, u, c.opts.Timeout, os.ErrDeadlineExceeded)
		}
	}
	c.mu.Lock()
	c.conn.SetDeadline(deadline)
	cseq, err := c.writeRequestLocked(method, u, h, body)
	c.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("rtsp %s %s: sending: %w", method, u, err)
	}
	for {
		kind, ch, payload, res, req, err := c.dm.next()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return nil, fmt.Errorf("rtsp %s %s: no response within %s: %w", method, u, c.opts.Timeout, os.ErrDeadlineExceeded)
			}
			return nil, fmt.Errorf("rtsp %s %s: reading the response: %w", method, u, err)
		}
		switch kind {
		case msgFrame: // some servers start sending before the PLAY response
			c.dispatch(ch, payload)
		case msgRequest:
			c.answer(req)
		case msgResponse:
			if n, ok := cseqOf(res.Header); ok && n != cseq {
				continue // late answer to an earlier request
			}
			c.conn.SetDeadline(time.Time{})
			c.writeDL = time.Time{}
			return res, nil
		}
	}
}

// writeRequestLocked writes a request with CSeq, Session and credentials.
func (c *Client) writeRequestLocked(method base.Method, u *base.URL, h base.Header, body []byte) (int, error) {
	c.cseq++
	hdr := base.Header{
		"CSeq":       base.HeaderValue{strconv.Itoa(c.cseq)},
		"User-Agent": base.HeaderValue{c.opts.UserAgent},
	}
	for k, v := range h {
		hdr[k] = v
	}
	if c.session != "" {
		hdr["Session"] = base.HeaderValue{c.session}
	}
	req := &base.Request{Method: method, URL: u, Header: hdr, Body: body}
	if c.sender != nil {
		c.sender.AddAuthorization(req)
	}
	b, err := req.Marshal()
	if err != nil {
		return 0, err
	}
	_, err = c.conn.Write(b)
	return c.cseq, err
}

func cseqOf(h base.Header) (int, bool) {
	v := h["CSeq"]
	if len(v) != 1 {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(v[0]))
	return n, err == nil
}

// answer replies to a request from the server: keep-alives succeed, the
// rest are not implemented.
func (c *Client) answer(req *base.Request) {
	code := base.StatusNotImplemented
	switch req.Method {
	case base.Options, base.GetParameter, base.SetParameter:
		code = base.StatusOK
	}
	res := base.Response{StatusCode: code, Header: base.Header{}}
	if v, ok := req.Header["CSeq"]; ok {
		res.Header["CSeq"] = v
	}
	b, err := res.Marshal()
	if err != nil {
		return
	}
	c.mu.Lock()
	c.refreshWriteDeadlineLocked()
	c.conn.Write(b)
	c.mu.Unlock()
}
