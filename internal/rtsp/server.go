// Package rtsp is Berth's RTSP server (RFC 2326, with what RFC 7826 clients
// send): publish with ANNOUNCE/SETUP/RECORD and play with
// DESCRIBE/SETUP/PLAY, over TCP interleaved and UDP, on top of the hub.
//
// One goroutine per connection reads requests and, for publishers,
// interleaved RTP. A player's hub reader wakes one of the server's sender
// goroutines, which writes its batch of packets with one writev (on Linux
// over TCP; elsewhere, over UDP, and while a client is slow, the player
// has a goroutine of its own).
package rtsp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/fanout"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/limits"
	"github.com/berthmedia/berth/internal/ports"
)

// Server serves RTSP on listeners it is given. Set the fields, then Serve.
type Server struct {
	Hub       *hub.Hub
	Log       *slog.Logger
	Auth      *auth.Checker
	AuthBasic bool     // offer Basic besides Digest
	HookAuth  HookAuth // on_rtsp_realm / on_rtsp_auth for players; nil: [auth] users only
	// StreamWait is how long a DESCRIBE of a missing stream waits for it to
	// be published ([general] maxStreamWaitMS; 0 = answer 404 at once).
	StreamWait time.Duration
	KeepAlive  time.Duration    // session timeout; default 15 s
	UDPRange   config.PortRange // server RTP/RTCP pairs for the UDP transport
	Instance   string           // per-process token sent as X-Berth-Instance
	Playback   Playback         // seek, speed and pause of streams that play a recording; nil: none
	Version    string

	// Limits against abuse (limits.go); zero takes the default.
	MaxHeaderBytes      int           // [rtsp] max_header_bytes: 431 over it
	MaxBodyBytes        int           // [rtsp] max_body_bytes: 413 over it
	HeaderTimeout       time.Duration // [rtsp] header_timeout_sec: a request must arrive within it (408)
	MaxInterleavedBytes int           // [rtsp] max_interleaved_bytes: a '$' frame of a connection that does not publish
	Warn                *limits.Warner
	ownWarn             limits.Own // Warn, or one of its own when Warn is nil

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closed    bool
	stop      chan struct{} // closed by Shutdown; ends the watchdog
	wg        sync.WaitGroup
	nextID    uint64
	senders   fanout.Pool   // goroutines that write for event-driven players
	poller    fanout.Poller // waits for the next request of playing connections (park)
	live      liveSettings  // hot-reloaded settings (live.go)
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = fmt.Errorf("rtsp: server closed: %w", net.ErrClosed)

func (s *Server) init() {
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
		s.listeners = map[net.Listener]struct{}{}
		s.stop = make(chan struct{})
		defer func() { go s.watchdog() }() // after the defaults below are set
	}
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	if s.KeepAlive <= 0 {
		s.KeepAlive = 15 * time.Second
	}
	if s.UDPRange.Lo == 0 {
		s.UDPRange = config.PortRange{Lo: 30000, Hi: 30999}
	}
	if s.Version == "" {
		s.Version = "dev"
	}
}

// Serve accepts connections on l until Shutdown or a permanent error.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	s.init()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()

	ports.AcceptLoop(l, s.Log, func(nc net.Conn) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return false
		}
		s.nextID++
		c := newConn(s, nc, s.nextID)
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		go s.handle(c, true)
		return true
	})
	return ErrServerClosed
}

// handle serves c on this goroutine; accepted is false where it goes on
// from another (a player between requests: see readLoop).
func (s *Server) handle(c *conn, accepted bool) {
	moved := false
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("connection crashed; closed it, others are unaffected", "panic", p, "stack", string(debug.Stack()))
			c.close("internal error")
			moved = false
		}
		if moved {
			s.park(c)
			return
		}
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.wg.Done()
	}()
	if accepted {
		c.log.Log(context.Background(), c.lifeLevel, "connection accepted", "local_port", portOf(c.nc.LocalAddr()))
	}
	moved = c.run()
}

// park waits for the next request of a playing connection. On Linux the
// server's poller waits for it (one epoll goroutine for every player), and
// a goroutine starts only when something arrives: an idle player holds no
// goroutine and no stack. Elsewhere, or for a connection the poller cannot
// wait for (RTSPS: TLS has bytes of its own buffered), a new goroutine
// waits in Read.
func (s *Server) park(c *conn) {
	if !c.parking.Park(&s.poller, c.nc, c.resume) {
		go s.handle(c, false)
	}
}

// Shutdown closes the listeners first, then ends every session, and waits
// for connection goroutines until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.init()
	if !s.closed {
		close(s.stop)
	}
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close("server shutting down")
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait() // every player has finished: the senders are idle
		s.senders.Close()
		s.poller.Close()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// watchdog is one goroutine for all connections (not one each, which costs
// a stack per idle player) that closes sessions silent past the keep-alive.
func (s *Server) watchdog() {
	period := watchdogPeriod(s.keepAlive())
	t := time.NewTicker(period)
	defer t.Stop()
	var conns []*conn
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.mu.Lock()
			conns = conns[:0]
			for c := range s.conns {
				conns = append(conns, c)
			}
			s.mu.Unlock()
			for _, c := range conns {
				c.checkIdle(now)
			}
			if p := watchdogPeriod(s.keepAlive()); p != period { // SetKeepAlive (live.go)
				period = p
				t.Reset(p)
			}
		}
	}
}

func portOf(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return strconv.Itoa(t.Port)
	}
	return a.String()
}
