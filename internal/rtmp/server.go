package rtmp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/fanout"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/limits"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/ports"
)

// ErrServerClosed is returned by Serve after Shutdown; it wraps net.ErrClosed.
var ErrServerClosed = fmt.Errorf("rtmp: server closed: %w", net.ErrClosed)

// Server serves RTMP on listeners it is given. The zero value plus a Hub works.
type Server struct {
	Hub      *hub.Hub
	Log      *slog.Logger
	Auth     *auth.Checker
	Instance string // sent as berth_instance in the connect reply
	Version  string // sent as fmsVer "Berth/<Version>"
	// StreamWait is how long a play of a missing stream waits for it to be
	// published ([general] maxStreamWaitMS; 0 = refuse at once).
	StreamWait time.Duration

	// WriteTimeout drops a reader whose socket accepts nothing for this
	// long; default 10 s. A publisher that sends nothing is dropped after the
	// read timeout (SetReadTimeout).
	WriteTimeout time.Duration
	readTO       atomic.Int64 // [rtmp] keepAliveSecond, live; 0: 15 s

	// Limits against abuse (limits.go); zero takes the default.
	HandshakeTimeout time.Duration // [rtmp] handshakeSecond: the handshake must be done within it; default 15 s
	MaxMessageBytes  int           // [rtmp] max_message_bytes: one message; default DefaultMaxMessage
	Warn             *limits.Warner
	ownWarn          limits.Own // Warn, or one of its own when Warn is nil

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closed    bool
	wg        sync.WaitGroup
	senders   fanout.Pool   // goroutines that write for event-driven players
	poller    fanout.Poller // waits for the next message of playing connections (park)
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return logging.Discard()
	}
	return s.Log
}

func (s *Server) writeTimeout() time.Duration {
	if s.WriteTimeout > 0 {
		return s.WriteTimeout
	}
	return 10 * time.Second
}

// SetReadTimeout sets how long a publisher (or a client that has not begun
// to play) may send nothing before it is dropped ([rtmp] keepAliveSecond):
// a publisher whose peer vanished without a FIN holds its path until then.
// It applies from each connection's next read on. 0 restores 15 s,
// ZLMediaKit's default.
func (s *Server) SetReadTimeout(d time.Duration) { s.readTO.Store(int64(d)) }

func (s *Server) readTimeout() time.Duration {
	if d := time.Duration(s.readTO.Load()); d > 0 {
		return d
	}
	return 15 * time.Second
}

// Serve accepts connections on l until Shutdown; it returns an error that
// wraps net.ErrClosed after Shutdown.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = map[net.Listener]struct{}{}
		s.conns = map[*conn]struct{}{}
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	ports.AcceptLoop(l, s.log(), func(nc net.Conn) bool {
		c := newConn(s, nc)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return false
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		go s.run(c, false)
		return true
	})
	return ErrServerClosed
}

// run serves c on this goroutine; resumed where it goes on after a wait on
// the poller (see park).
func (s *Server) run(c *conn, resumed bool) {
	moved := false
	defer func() {
		if p := recover(); p != nil {
			s.log().Error("rtmp connection panicked; closed it", "remote", c.remote, "panic", p, "stack", string(debug.Stack()))
			c.close()
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
	moved = c.serve(resumed)
}

// parks reports whether a waiting player can wait on the poller.
func (s *Server) parks() bool { return fanout.Supported() }

// park waits for the next message of a playing connection on the server's
// poller (one epoll goroutine for every player): an idle player holds no
// goroutine, no stack and no read buffer. A connection the poller cannot
// wait for (RTMPS: TLS buffers bytes of its own) gets a goroutine again.
func (s *Server) park(c *conn) {
	if !c.parking.Park(&s.poller, c.nc, c.resume) {
		go s.run(c, true)
	}
}

// Shutdown closes the listeners, then every connection (publishers' streams
// end, readers stop), and waits for them until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.close()
	}
	s.mu.Unlock()
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
