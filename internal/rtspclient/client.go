// Package rtspclient is Berth's RTSP client (RFC 2326): DESCRIBE, SETUP,
// PLAY to read a stream and ANNOUNCE, SETUP, RECORD to publish one, over TCP
// interleaved or UDP unicast, with Basic and Digest authentication. Tests,
// `berth probe`, pulled sources and `berth bench` use it; the bench runs
// hundreds at once, so the packet path allocates nothing.
//
// It builds on gortsplib's leaf packages (base for messages, headers for
// Transport/Session/RTP-Info, description and sdpunmarshaler for SDP, auth
// for credentials) and owns its connection loop.
//
// Reading:
//
//	c, err := rtspclient.Dial(ctx, "rtsp://user:pass@127.0.0.1:8554/live/s", rtspclient.Options{Transport: rtspclient.TCP})
//	desc, rawSDP, err := c.Describe()  // non-2xx: *StatusError
//	err = c.SetupAll(desc)
//	c.OnPacket = func(track int, pkt []byte) { ... } // before Play; pkt is valid during the call only
//	rtpInfo, err := c.Play()            // starts the read loop
//	err = c.Wait()                      // until the server closes (io.EOF), Close (ErrClosed) or an error
//	c.Close()                           // TEARDOWN, then close
//
// Publishing:
//
//	desc, err := c.Announce(rawSDP)
//	err = c.SetupAll(desc)
//	err = c.Record()                    // starts the read loop (responses, RTCP)
//	err = c.WritePacket(track, rtpBytes)
//
// Callbacks: over TCP every callback runs on the read loop's goroutine; over
// UDP each track's RTP and RTCP arrive on their own goroutines, so callbacks
// for different tracks (or RTP and RTCP of one track) may run concurrently.
// Cancelling Dial's ctx closes the client.
package rtspclient

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"
	"github.com/bluenviron/gortsplib/v5/pkg/sdpunmarshaler"
	psdp "github.com/pion/sdp/v3"
)

// Transport is how RTP travels.
type Transport int

const (
	TCP Transport = iota // interleaved in the RTSP connection (RFC 2326 section 10.12)
	UDP                  // unicast UDP port pairs
)

func (t Transport) String() string {
	if t == UDP {
		return "udp"
	}
	return "tcp"
}

// Options tune a client. The zero value works.
type Options struct {
	Transport Transport
	// Timeout bounds the dial and each request's round trip. Default 10 s.
	Timeout time.Duration
	// ReadTimeout ends a playing session that received nothing for this
	// long. Default 10 s.
	ReadTimeout time.Duration
	// KeepAlive is the keep-alive period; 0 means half the session timeout
	// the server announces (RFC 2326 section 12.37; 60 s when it says none).
	KeepAlive time.Duration
	// ReadBufferSize is the TCP read buffer; frames up to this size are
	// handed out without a copy. Default 64 KiB + 4, the largest frame.
	ReadBufferSize int
	// UserAgent is sent with every request. Default "berth-rtspclient".
	UserAgent string
}

// ErrClosed is what Wait returns after Close.
var ErrClosed = errors.New("rtspclient: closed by the caller")

// StatusError is a response other than 2xx.
type StatusError struct {
	Method base.Method
	URL    string
	Code   base.StatusCode
	Reason string
	Header base.Header
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("rtsp %s %s: server answered %d %s", e.Method, e.URL, e.Code, e.Reason)
}

// Client is one RTSP session on one connection.
type Client struct {
	// OnPacket receives every RTP packet with its track (the index of its
	// media in the description). pkt is valid only during the call.
	OnPacket func(track int, pkt []byte)
	// OnRTCP receives every RTCP packet, likewise.
	OnRTCP func(track int, pkt []byte)

	url    *base.URL // without credentials
	user   string
	pass   string
	opts   Options
	conn   net.Conn
	dm     *demuxer
	stopCx func() bool

	mu         sync.Mutex // guards what follows: requests are built and written under it
	cseq       int
	session    string
	sessionTTL time.Duration
	sender     *auth.Sender
	lastRes    *base.Response
	public     string
	wbuf       []byte
	writeDL    time.Time // last write deadline set, refreshed lazily

	tracks    []*track
	chanTrack [256]int16 // interleaved channel -> track<<1 | isRTCP, or -1
	recording bool

	lifeMu   sync.Mutex // orders start against Close
	running  atomic.Bool
	failed   atomic.Bool
	rxCount  atomic.Uint64 // packets and messages received, for the read timeout
	pmu      sync.Mutex
	pending  map[int]chan *base.Response
	done     chan struct{}
	failOnce sync.Once
	err      error
	closing  atomic.Bool
	closeMu  sync.Once
}

type track struct {
	media           *description.Media
	rtp             *net.UDPConn // UDP only
	rtcp            *net.UDPConn
	srvRTP, srvRTCP netip.AddrPort

	// receiver state for RTCP receiver reports (UDP)
	ssrc     atomic.Uint32
	extSeq   atomic.Uint32
	received atomic.Uint32
}

// Dial connects to rawURL's host. Credentials in the URL are used when the
// server asks for them (Basic or Digest).
func Dial(ctx context.Context, rawURL string, opts Options) (*Client, error) {
	u, err := base.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("rtsp URL %q: %w (expected rtsp://host[:port]/path)", rawURL, err)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = 10 * time.Second
	}
	if opts.ReadBufferSize <= 0 {
		opts.ReadBufferSize = frameHeaderSize + 65535
	}
	if opts.ReadBufferSize < 64 {
		opts.ReadBufferSize = 64
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "berth-rtspclient"
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "554")
	}
	d := net.Dialer{Timeout: opts.Timeout}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("rtsp %s: connecting: %w", u.CloneWithoutCredentials(), err)
	}
	c := &Client{
		url:     u.CloneWithoutCredentials(),
		opts:    opts,
		conn:    conn,
		dm:      newDemuxer(conn, opts.ReadBufferSize),
		pending: map[int]chan *base.Response{},
		done:    make(chan struct{}),
	}
	if u.User != nil {
		c.user = u.User.Username()
		c.pass, _ = u.User.Password()
	}
	for i := range c.chanTrack {
		c.chanTrack[i] = -1
	}
	c.stopCx = context.AfterFunc(ctx, func() { c.Close() })
	return c, nil
}

// URL is the stream URL without credentials.
func (c *Client) URL() *base.URL { return c.url }

// Conn is the RTSP connection (for its local and remote address).
func (c *Client) Conn() net.Conn { return c.conn }

// LastResponse is the last response received to a request.
func (c *Client) LastResponse() *base.Response {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastRes
}

// ServerHeader is the Server header of the last response ("" if none).
func (c *Client) ServerHeader() string {
	if r := c.LastResponse(); r != nil {
		if v := r.Header["Server"]; len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// Session is the session id the server gave in SETUP.
func (c *Client) Session() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session
}

// Options sends OPTIONS and returns the response.
func (c *Client) Options() (*base.Response, error) {
	res, err := c.do(base.Options, c.url, nil, nil)
	if err != nil {
		return res, err
	}
	if p := res.Header["Public"]; len(p) > 0 {
		c.mu.Lock()
		c.public = strings.Join(p, ",")
		c.mu.Unlock()
	}
	return res, nil
}

// Describe asks for the stream's description. rawSDP is the body as sent.
func (c *Client) Describe() (desc *description.Session, rawSDP []byte, err error) {
	res, err := c.do(base.Describe, c.url, base.Header{"Accept": base.HeaderValue{"application/sdp"}}, nil)
	if err != nil {
		return nil, nil, err
	}
	ssd, err := sdpunmarshaler.Unmarshal(res.Body)
	if err != nil {
		return nil, res.Body, fmt.Errorf("rtsp DESCRIBE %s: the server's SDP does not parse: %w", c.url, err)
	}
	var d description.Session
	if err := d.Unmarshal2(ssd); err != nil {
		return nil, res.Body, fmt.Errorf("rtsp DESCRIBE %s: the server's SDP is not usable: %w", c.url, err)
	}
	d.BaseURL = c.baseURL(ssd, res)
	return &d, res.Body, nil
}

// baseURL is where media control URLs are relative to (RFC 2326 C.1.1):
// a session-level absolute control, else Content-Base, else the request URL.
func (c *Client) baseURL(ssd *psdp.SessionDescription, res *base.Response) *base.URL {
	if ctl, ok := ssd.Attribute("control"); ok && ctl != "*" {
		if u, err := base.ParseURL(ctl); err == nil {
			return u
		}
	}
	for _, h := range []string{"Content-Base", "Content-Location"} {
		if v := res.Header[h]; len(v) == 1 {
			s := v[0]
			if strings.HasPrefix(s, "/") {
				s = c.url.Scheme + "://" + c.url.Host + s
			}
			if u, err := base.ParseURL(s); err == nil {
				return u.CloneWithoutCredentials()
			}
		}
	}
	return c.url
}

// Announce sends rawSDP as the description of a stream to publish and
// returns it parsed, ready for SetupAll.
func (c *Client) Announce(rawSDP []byte) (*description.Session, error) {
	ssd, err := sdpunmarshaler.Unmarshal(rawSDP)
	if err != nil {
		return nil, fmt.Errorf("rtsp ANNOUNCE %s: the SDP to publish does not parse: %w", c.url, err)
	}
	var d description.Session
	if err := d.Unmarshal2(ssd); err != nil {
		return nil, fmt.Errorf("rtsp ANNOUNCE %s: the SDP to publish is not usable: %w", c.url, err)
	}
	d.BaseURL = c.url
	if _, err := c.do(base.Announce, c.url, base.Header{"Content-Type": base.HeaderValue{"application/sdp"}}, rawSDP); err != nil {
		return nil, err
	}
	c.recording = true
	return &d, nil
}

// SetupAll sets up every media of desc: to play after Describe, to record
// after Announce. Over TCP media i asks for interleaved channels 2i and
// 2i+1; over UDP the client binds an even/odd port pair per media on the
// local address of its RTSP connection.
func (c *Client) SetupAll(desc *description.Session) error {
	for i, m := range desc.Medias {
		if err := c.setup(desc, i, m); err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) setup(desc *description.Session, i int, m *description.Media) error {
	baseURL := desc.BaseURL
	if baseURL == nil {
		baseURL = c.url
	}
	mu, err := m.URL(baseURL)
	if err != nil {
		return fmt.Errorf("rtsp SETUP media %d: %w", i, err)
	}
	t := &track{media: m}
	th := headers.Transport{Profile: m.Profile}
	delivery := headers.TransportDeliveryUnicast
	th.Delivery = &delivery
	if c.recording {
		mode := headers.TransportModeRecord
		th.Mode = &mode
	}
	if c.opts.Transport == TCP {
		th.Protocol = headers.TransportProtocolTCP
		th.InterleavedIDs = &[2]int{2 * i, 2*i + 1}
	} else {
		th.Protocol = headers.TransportProtocolUDP
		ip := c.conn.LocalAddr().(*net.TCPAddr).IP
		t.rtp, t.rtcp, err = listenPair(ip)
		if err != nil {
			return fmt.Errorf("rtsp SETUP %s: binding a UDP port pair on %s: %w", mu, ip, err)
		}
		th.ClientPorts = &[2]int{t.rtp.LocalAddr().(*net.UDPAddr).Port, t.rtcp.LocalAddr().(*net.UDPAddr).Port}
	}
	c.tracks = append(c.tracks, t) // before the request, so Close releases the ports on failure
	res, err := c.do(base.Setup, mu, base.Header{"Transport": th.Marshal()}, nil)
	if err != nil {
		return err
	}
	var rt headers.Transport
	if err := rt.Unmarshal(res.Header["Transport"]); err != nil {
		return fmt.Errorf("rtsp SETUP %s: the server's Transport header does not parse: %w", mu, err)
	}
	c.mu.Lock()
	if c.session == "" {
		var sh headers.Session
		if err := sh.Unmarshal(res.Header["Session"]); err != nil {
			c.mu.Unlock()
			return fmt.Errorf("rtsp SETUP %s: the server sent no usable Session header: %w", mu, err)
		}
		c.session = sh.Session
		c.sessionTTL = 60 * time.Second
		if sh.Timeout != nil && *sh.Timeout > 0 {
			c.sessionTTL = time.Duration(*sh.Timeout) * time.Second
		}
	}
	c.mu.Unlock()
	if c.opts.Transport == TCP {
		ids := [2]int{2 * i, 2*i + 1}
		if rt.InterleavedIDs != nil {
			ids = *rt.InterleavedIDs // the server may choose other channels
		}
		if ids[0] < 0 || ids[0] > 255 || ids[1] < 0 || ids[1] > 255 {
			return fmt.Errorf("rtsp SETUP %s: the server chose interleaved channels %v, outside 0-255", mu, ids)
		}
		c.chanTrack[ids[0]] = int16(i << 1)
		c.chanTrack[ids[1]] = int16(i<<1 | 1)
		return nil
	}
	if rt.ServerPorts == nil {
		return fmt.Errorf("rtsp SETUP %s: the server's Transport has no server_port for UDP; try TCP", mu)
	}
	srv := c.conn.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()
	if rt.Source2 != nil {
		if a, err := netip.ParseAddr(*rt.Source2); err == nil {
			srv = a
		}
	}
	t.srvRTP = netip.AddrPortFrom(srv, uint16(rt.ServerPorts[0]))
	t.srvRTCP = netip.AddrPortFrom(srv, uint16(rt.ServerPorts[1]))
	return nil
}

// Play starts playing every media set up, and the read loop. Set OnPacket
// and OnRTCP before calling it.
func (c *Client) Play() (headers.RTPInfo, error) {
	if len(c.tracks) == 0 {
		return nil, fmt.Errorf("rtsp PLAY %s: nothing set up; call SetupAll first", c.url)
	}
	res, err := c.do(base.Play, c.url, base.Header{"Range": base.HeaderValue{"npt=0.000-"}}, nil)
	if err != nil {
		return nil, err
	}
	var info headers.RTPInfo
	if v, ok := res.Header["RTP-Info"]; ok {
		if info.Unmarshal(v) != nil {
			info = nil // informative only
		}
	}
	if err := c.start(); err != nil {
		return nil, err
	}
	return info, nil
}

// Record starts publishing and the read loop (which consumes keep-alive
// responses and RTCP).
func (c *Client) Record() error {
	if len(c.tracks) == 0 || !c.recording {
		return fmt.Errorf("rtsp RECORD %s: call Announce and SetupAll first", c.url)
	}
	if _, err := c.do(base.Record, c.url, base.Header{"Range": base.HeaderValue{"npt=0.000-"}}, nil); err != nil {
		return err
	}
	return c.start()
}

// Wait blocks until the session ends: io.EOF (wrapped) when the server
// closed the connection, ErrClosed after Close, else the error.
func (c *Client) Wait() error {
	if !c.running.Load() {
		return fmt.Errorf("rtsp %s: Wait needs Play or Record first", c.url)
	}
	<-c.done
	return c.err
}

// Done is closed when the session has ended; Err then tells why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is why the session ended (nil while it runs).
func (c *Client) Err() error {
	if c.failed.Load() {
		return c.err
	}
	return nil
}

// Close sends TEARDOWN (without waiting for the answer), closes the
// connection and UDP ports, and waits for the read loop to end. Safe to
// call more than once and concurrently, but not from a callback (it would
// wait for itself).
func (c *Client) Close() error {
	c.closeMu.Do(func() {
		c.closing.Store(true)
		c.stopCx()
		if c.Session() != "" && (c.Err() == nil) {
			c.mu.Lock()
			c.conn.SetWriteDeadline(time.Now().Add(time.Second))
			c.writeRequestLocked(base.Teardown, c.url, nil, nil)
			c.mu.Unlock()
		}
		c.fail(ErrClosed)
		c.lifeMu.Lock()
		if !c.running.Load() {
			close(c.done)
		}
		c.lifeMu.Unlock()
	})
	if c.running.Load() {
		<-c.done
	}
	return nil
}

// fail ends the session with err (the first error wins) and releases
// sockets, which unblocks every loop.
func (c *Client) fail(err error) {
	c.failOnce.Do(func() {
		if c.closing.Load() {
			err = ErrClosed
		}
		c.err = err
		c.failed.Store(true)
		c.conn.Close()
		for _, t := range c.tracks {
			if t.rtp != nil {
				t.rtp.Close()
				t.rtcp.Close()
			}
		}
	})
}

// WritePacket sends an RTP packet of track while recording.
func (c *Client) WritePacket(track int, pkt []byte) error { return c.write(track, pkt, false) }

// WriteRTCP sends an RTCP packet of track.
func (c *Client) WriteRTCP(track int, pkt []byte) error { return c.write(track, pkt, true) }

func (c *Client) write(tr int, pkt []byte, rtcp bool) error {
	if tr < 0 || tr >= len(c.tracks) {
		return fmt.Errorf("rtsp %s: no track %d (set up %d)", c.url, tr, len(c.tracks))
	}
	if err := c.Err(); err != nil {
		return err
	}
	t := c.tracks[tr]
	if c.opts.Transport == UDP {
		conn, to := t.rtp, t.srvRTP
		if rtcp {
			conn, to = t.rtcp, t.srvRTCP
		}
		_, err := conn.WriteToUDPAddrPort(pkt, to)
		return err
	}
	if len(pkt) > 65535 {
		return fmt.Errorf("rtsp %s: packet of %d bytes exceeds the interleaved frame limit of 65535", c.url, len(pkt))
	}
	ch := c.channelOf(tr, rtcp)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wbuf = append(c.wbuf[:0], '$', byte(ch), byte(len(pkt)>>8), byte(len(pkt)))
	c.wbuf = append(c.wbuf, pkt...)
	c.refreshWriteDeadlineLocked()
	_, err := c.conn.Write(c.wbuf)
	return err
}

func (c *Client) channelOf(tr int, rtcp bool) int {
	want := int16(tr << 1)
	if rtcp {
		want |= 1
	}
	for ch, v := range c.chanTrack {
		if v == want {
			return ch
		}
	}
	return 0
}

// refreshWriteDeadlineLocked moves the write deadline forward at most once
// a second: setting it per packet would cost a timer update each time.
func (c *Client) refreshWriteDeadlineLocked() {
	now := time.Now()
	if c.writeDL.Sub(now) < c.opts.Timeout-time.Second {
		c.writeDL = now.Add(c.opts.Timeout)
		c.conn.SetWriteDeadline(c.writeDL)
	}
}

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
			return nil, fmt.Errorf("rtsp %s %s: no response within %s", method, u, c.opts.Timeout)
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
				return nil, fmt.Errorf("rtsp %s %s: no response within %s", method, u, c.opts.Timeout)
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

// dispatch hands an interleaved frame to its callback.
func (c *Client) dispatch(ch uint8, payload []byte) {
	v := c.chanTrack[ch]
	if v < 0 {
		return // a channel nobody set up: ignore, as RFC 2326 10.12 allows
	}
	if v&1 == 0 {
		if c.OnPacket != nil {
			c.OnPacket(int(v>>1), payload)
		}
	} else if c.OnRTCP != nil {
		c.OnRTCP(int(v>>1), payload)
	}
}

// start launches the read loop (and UDP readers) and the housekeeping.
// It fails if the client was closed meanwhile (Close may run concurrently
// when Dial's context is cancelled).
func (c *Client) start() error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.failed.Load() {
		return c.err
	}
	c.running.Store(true)
	var wg sync.WaitGroup
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		c.readLoop()
	}()
	if c.opts.Transport == UDP {
		for i, t := range c.tracks {
			wg.Add(2)
			go func() { defer wg.Done(); c.udpLoop(i, t, t.rtp, false) }()
			go func() { defer wg.Done(); c.udpLoop(i, t, t.rtcp, true) }()
		}
	}
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.housekeeping(stop)
	}()
	// Every loop ends through fail, which closes the connection, so the
	// TCP read loop always ends; done closes only after every goroutine
	// has returned, so Wait's caller sees no callback after it.
	go func() {
		<-readDone
		close(stop)
		wg.Wait()
		close(c.done)
	}()
	return nil
}

func (c *Client) readLoop() {
	c.conn.SetReadDeadline(time.Time{})
	for {
		kind, ch, payload, res, req, err := c.dm.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("rtsp %s: the server closed the connection: %w", c.url, err)
			} else {
				err = fmt.Errorf("rtsp %s: reading: %w", c.url, err)
			}
			c.fail(err)
			return
		}
		c.rxCount.Add(1)
		switch kind {
		case msgFrame:
			c.dispatch(ch, payload)
		case msgRequest:
			c.answer(req)
		case msgResponse:
			if n, ok := cseqOf(res.Header); ok {
				c.pmu.Lock()
				pch := c.pending[n]
				c.pmu.Unlock()
				if pch != nil {
					pch <- res
				}
			}
		}
	}
}

func (c *Client) udpLoop(i int, t *track, conn *net.UDPConn, rtcp bool) {
	size := 16 << 10
	if rtcp {
		size = 2 << 10
	}
	buf := make([]byte, size)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			c.fail(fmt.Errorf("rtsp %s: reading UDP: %w", c.url, err))
			return
		}
		c.rxCount.Add(1)
		pkt := buf[:n]
		if rtcp {
			if c.OnRTCP != nil {
				c.OnRTCP(i, pkt)
			}
			continue
		}
		if n >= 12 {
			t.ssrc.Store(binary.BigEndian.Uint32(pkt[8:]))
			seq := uint32(binary.BigEndian.Uint16(pkt[2:]))
			old := t.extSeq.Load()
			if t.received.Add(1) == 1 {
				t.extSeq.Store(seq)
			} else if d := int16(seq - old&0xffff); d > 0 {
				t.extSeq.Store(old + uint32(d))
			}
		}
		if c.OnPacket != nil {
			c.OnPacket(i, pkt)
		}
	}
}

// housekeeping sends keep-alives, RTCP receiver reports over UDP (so the
// server sees the session alive on its media ports too), and ends a
// playing session that receives nothing for ReadTimeout.
func (c *Client) housekeeping(stop <-chan struct{}) {
	c.mu.Lock()
	ka := c.opts.KeepAlive
	if ka <= 0 {
		ka = c.sessionTTL / 2
		if ka <= 0 {
			ka = 30 * time.Second
		}
	}
	useGet := strings.Contains(c.public, string(base.GetParameter))
	c.mu.Unlock()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastKA, lastRR, lastRx := time.Now(), time.Time{}, time.Now()
	rx := c.rxCount.Load()
	var ourSSRC [4]byte
	rand.Read(ourSSRC[:])
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			if n := c.rxCount.Load(); n != rx {
				rx, lastRx = n, now
			} else if !c.recording && now.Sub(lastRx) >= c.opts.ReadTimeout {
				hint := ""
				if c.opts.Transport == UDP {
					hint = "; no UDP packets arrive: a firewall or NAT is likely, try TCP"
				}
				c.fail(fmt.Errorf("rtsp %s: nothing received for %s%s", c.url, c.opts.ReadTimeout, hint))
				return
			}
			if now.Sub(lastKA) >= ka {
				lastKA = now
				m := base.Options
				if useGet {
					m = base.GetParameter
				}
				c.mu.Lock()
				c.refreshWriteDeadlineLocked()
				c.writeRequestLocked(m, c.url, nil, nil) // answer consumed by the read loop
				c.mu.Unlock()
			}
			if c.opts.Transport == UDP && !c.recording && now.Sub(lastRR) >= 5*time.Second {
				lastRR = now
				for _, t := range c.tracks {
					if t.received.Load() == 0 {
						continue
					}
					rr := receiverReport(ourSSRC, t.ssrc.Load(), t.extSeq.Load())
					t.rtcp.WriteToUDPAddrPort(rr[:], t.srvRTCP)
				}
			}
		}
	}
}

// receiverReport builds an RTCP RR with one report block (RFC 3550 6.4.2).
// Loss and jitter are left 0: the report keeps the session alive; the
// caller measures loss itself.
func receiverReport(our [4]byte, ssrc, extSeq uint32) [32]byte {
	var b [32]byte
	b[0] = 0x81 // V=2, RC=1
	b[1] = 201  // RR
	binary.BigEndian.PutUint16(b[2:], 7)
	copy(b[4:], our[:])
	binary.BigEndian.PutUint32(b[8:], ssrc)
	binary.BigEndian.PutUint32(b[16:], extSeq)
	return b
}

// listenPair binds an even RTP port and the odd RTCP port above it
// (RFC 3550 section 11) on ip.
func listenPair(ip net.IP) (*net.UDPConn, *net.UDPConn, error) {
	var lastErr error
	for range 64 {
		a, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
		if err != nil {
			return nil, nil, err
		}
		p := a.LocalAddr().(*net.UDPAddr).Port
		if p%2 != 0 || p == 65534 {
			a.Close()
			continue
		}
		b, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: p + 1})
		if err != nil {
			a.Close()
			lastErr = err
			continue
		}
		a.SetReadBuffer(1 << 20)
		return a, b, nil
	}
	if lastErr == nil {
		lastErr = errors.New("no even port came up in 64 tries")
	}
	return nil, nil, lastErr
}
