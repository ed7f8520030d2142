// Package rtpsend sends a hub stream as RTP to another server, ZLMediaKit's
// startSendRtp, startSendRtpPassive and stopSendRtp: the GB28181 cascade,
// where a lower platform sends a camera's stream up as MPEG-PS over RTP
// (GB/T 28181-2016 annex C), or as the raw elementary stream over RTP. It
// is the reverse of internal/rtpproxy. Each sender is a reader of the hub
// with its own goroutine and socket: over UDP (a connected socket, so the
// peer's ICMP unreachable stops it) or TCP with RFC 4571 framing, Berth
// connecting (active) or waiting for the peer to connect (passive).
package rtpsend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/ports"
)

// Errors of Start; the HTTP API maps them to ZLMediaKit's codes.
var (
	ErrNotFound     = errors.New("can not find the source stream")
	ErrClosed       = errors.New("the RTP sender is shut down")
	ErrNoFreePort   = errors.New("no free port in [rtp_proxy] port_range for a passive sender")
	ErrPeerTimedOut = errors.New("the peer did not connect in time")
	ErrStreamEnded  = errors.New("the stream ended")
)

// Options describe one sender.
type Options struct {
	Path string // app/stream
	SSRC uint32
	// Host and Port are the receiver (active); ignored when Passive.
	Host string
	Port int
	UDP  bool
	// SrcPort is the local port to send from (active) or to listen on
	// (passive); 0: any port (active), a port from PortRange (passive).
	SrcPort   int
	PT        uint8 // payload type; 96 as ZLMediaKit when 0
	ES        bool  // raw elementary stream (one track) instead of MPEG-PS
	OnlyAudio bool
	Passive   bool
	// Wait is how long a passive sender waits for its peer (ZLMediaKit's
	// close_delay_ms); default 15 s. Active TCP connects within it too.
	Wait time.Duration
}

// Info describes a sender, for the API and the stopped hook.
type Info struct {
	Path      string
	SSRC      uint32
	Transport string // "udp", "tcp" or "tcp-passive"
	Peer      string // host:port of the receiver; "" while a passive one waits
	LocalPort int
	Payload   string // "ps" or "es"
	Since     time.Time
	Packets   uint64
	Bytes     uint64
}

// Manager runs the senders. The zero value with Hub set works.
type Manager struct {
	Hub *hub.Hub
	Log *slog.Logger
	// Host is the address senders bind ([general] listen_ip); "" = any.
	Host string
	// PortRange is where a passive sender listens when asked for port 0
	// ([rtp_proxy] port_range, as ZLMediaKit); the zero range asks the kernel.
	PortRange config.PortRange
	// OnStopped, if set, hears a sender that stopped by itself (its peer
	// went away, its stream ended, a passive peer never came), not one
	// stopped by Stop or Shutdown: ZLMediaKit's on_send_rtp_stopped.
	OnStopped func(Info, error)

	mu       sync.Mutex
	senders  map[key]*sender
	closed   bool
	nextPort int
	wg       sync.WaitGroup
}

type key struct {
	path string
	ssrc uint32
}

func (m *Manager) log() *slog.Logger {
	if m.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.Log
}

// Start starts a sender to o.Host:o.Port (active) or listening for its
// peer (passive) and returns the local port. A sender of the same stream
// and SSRC is replaced, as in ZLMediaKit. Active TCP returns once
// connected.
func (m *Manager) Start(ctx context.Context, o Options) (int, error) {
	if o.PT == 0 {
		o.PT = 96
	}
	if o.Wait <= 0 {
		o.Wait = 15 * time.Second
	}
	st := m.Hub.Get(o.Path)
	if st == nil {
		return 0, fmt.Errorf("%w %s", ErrNotFound, o.Path)
	}
	s := &sender{m: m, o: o, stop: make(chan struct{}), info: Info{Path: o.Path, SSRC: o.SSRC, Since: time.Now(), Payload: "ps"}}
	if o.ES {
		s.info.Payload = "es"
	}
	// Check the tracks now, so a stream the sender cannot carry is refused
	// by the call rather than by a log line later.
	if err := s.prepare(st.Tracks); err != nil {
		return 0, fmt.Errorf("%s (%s): %w", o.Path, trackNames(st.Tracks), err)
	}
	var err error
	switch {
	case o.Passive:
		err = s.listen()
	case o.UDP:
		err = s.dialUDP()
	default:
		err = s.dialTCP(ctx)
	}
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		s.closeConn()
		return 0, ErrClosed
	}
	if m.senders == nil {
		m.senders = map[key]*sender{}
	}
	k := key{o.Path, o.SSRC}
	old := m.senders[k]
	m.senders[k] = s
	m.wg.Add(1)
	m.mu.Unlock()
	if old != nil {
		old.halt(errReplaced, false)
	}
	port := s.info.LocalPort
	go s.run()
	return port, nil
}

// errReplaced and errStopped end a sender without the stopped hook.
var (
	errReplaced = errors.New("replaced by a new startSendRtp with the same ssrc")
	errStopped  = errors.New("stopped by stopSendRtp")
	errShutdown = errors.New("server shutting down")
)

// Stop stops the senders of path: the one of ssrc, or all when ssrc is
// nil. It returns how many it stopped.
func (m *Manager) Stop(path string, ssrc *uint32) int {
	m.mu.Lock()
	var hit []*sender
	for k, s := range m.senders {
		if k.path == path && (ssrc == nil || k.ssrc == *ssrc) {
			hit = append(hit, s)
			delete(m.senders, k)
		}
	}
	m.mu.Unlock()
	for _, s := range hit {
		s.halt(errStopped, false)
	}
	return len(hit)
}

// List describes the senders of path ("" = every stream), by path and SSRC.
func (m *Manager) List(path string) []Info {
	m.mu.Lock()
	var out []Info
	for k, s := range m.senders {
		if path == "" || k.path == path {
			out = append(out, s.snapshot())
		}
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].SSRC < out[j].SSRC
	})
	return out
}

// Shutdown stops every sender and waits for them until ctx is done.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	all := m.senders
	m.senders = nil
	m.mu.Unlock()
	for _, s := range all {
		s.halt(errShutdown, false)
	}
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// forget removes s from the registry if it is still there.
func (m *Manager) forget(s *sender) {
	m.mu.Lock()
	k := key{s.o.Path, s.o.SSRC}
	if m.senders[k] == s {
		delete(m.senders, k)
	}
	m.mu.Unlock()
}

// spec is a sender's socket as internal/ports knows it: opened by an API
// call, so a bind failure's fix says to ask for another port.
func (m *Manager) spec(network string, port int) ports.Spec {
	host := m.Host
	if host == "" {
		host = "::"
	}
	return ports.Spec{Name: "rtp_send", Network: network, Host: host, Port: port}
}

// listenInRange binds a passive sender's listener on a port of PortRange.
func (m *Manager) listenInRange() (net.Listener, error) {
	lo, hi := m.PortRange.Lo, m.PortRange.Hi
	if lo <= 0 {
		return ports.Listen(m.spec("tcp", 0))
	}
	if hi < lo {
		hi = lo
	}
	span := hi - lo + 1
	m.mu.Lock()
	start := m.nextPort
	m.mu.Unlock()
	for i := range span {
		p := lo + (start+i)%span
		l, err := ports.Listen(m.spec("tcp", p))
		if err != nil {
			continue
		}
		m.mu.Lock()
		m.nextPort = (start + i + 1) % span
		m.mu.Unlock()
		return l, nil
	}
	return nil, fmt.Errorf("%w %s; widen it or stop senders with stopSendRtp", ErrNoFreePort, m.PortRange)
}

// resolve turns the receiver's host (a name or an address) into an IP.
func resolve(ctx context.Context, host string) (net.IP, error) {
	if ip := net.ParseIP(host); ip != nil {
		return ip, nil
	}
	ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("dst_url %q does not resolve: %w", host, err)
	}
	for _, ip := range ips {
		if ip.To4() != nil {
			return ip, nil
		}
	}
	return ips[0], nil
}

// SSRCText is an SSRC as ZLMediaKit's API and hooks write it: decimal.
func SSRCText(ssrc uint32) string { return strconv.FormatUint(uint64(ssrc), 10) }
