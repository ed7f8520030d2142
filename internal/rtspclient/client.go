// Package rtspclient is Berth's RTSP client (RFC 2326): DESCRIBE, SETUP,
// PLAY to read a stream and ANNOUNCE, SETUP, RECORD to publish one, over TCP
// interleaved, UDP unicast or UDP multicast (play only, multicast.go), with
// Basic and Digest authentication; rtsps:// URLs run the same over TLS (RTP
// interleaved as RTP/AVP: no SRTP). Tests, `berth probe`, pulled sources
// and `berth bench` use it; the bench runs hundreds at once, so the packet
// path allocates nothing.
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
// UDP and multicast each track's RTP and RTCP arrive on their own
// goroutines, so callbacks for different tracks (or RTP and RTCP of one
// track) may run concurrently.
// Cancelling Dial's ctx closes the client.
package rtspclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
)

// Transport is how RTP travels.
type Transport int

const (
	TCP       Transport = iota // interleaved in the RTSP connection (RFC 2326 section 10.12)
	UDP                        // unicast UDP port pairs
	Multicast                  // a group and ports the server names (RFC 2326 section 12.39); play only
)

func (t Transport) String() string {
	switch t {
	case UDP:
		return "udp"
	case Multicast:
		return "multicast"
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
	// TLSConfig is for rtsps:// URLs (RTSP over TLS, port 322 by
	// default); nil verifies the server's certificate against the
	// system's roots for the URL's host.
	TLSConfig *tls.Config
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
	unreadable []UnreadableMedia // medias of the last DESCRIBE left out
	wbuf       []byte
	writeDL    time.Time // last write deadline set, refreshed lazily

	tracks    []*track
	chanTrack [256]int16 // interleaved channel -> track<<1 | isRTCP, or -1
	recording bool

	lifeMu   sync.Mutex // orders start against Close
	sockMu   sync.Mutex // orders a multicast join against fail closing the sockets
	running  atomic.Bool
	failed   atomic.Bool
	rxCount  atomic.Uint64 // packets and messages received, for the read timeout
	mediaRx  atomic.Uint64 // multicast packets from the source, for its read timeout
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
	rtp             *net.UDPConn // UDP and multicast
	rtcp            *net.UDPConn
	srvRTP, srvRTCP netip.AddrPort // multicast: srvRTCP is the group's RTCP port

	// multicast only: the joined groups, who sends, the interface joined on
	mrtp, mrtcp *mcastGroup
	source      netip.Addr
	ifName      string

	// receiver state for RTCP receiver reports (UDP and multicast)
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
	secure := strings.EqualFold(u.Scheme, "rtsps")
	host := u.Host
	if u.Port() == "" {
		port := "554"
		if secure {
			port = "322"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	d := net.Dialer{Timeout: opts.Timeout}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("rtsp %s: connecting: %w", u.CloneWithoutCredentials(), err)
	}
	if secure {
		conf := opts.TLSConfig
		if conf == nil {
			conf = &tls.Config{}
		}
		if conf.ServerName == "" && !conf.InsecureSkipVerify {
			conf = conf.Clone()
			conf.ServerName = u.Hostname()
		}
		tc := tls.Client(conn, conf)
		hctx, cancel := context.WithTimeout(ctx, opts.Timeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("rtsps %s: TLS handshake: %w", u.CloneWithoutCredentials(), err)
		}
		conn = tc
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
	// Under lifeMu: a ctx that ends at once runs Close, which reads stopCx,
	// on another goroutine before AfterFunc has returned.
	c.lifeMu.Lock()
	c.stopCx = context.AfterFunc(ctx, func() { c.Close() })
	c.lifeMu.Unlock()
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
		c.lifeMu.Lock()
		stop := c.stopCx
		c.lifeMu.Unlock()
		if stop != nil {
			stop()
		}
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
		c.sockMu.Lock()
		defer c.sockMu.Unlock()
		for _, t := range c.tracks {
			switch {
			case t.mrtp != nil:
				t.mrtp.leave()
				t.mrtcp.leave()
			case t.rtp != nil:
				t.rtp.Close()
				t.rtcp.Close()
			}
		}
	})
}
