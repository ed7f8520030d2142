// Package rtpproxy is Berth's RTP ingest, ZLMediaKit's "RTP proxy": RTP
// pushed to a UDP or TCP port (RFC 4571 framing), each SSRC a stream named
// rtp/<SSRC as 8 hex digits>, carrying MPEG-TS (ffmpeg's rtp_mpegts) or an
// MPEG program stream (GB28181 cameras and platforms). Payloads are put back
// in order, demuxed to access units and published to the hub.
package rtpproxy

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/limits"
	"github.com/berthmedia/berth/internal/ports"
)

// Errors of the port API; the HTTP API maps them to ZLMediaKit's codes.
var (
	ErrStreamIDExists = errors.New("an RTP port is already open for this stream_id")
	ErrNoStreamID     = errors.New("stream_id is required")
	ErrNoFreePort     = errors.New("no free port in [rtp_proxy] port_range")
	ErrBadTCPMode     = errors.New("tcp_mode must be 0 (UDP) or 1 (UDP and TCP passive)")
	ErrServerClosed   = errors.New("rtp proxy is shut down")
)

// Server receives RTP streams on the listeners it is given and on ports it
// opens on demand (OpenPort). The zero value with Hub set works.
type Server struct {
	Hub        *hub.Hub
	Log        *slog.Logger
	TimeoutSec int // a stream silent this long ends; default 15
	PSPT       int // payload type of MPEG-PS; default 96
	TSPT       int // payload type of MPEG-TS; default 33 (33 is always taken as TS)
	// PortRange is where OpenPort picks a port when asked for port 0; the
	// zero range asks the kernel.
	PortRange config.PortRange
	// Host is the address ports opened on demand bind ([general] listen_ip); "" = every interface.
	Host string
	// OnTimeout, if set, hears that the stream of a port opened with Open
	// went silent for TimeoutSec (ZLMediaKit's on_rtp_server_timeout). It
	// runs on its own goroutine.
	OnTimeout func(PortInfo)

	// Limits against abuse (limits.go); zero takes the default.
	MaxSSRCPerPort int           // [rtp_proxy] max_ssrc_per_port: streams one port holds at once
	UnreadyTimeout time.Duration // [rtp_proxy] unready_timeout_sec: an SSRC that is not a stream by then ends
	Warn           *limits.Warner
	ownWarn        limits.Own // Warn, or one of its own when Warn is nil
	ssrcRefused    atomic.Uint64
	unreadyDropped atomic.Uint64

	mu        sync.Mutex
	sessions  map[sessionKey]*session
	closers   map[io.Closer]struct{}
	dedicated map[string]*portBinding
	nextPort  int
	closed    bool
	startOnce sync.Once
	stop      chan struct{}
	wg        sync.WaitGroup

	garbage    atomic.Uint64 // datagrams (or TCP frames) that are not RTP
	rtcp       atomic.Uint64 // RTCP packets, ignored
	garbageLog atomic.Int64

	liveTimeout atomic.Int64 // nanoseconds set by SetTimeout; 0 = TimeoutSec

	tap          func(path string, f *hub.Frame) // tests: sees every frame published
	reorderDelay time.Duration                   // tests: a longer wait on a loaded machine
}

func (s *Server) init() {
	s.startOnce.Do(func() {
		if s.Log == nil {
			s.Log = slog.New(slog.DiscardHandler)
		}
		s.mu.Lock()
		s.sessions = map[sessionKey]*session{}
		s.closers = map[io.Closer]struct{}{}
		s.dedicated = map[string]*portBinding{}
		s.stop = make(chan struct{})
		s.mu.Unlock()
		s.wg.Add(1)
		go s.janitor()
	})
}

func (s *Server) timeout() time.Duration {
	if d := s.liveTimeout.Load(); d > 0 { // SetTimeout (live.go)
		return time.Duration(d)
	}
	if s.TimeoutSec <= 0 {
		return 15 * time.Second
	}
	return time.Duration(s.TimeoutSec) * time.Second
}

// track registers c to be closed at Shutdown; false when already shut down.
func (s *Server) track(c io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.closers[c] = struct{}{}
	return true
}

func (s *Server) untrack(c io.Closer) {
	s.mu.Lock()
	delete(s.closers, c)
	s.mu.Unlock()
}

// ServeUDP reads RTP datagrams from pc until it is closed.
func (s *Server) ServeUDP(pc *ports.PacketConn) error {
	s.init()
	if !s.track(pc) {
		pc.Close()
		return ErrServerClosed
	}
	var wg sync.WaitGroup
	for _, c := range pc.Conns() {
		wg.Add(1)
		s.wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.wg.Done()
			s.readUDP(c, nil)
		}()
	}
	wg.Wait()
	s.untrack(pc)
	return nil
}

func (s *Server) readUDP(c *net.UDPConn, d *portBinding) {
	defer s.recoverLog("udp reader")
	port := c.LocalAddr().(*net.UDPAddr).Port
	// A keyframe arrives as a burst of packets from every camera at once;
	// the default 208 KB buffer overflows at a few dozen HD streams. Best
	// effort: Linux caps it at net.core.rmem_max.
	c.SetReadBuffer(udpReadBuffer)
	buf := make([]byte, 65536)
	for {
		n, addr, err := c.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// ICMP errors surface as read errors on some systems; keep reading.
			continue
		}
		s.packet(buf[:n], addr.String(), "udp", port, d, nil)
	}
}

// ServeTCP accepts RTP over TCP (RFC 4571: each packet preceded by its
// 16-bit length) on l until it is closed.
func (s *Server) ServeTCP(l net.Listener) error {
	s.init()
	if !s.track(l) {
		l.Close()
		return ErrServerClosed
	}
	defer s.untrack(l)
	return s.acceptLoop(l, nil)
}

func (s *Server) acceptLoop(l net.Listener, d *portBinding) error {
	ports.AcceptLoop(l, s.Log, func(c net.Conn) bool {
		if !s.track(c) {
			return false
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			s.serveConn(c, d)
		}()
		return true
	})
	return nil
}

const udpReadBuffer = 4 << 20

// maxBadFrames is how many consecutive non-RTP frames end a TCP
// connection: past that the peer does not speak RFC 4571 and every length
// read is garbage.
const maxBadFrames = 8

func (s *Server) serveConn(c net.Conn, d *portBinding) {
	defer s.recoverLog("tcp connection")
	defer c.Close()
	remote := c.RemoteAddr().String()
	port := 0
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		port = a.Port
	}
	s.Log.Debug("RTP over TCP connection", "remote", remote, "port", port)
	defer s.closeOwned(c)
	r := bufio.NewReaderSize(c, 64<<10)
	var hdr [2]byte
	buf := make([]byte, 65535)
	bad := 0
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return
		}
		if s.packet(buf[:n], remote, "tcp", port, d, c) {
			bad = 0
			continue
		}
		if bad++; bad >= maxBadFrames {
			s.Log.Warn("RTP over TCP: the peer does not send RFC 4571 framed RTP (2-byte length, then the packet); connection closed",
				"remote", remote, "port", port)
			return
		}
	}
}

// closeOwned ends the streams a TCP connection carried: they cannot go on without it.
func (s *Server) closeOwned(owner any) {
	s.mu.Lock()
	var ended []*session
	for k, ss := range s.sessions {
		if ss.owner == owner {
			ended = append(ended, ss)
			delete(s.sessions, k)
		}
	}
	s.mu.Unlock()
	for _, ss := range ended {
		ss.close("TCP connection closed")
	}
}

// packet routes one RTP packet to its stream. It reports whether pkt was RTP.
func (s *Server) packet(pkt []byte, remote, transport string, port int, d *portBinding, owner any) bool {
	if len(pkt) >= 2 && pkt[1] >= 200 && pkt[1] <= 204 && pkt[0]>>6 == 2 {
		s.rtcp.Add(1) // RTCP on the RTP port (RFC 5761 muxing): nothing to do with it
		return true
	}
	h, ok := codec.ParseRTP(pkt)
	if !ok || len(h.Payload) == 0 {
		s.dropGarbage(remote, transport, port, len(pkt))
		return false
	}
	key := sessionKey{ssrc: h.SSRC}
	path := "rtp/" + ssrcHex(h.SSRC)
	if d != nil {
		if d.SSRC != 0 && h.SSRC != d.SSRC {
			s.dropGarbage(remote, transport, port, len(pkt))
			return true
		}
		key = sessionKey{streamID: d.StreamID}
		path = d.App + "/" + d.StreamID
	}
	now := time.Now()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return true
	}
	ss := s.sessions[key]
	if ss == nil && d == nil && s.portFull(port) { // [rtp_proxy] max_ssrc_per_port (limits.go)
		s.mu.Unlock()
		s.refuseSSRC(h.SSRC, remote, transport, port)
		return true
	}
	if ss == nil {
		origin := hub.Origin{Proto: "rtp", Remote: remote, ID: ssrcHex(h.SSRC)}
		log := s.Log
		ss = &session{
			srv: s, log: log, key: key, path: path, ssrc: h.SSRC, remote: remote, transport: transport,
			localPort: port, owner: owner, started: now, lastSeen: now,
			b: newBuilder(s.Hub, log, path, origin),
		}
		if s.tap != nil {
			ss.b.tap = func(f *hub.Frame) { s.tap(path, f) }
		}
		ss.reorder.delay = s.reorderDelay
		if d != nil && d.raw != nil {
			ss.kind = payloadRaw
			ss.raw = &rawState{desc: d.raw, keys: make([]codec.KeyDetector, len(d.raw.tracks)), reorder: map[uint32]*reorderer{}}
			for i, c := range d.raw.codecs {
				ss.raw.keys[i].Codec = c
			}
		}
		s.sessions[key] = ss
		s.mu.Unlock()
		log.Info("RTP stream started", "path", path, "ssrc", ssrcHex(h.SSRC), "remote", remote,
			"transport", transport, "port", port, "payload_type", h.PayloadType)
	} else {
		s.mu.Unlock()
	}
	ss.handle(h, pkt, now)
	return true
}

func (s *Server) dropGarbage(remote, transport string, port, size int) {
	n := s.garbage.Add(1)
	now := time.Now().UnixNano()
	if last := s.garbageLog.Load(); now-last > int64(10*time.Second) && s.garbageLog.CompareAndSwap(last, now) {
		s.Log.Warn("RTP proxy dropped packets that are not RTP (or not for this port's stream)",
			"remote", remote, "transport", transport, "port", port, "size", size, "dropped_total", n)
	}
}

// kindOf decides what a new stream carries: by payload type first, then by
// a look at the payload (senders that use a dynamic type for TS).
func (s *Server) kindOf(h codec.RTPHeader) payloadKind {
	ps, ts := s.PSPT, s.TSPT
	if ps == 0 {
		ps = 96
	}
	if ts == 0 {
		ts = 33
	}
	p := h.Payload
	switch pt := int(h.PayloadType); {
	case pt == ts || pt == 33:
		return payloadTS
	case pt == ps:
		return payloadPS
	case len(p) >= 188 && p[0] == 0x47 && len(p)%188 == 0:
		return payloadTS
	case len(p) >= 4 && p[0] == 0 && p[1] == 0 && p[2] == 1 && p[3] == psPack:
		return payloadPS
	}
	return payloadUnknown
}

// janitor ends streams that went silent or that the hub ended.
func (s *Server) janitor() {
	defer s.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.mu.Lock()
			all := make([]*session, 0, len(s.sessions))
			for _, ss := range s.sessions {
				all = append(all, ss)
			}
			s.mu.Unlock()
			for _, ss := range all {
				if ok, why := ss.expired(now, s.timeout()); ok {
					s.mu.Lock()
					if s.sessions[ss.key] == ss {
						delete(s.sessions, ss.key)
					}
					b := s.dedicatedAt(ss.localPort)
					s.mu.Unlock()
					ss.close(why)
					if b != nil && s.OnTimeout != nil && strings.HasPrefix(why, "no packets") {
						go s.OnTimeout(b.PortInfo)
					}
				}
			}
		}
	}
}

// dedicatedAt returns the port opened with Open on port, or nil; s.mu is held.
func (s *Server) dedicatedAt(port int) *portBinding {
	for _, b := range s.dedicated {
		if b.Port == port {
			return b
		}
	}
	return nil
}

func (s *Server) recoverLog(where string) {
	if r := recover(); r != nil {
		s.Log.Error("rtp proxy: recovered from a panic; the connection is dropped", "where", where, "panic", fmt.Sprint(r))
	}
}

// Stats are counters over the server's life.
type Stats struct {
	Streams  int    // live RTP streams
	Garbage  uint64 // packets that were not RTP, dropped
	RTCP     uint64 // RTCP packets, ignored
	Sessions []SessionStats
}

// SessionStats describes one live RTP stream.
type SessionStats struct {
	Path, Remote, Transport string
	LocalPort               int
	SSRC                    uint32
	Payload                 string // mpegts, ps, rtp
	Packets, Bytes, Lost    uint64
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.init()
	s.mu.Lock()
	all := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		all = append(all, ss)
	}
	s.mu.Unlock()
	st := Stats{Streams: len(all), Garbage: s.garbage.Load(), RTCP: s.rtcp.Load()}
	for _, ss := range all {
		p, b, l, kind := ss.stats()
		st.Sessions = append(st.Sessions, SessionStats{Path: ss.path, Remote: ss.remote, Transport: ss.transport,
			LocalPort: ss.localPort, SSRC: ss.ssrc, Payload: kind.String(), Packets: p, Bytes: b, Lost: l})
	}
	sort.Slice(st.Sessions, func(i, j int) bool { return st.Sessions[i].Path < st.Sessions[j].Path })
	return st
}

// Shutdown closes every listener and port, ends every stream, and waits
// for the goroutines until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	closers := s.closers
	s.closers = map[io.Closer]struct{}{}
	dedicated := s.dedicated
	s.dedicated = map[string]*portBinding{}
	sessions := s.sessions
	s.sessions = map[sessionKey]*session{}
	s.mu.Unlock()
	for c := range closers {
		c.Close()
	}
	for _, d := range dedicated {
		d.closeSockets()
	}
	for _, ss := range sessions {
		ss.close("server shutting down")
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StreamPath is the hub path of the stream an SSRC makes on the shared
// port: ZLMediaKit's rtp/<SSRC as 8 upper-case hex digits>.
func StreamPath(ssrc uint32) string { return "rtp/" + ssrcHex(ssrc) }

func ssrcHex(ssrc uint32) string { return fmt.Sprintf("%08X", ssrc) }
