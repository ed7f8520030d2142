package srt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	gosrt "github.com/datarhei/gosrt"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/limits"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/muxring"
)

// TSOpener opens a cursor on a stream's shared MPEG-TS muxer (the one
// HTTP-TS and HLS read: internal/mpegts's Muxers.Open).
type TSOpener func(*hub.Stream) (*muxring.Cursor, error)

// Server is the SRT listener. Set the fields, then Listen and Serve.
type Server struct {
	Hub  *hub.Hub
	Log  *slog.Logger
	Auth *auth.Checker
	TS   TSOpener
	// StreamWait is how long a player of a path not yet published waits
	// for it ([general] maxStreamWaitMS); 0 refuses at once.
	StreamWait time.Duration
	// Timeout drops a peer that sends nothing this long ([srt] timeoutSec); default 5 s.
	Timeout time.Duration
	// Latency is the SRT latency Berth asks for (TSBPD delay); a caller
	// asking for more gets more (SRT takes the larger). Default 120 ms.
	Latency time.Duration
	// Passphrase turns encryption on: callers must use the same one.
	Passphrase string
	// PBKeyLen is the AES key length in bytes (16, 24, 32); 0 = 16.
	PBKeyLen int
	// Register, when set, lists each accepted connection with the
	// server's other sessions (getAllSession) and returns its id there
	// (hub.Origin.Conn) and what takes it off at the session's end. The
	// session ends when that list closes the connection (kick_session),
	// as when the peer goes.
	Register func(c net.Conn) (id string, release func())
	// Conns, if set, counts each session against the connection caps every
	// listener shares ([general] max_connections, max_connections_per_ip);
	// a caller over one is refused with REJX_OVERLOAD.
	Conns *limits.Conns

	ln       gosrt.Listener
	mu       sync.Mutex
	sessions map[*session]struct{}
	remotes  map[string]time.Time // remote address -> when a session from it was accepted
	closed   bool
	wg       sync.WaitGroup
	nextID   atomic.Uint64
	// malformed counts handshakes gosrt's parser panicked on (accept).
	malformed atomic.Uint64
}

// ErrConfig wraps an [srt] setting gosrt refuses.
var ErrConfig = errors.New("bad [srt] setting")

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return logging.Discard()
	}
	return s.Log
}

func (s *Server) config() gosrt.Config {
	c := gosrt.DefaultConfig()
	lat := s.Latency
	if lat <= 0 {
		lat = 120 * time.Millisecond
	}
	c.ReceiverLatency, c.PeerLatency = lat, lat
	c.PeerIdleTimeout = s.Timeout
	if c.PeerIdleTimeout <= 0 {
		c.PeerIdleTimeout = 5 * time.Second
	}
	c.Passphrase = s.Passphrase
	if s.PBKeyLen > 0 {
		c.PBKeylen = s.PBKeyLen
	}
	return c
}

// Listen opens the SRT listener on addr (host:port, UDP). gosrt binds its
// own socket and cannot take one that is already bound: the composition
// root binds [srt] port through internal/ports first (findings, holder),
// closes that socket and calls Listen at once (docs/srt.md says more).
func (s *Server) Listen(addr string) error {
	c := s.config()
	if err := c.Validate(); err != nil {
		return fmt.Errorf("%w: %v; fix passPhrase (10 to 79 characters) or pbkeylen (16, 24 or 32) under [srt]", ErrConfig, err)
	}
	c.Passphrase = "" // set per connection, so an unencrypted caller gets a clear refusal
	c.Logger = nil
	ln, err := gosrt.Listen("srt", addr, c)
	if err != nil {
		return fmt.Errorf("srt listener on %s/udp: %w", addr, err)
	}
	s.mu.Lock()
	s.ln = ln
	s.sessions = map[*session]struct{}{}
	s.remotes = map[string]time.Time{}
	s.mu.Unlock()
	return nil
}

// Addr is the listener's address (nil before Listen).
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Serve accepts callers until Shutdown. Each handshake is decided in its
// own goroutine: a web hook may take seconds, and gosrt answers the
// caller's repeated handshakes meanwhile.
func (s *Server) Serve() error {
	for {
		req, err := s.accept()
		if errors.Is(err, errMalformedHandshake) {
			continue
		}
		if err != nil {
			if errors.Is(err, gosrt.ErrListenerClosed) {
				return net.ErrClosed
			}
			return err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				if x := recover(); x != nil {
					s.log().Error("srt session panicked; only that session ended", "remote", req.RemoteAddr().String(), "panic", fmt.Sprint(x))
				}
			}()
			s.handle(req)
		}()
	}
}

// errMalformedHandshake is a handshake gosrt's parser panicked on.
var errMalformedHandshake = errors.New("malformed SRT handshake")

// accept is gosrt's Accept2, surviving its handshake parser: gosrt v0.9.0
// reads the next extension's 4-byte header past the end of a conclusion
// whose extensions leave 1 to 3 bytes over (packet.go:604), and panics in
// this goroutine, so one datagram would end the process. The datagram was
// already taken off gosrt's backlog, so its listener is intact: the
// caller is dropped and Serve goes on. The log line is rate-limited.
// Berth now builds gosrt with that bounds check (third_party/gosrt, for
// the caller's goroutine, where no recover reaches); this one stays for
// the parser's next such bug.
func (s *Server) accept() (req gosrt.ConnRequest, err error) {
	defer func() {
		if x := recover(); x != nil {
			req, err = nil, errMalformedHandshake
			if n := s.malformed.Add(1); n&(n-1) == 0 { // the 1st, 2nd, 4th, 8th ...
				s.log().Warn("malformed SRT handshake dropped (gosrt's parser panicked on it)", "count", n, "panic", fmt.Sprint(x))
			}
		}
	}()
	return s.ln.Accept2()
}

// Shutdown closes the listener (and with it every SRT connection), then
// waits for sessions to end or ctx.
func (s *Server) Shutdown(ctx context.Context) {
	s.mu.Lock()
	s.closed = true
	ln := s.ln
	for ss := range s.sessions {
		ss.conn.Close()
	}
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// Sessions is how many SRT connections are up.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

type session struct {
	id     string
	connID string // the session registry's id ("" when not registered)
	conn   gosrt.Conn
	remote string
	sid    StreamID
	log    *slog.Logger
}

func (s *Server) handle(req gosrt.ConnRequest) {
	remote := req.RemoteAddr().String()
	log := s.log().With("remote", remote)
	if req.Version() < 5 {
		log.Warn("srt caller refused: it speaks handshake v4, which carries no stream id", "fix", "use SRT 1.3 or newer with streamid=#!::r=app/stream,m=publish")
		req.Reject(gosrt.REJX_BAD_REQUEST)
		return
	}
	sid, err := ParseStreamID(req.StreamId())
	if err != nil {
		log.Warn("srt caller refused: "+err.Error(), "streamid", req.StreamId(), "fix", "set streamid=#!::r=app/stream,m=publish (or m=request to play)")
		req.Reject(gosrt.REJX_BAD_REQUEST)
		return
	}
	log = log.With("path", sid.Path(), "mode", sid.Mode.String())
	if s.repeated(remote) {
		// A conclusion handshake the caller sent again before our answer
		// reached it: gosrt makes it a new request once the first was
		// accepted. Answering it would make a second connection; the
		// caller is connected already, so leave it unanswered.
		log.Debug("srt: repeated handshake of a connected caller ignored")
		return
	}
	if !s.crypto(req, log) {
		return
	}
	act := auth.Play
	if sid.Mode == Publish {
		act = auth.Publish
	}
	if !s.Auth.Allow(act, sid.User, sid.Pass) {
		log.Warn("srt "+act.String()+" refused: bad or missing credentials", "user", sid.User,
			"fix", "add u=NAME,pass=PASSWORD of an [auth] "+act.String()+" user to the stream id")
		req.Reject(gosrt.REJX_UNAUTHORIZED)
		return
	}
	id := strconv.FormatUint(s.nextID.Add(1), 10)
	err = s.Auth.Authorize(context.Background(), auth.Request{Action: act, Proto: "srt", App: sid.App, Stream: sid.Stream,
		Params: sid.Params, Remote: remote, ID: id, User: sid.User})
	if err != nil {
		log.Warn("srt "+act.String()+" refused by the web hook", "reason", err.Error())
		req.Reject(gosrt.REJX_FORBIDDEN)
		return
	}
	if sid.Mode == Publish {
		if err := s.Hub.CheckPublish(sid.Path()); err != nil {
			log.Warn("srt publish refused: "+err.Error(), "fix", "stop the other publisher, publish to another stream name, or set [general] allow_takeover=1")
			req.Reject(gosrt.REJX_CONFLICT)
			return
		}
	}
	if s.Conns != nil { // the connection caps (docs/reliability.md#limits-against-abuse)
		done, ok := s.Conns.Acquire("srt", req.RemoteAddr())
		if !ok {
			req.Reject(gosrt.REJX_OVERLOAD)
			return
		}
		defer done()
	}
	s.mu.Lock()
	s.remotes[remote] = time.Now() // before the answer leaves: a repeat may cross it
	s.mu.Unlock()
	conn, err := req.Accept()
	if err != nil {
		s.mu.Lock()
		delete(s.remotes, remote)
		s.mu.Unlock()
		log.Info("srt handshake failed", "err", err)
		return
	}
	ss := &session{id: id, conn: conn, remote: remote, sid: sid, log: log}
	if !s.add(ss) {
		s.remove(ss)
		conn.Close()
		return
	}
	defer s.remove(ss)
	defer conn.Close()
	if s.Register != nil {
		var release func()
		ss.connID, release = s.Register(conn)
		defer release()
	}
	if sid.Mode == Publish {
		s.publish(ss)
	} else {
		s.play(ss)
	}
}

// crypto applies the passphrase; SRT refuses a mismatch both ways with
// REJ_UNSECURE or REJ_BADSECRET, as libsrt's listener does.
func (s *Server) crypto(req gosrt.ConnRequest, log *slog.Logger) bool {
	switch {
	case s.Passphrase == "" && req.IsEncrypted():
		log.Warn("srt caller refused: it encrypts but [srt] passPhrase is empty", "fix", "drop the caller's passphrase, or set the same one as [srt] passPhrase")
		req.Reject(gosrt.REJ_UNSECURE)
		return false
	case s.Passphrase != "" && !req.IsEncrypted():
		log.Warn("srt caller refused: [srt] passPhrase is set but the caller does not encrypt", "fix", "add passphrase=... (the [srt] passPhrase) to the caller's srt:// URL")
		req.Reject(gosrt.REJ_UNSECURE)
		return false
	case s.Passphrase != "":
		if err := req.SetPassphrase(s.Passphrase); err != nil {
			log.Warn("srt caller refused: its passphrase is not [srt] passPhrase", "fix", "use the same passphrase on both sides")
			req.Reject(gosrt.REJ_BADSECRET)
			return false
		}
	}
	return true
}

func (s *Server) add(ss *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.sessions[ss] = struct{}{}
	s.remotes[ss.remote] = time.Now()
	return true
}

func (s *Server) remove(ss *session) {
	s.mu.Lock()
	delete(s.sessions, ss)
	delete(s.remotes, ss.remote)
	s.mu.Unlock()
}

// repeatWindow is how long after accepting a caller a handshake from the
// same address is taken for a repeat: libsrt repeats an unanswered
// conclusion every 250 ms, and the answer may cross a repeat in flight.
const repeatWindow = 2 * time.Second

// repeated reports a handshake from the address of a session accepted
// within repeatWindow.
func (s *Server) repeated(remote string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.remotes[remote]
	return ok && time.Since(at) < repeatWindow
}

func (s *Server) origin(ss *session) hub.Origin {
	return hub.Origin{Proto: "srt", Remote: ss.remote, ID: ss.id, Params: ss.sid.Params, Conn: ss.connID}
}

func (s *Server) publish(ss *session) {
	start := time.Now()
	p := &tsPublisher{hub: s.Hub, log: ss.log, path: ss.sid.Path(), origin: s.origin(ss)}
	// The stream ends when the hub ends it (takeover, shutdown): close the
	// connection so the blocked read returns.
	stop := make(chan struct{})
	defer close(stop)
	p.onPublished = func(pub *hub.Publisher) {
		go func() {
			select {
			case <-stop:
			case <-pub.Done():
				ss.conn.Close()
			}
		}()
	}
	err := p.run(ss.conn)
	st := statsOf(ss.conn)
	ss.log.Info("srt publish ended", "reason", reason(err), "duration", time.Since(start).Round(time.Millisecond),
		"bytes_in", st.ByteRecv, "packets_lost", st.PktRecvLoss, "packets_retransmitted", st.PktRecvRetrans)
}

type stats struct{ ByteRecv, ByteSent, PktRecvLoss, PktRecvRetrans, PktSentRetrans uint64 }

func statsOf(c gosrt.Conn) stats {
	var st gosrt.Statistics
	c.Stats(&st)
	return stats{ByteRecv: st.Accumulated.ByteRecv, ByteSent: st.Accumulated.ByteSent, PktRecvLoss: st.Accumulated.PktRecvLoss,
		PktRecvRetrans: st.Accumulated.PktRecvRetrans, PktSentRetrans: st.Accumulated.PktRetrans}
}

func reason(err error) string {
	switch {
	case err == nil:
		return "the peer closed"
	case errors.Is(err, errEnded):
		return "the server ended the stream"
	}
	return err.Error()
}
