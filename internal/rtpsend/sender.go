package rtpsend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/ports"
)

// writeTimeout is how long a TCP peer may stop reading before the sender
// gives up on it: the hub reader skips ahead meanwhile, but a peer that
// takes nothing for this long is gone.
const writeTimeout = 10 * time.Second

// sender is one running startSendRtp.
type sender struct {
	m    *Manager
	o    Options
	info Info // fixed once started; counters below

	ps      *psPacker // PS; nil for raw ES
	esTrack int       // raw ES: the hub track sent
	left    []string  // tracks PS leaves out, for the start line
	w       rtpWriter

	packets, bytes atomic.Uint64

	mu       sync.Mutex
	conn     net.Conn     // the socket to the peer; nil while a passive one waits
	listener net.Listener // passive: until the peer connects
	rd       *hub.Reader
	stop     chan struct{}
	cause    error
	notify   bool // the stop fires OnStopped
	halted   bool
}

func (s *sender) prepare(tracks []*hub.Track) error {
	var err error
	if s.o.ES {
		s.esTrack, err = esTrack(tracks, s.o.OnlyAudio)
		return err
	}
	s.ps, s.left, err = newPSPacker(tracks, s.o.OnlyAudio)
	return err
}

func (s *sender) listen() error {
	var l net.Listener
	var err error
	if s.o.SrcPort != 0 {
		l, err = ports.Listen(s.m.spec("tcp", s.o.SrcPort))
	} else {
		l, err = s.m.listenInRange()
	}
	if err != nil {
		return err
	}
	s.listener = l
	s.info.LocalPort = l.Addr().(*net.TCPAddr).Port
	s.info.Transport = "tcp-passive"
	s.w.framed = true
	return nil
}

func (s *sender) dialUDP() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.o.Wait)
	defer cancel()
	ip, err := resolve(ctx, s.o.Host)
	if err != nil {
		return err
	}
	c, err := ports.DialUDP(s.m.spec("udp", s.o.SrcPort), &net.UDPAddr{IP: ip, Port: s.o.Port})
	if err != nil {
		return fmt.Errorf("sending RTP over UDP to %s: %w", net.JoinHostPort(s.o.Host, fmt.Sprint(s.o.Port)), err)
	}
	s.conn = c
	s.info.Transport = "udp"
	s.info.Peer = c.RemoteAddr().String()
	s.info.LocalPort = c.LocalAddr().(*net.UDPAddr).Port
	return nil
}

func (s *sender) dialTCP(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.o.Wait)
	defer cancel()
	ip, err := resolve(ctx, s.o.Host)
	if err != nil {
		return err
	}
	peer := net.JoinHostPort(s.o.Host, fmt.Sprint(s.o.Port))
	c, err := ports.DialTCP(ctx, s.m.spec("tcp", s.o.SrcPort), &net.TCPAddr{IP: ip, Port: s.o.Port}, s.o.Wait)
	if err != nil {
		var f *ports.Finding
		if errors.As(err, &f) {
			return err
		}
		return fmt.Errorf("connecting to the RTP receiver %s over TCP: %w (is it listening there? try is_udp=1, or startSendRtpPassive if it connects to us)", peer, err)
	}
	s.conn = c
	s.info.Transport = "tcp"
	s.info.Peer = c.RemoteAddr().String()
	s.info.LocalPort = c.LocalAddr().(*net.TCPAddr).Port
	s.w.framed = true
	return nil
}

func (s *sender) snapshot() Info {
	s.mu.Lock()
	in := s.info
	s.mu.Unlock()
	in.Packets, in.Bytes = s.packets.Load(), s.bytes.Load()
	return in
}

// halt stops the sender once, with cause; notify fires OnStopped. It
// closes the reader and the sockets, which ends run's blocking calls.
func (s *sender) halt(cause error, notify bool) {
	s.mu.Lock()
	if s.halted {
		s.mu.Unlock()
		return
	}
	s.halted, s.cause, s.notify = true, cause, notify
	close(s.stop)
	rd := s.rd
	s.mu.Unlock()
	if rd != nil {
		rd.Close()
	}
	s.closeConn()
}

func (s *sender) closeConn() {
	s.mu.Lock()
	c, l := s.conn, s.listener
	s.mu.Unlock()
	if c != nil {
		c.Close()
	}
	if l != nil {
		l.Close()
	}
}

// run sends until the sender is halted, its peer goes away or its stream ends.
func (s *sender) run() {
	defer s.m.wg.Done()
	defer s.finish()
	if s.o.Passive && !s.accept() {
		return
	}
	st := s.m.Hub.Get(s.o.Path)
	if st == nil {
		s.halt(fmt.Errorf("%w before the sending began: %s", ErrStreamEnded, s.o.Path), true)
		return
	}
	kind := hub.KindAU
	if s.o.ES {
		kind = hub.KindRTP
	}
	rd, err := st.Subscribe(kind, hub.Origin{Proto: "rtp", Remote: s.info.Peer, ID: SSRCText(s.o.SSRC)})
	if err != nil {
		s.halt(fmt.Errorf("stream %s: %w", s.o.Path, err), true)
		return
	}
	s.mu.Lock()
	s.rd = rd
	halted := s.halted
	s.mu.Unlock()
	if halted {
		rd.Close()
		return
	}
	log := s.m.log()
	args := []any{"path", s.o.Path, "ssrc", SSRCText(s.o.SSRC), "peer", s.info.Peer, "transport", s.info.Transport,
		"local_port", s.info.LocalPort, "payload", s.info.Payload, "pt", s.o.PT}
	if len(s.left) > 0 {
		args = append(args, "tracks_left_out", strings.Join(s.left, ", "))
	}
	log.Info("RTP sending started", args...)
	go s.watch()
	s.w.ssrc, s.w.pt = s.o.SSRC, s.o.PT
	s.loop(rd)
}

// accept waits for a passive sender's peer, up to Wait.
func (s *sender) accept() bool {
	t := time.AfterFunc(s.o.Wait, func() {
		s.halt(fmt.Errorf("%w: no TCP connection to port %d within %s (the receiver must connect after startSendRtpPassive; raise close_delay_ms to wait longer)",
			ErrPeerTimedOut, s.info.LocalPort, s.o.Wait), true)
	})
	defer t.Stop()
	s.m.log().Info("RTP sender waiting for its peer to connect", "path", s.o.Path, "ssrc", SSRCText(s.o.SSRC),
		"local_port", s.info.LocalPort, "wait", s.o.Wait.String())
	s.mu.Lock()
	l := s.listener
	s.mu.Unlock()
	for {
		c, err := l.Accept()
		if err != nil {
			return false // halted: timed out, stopped or shut down
		}
		if ports.IsSelfProbe(c) {
			c.Close()
			continue
		}
		s.mu.Lock()
		if s.halted {
			s.mu.Unlock()
			c.Close()
			return false
		}
		s.conn, s.listener = c, nil
		s.info.Peer = c.RemoteAddr().String()
		s.mu.Unlock()
		l.Close() // one peer per sender
		return true
	}
}

// loop reads the stream and writes its packets.
func (s *sender) loop(rd *hub.Reader) {
	frames := make([]*hub.Frame, 64)
	var batch net.Buffers
	var pack []byte
	for {
		n, err := rd.Read(frames)
		if err != nil {
			if errors.Is(err, hub.ErrEnded) {
				s.halt(fmt.Errorf("%w: %s", ErrStreamEnded, s.o.Path), true)
			} else {
				s.halt(err, false) // closed by halt: the cause is set already
			}
			return
		}
		for i, f := range frames[:n] {
			frames[i] = nil
			var pkts [][]byte
			if s.ps != nil {
				var ts uint32
				var ok bool
				pack, ts, ok = s.ps.pack(pack[:0], f)
				if !ok {
					continue
				}
				pkts = s.w.packets(pack, ts)
			} else {
				if f.Track != s.esTrack || len(f.Data) < hub.RTPPrefix+rtpHeader {
					continue
				}
				pkts = s.w.relay(f.RTP())
			}
			if s.w.framed {
				// One writev per frame: its packets, each with its length.
				batch = append(batch[:0], pkts...)
				if err := s.writeTCP(&batch); err != nil {
					s.fail(err)
					return
				}
			} else if err := s.writeUDP(pkts); err != nil {
				s.fail(err)
				return
			}
		}
	}
}

func (s *sender) writeTCP(b *net.Buffers) error {
	size, n := 0, len(*b)
	for _, p := range *b {
		size += len(p)
	}
	s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := b.WriteTo(s.conn); err != nil {
		return err
	}
	s.packets.Add(uint64(n)) // WriteTo consumed *b
	s.bytes.Add(uint64(size))
	return nil
}

func (s *sender) writeUDP(pkts [][]byte) error {
	for _, p := range pkts {
		if _, err := s.conn.Write(p); err != nil {
			if errors.Is(err, syscall.ENOBUFS) {
				continue // the send queue is full for a moment: the packet is lost, the stream goes on
			}
			return err
		}
		s.packets.Add(1)
		s.bytes.Add(uint64(len(p)))
	}
	return nil
}

// watch reads the socket until it fails: a TCP peer that closes, or the
// ICMP port unreachable a connected UDP socket hears, stops the sender at
// once, not at the next frame. What the peer sends (RTCP) is discarded.
func (s *sender) watch() {
	buf := make([]byte, 2048)
	for {
		if _, err := s.conn.Read(buf); err != nil {
			s.fail(err)
			return
		}
	}
}

// fail stops the sender for a socket error, unless it is halting anyway.
func (s *sender) fail(err error) {
	select {
	case <-s.stop:
		return
	default:
	}
	s.halt(peerError(s.info.Peer, s.info.Transport, err), true)
}

// peerError names what went wrong with the peer in words.
func peerError(peer, transport string, err error) error {
	why := err.Error()
	switch {
	case errors.Is(err, io.EOF):
		why = "the receiver closed the TCP connection"
	case errors.Is(err, syscall.ECONNREFUSED):
		why = "the receiver's host answered port unreachable (ICMP): nothing listens on that UDP port any more"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		why = "the receiver reset the connection"
	case errors.Is(err, os.ErrDeadlineExceeded):
		why = fmt.Sprintf("the receiver took nothing for %s", writeTimeout)
	}
	return &PeerError{Peer: peer, Transport: transport, Why: why, Err: err}
}

// PeerError is a sender stopped by its peer.
type PeerError struct {
	Peer, Transport, Why string
	Err                  error
}

func (e *PeerError) Error() string {
	return fmt.Sprintf("RTP receiver %s (%s): %s", e.Peer, e.Transport, e.Why)
}
func (e *PeerError) Unwrap() error { return e.Err }

// Code is ZLMediaKit's error code of a stop (ZLToolKit's ErrCode), the err
// of on_send_rtp_stopped: 1 end of file, 2 timeout, 3 refused, 4 reset,
// 6 shutdown (the stream ended), 0xFF other.
func Code(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, io.EOF):
		return 1
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, ErrPeerTimedOut):
		return 2
	case errors.Is(err, syscall.ECONNREFUSED):
		return 3
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return 4
	case errors.Is(err, hub.ErrEnded), errors.Is(err, ErrStreamEnded):
		return 6
	}
	return 0xFF
}

// finish logs the end and tells OnStopped.
func (s *sender) finish() {
	s.halt(errShutdown, false) // no-op when halted already; releases everything otherwise
	s.m.forget(s)
	s.mu.Lock()
	cause, notify := s.cause, s.notify
	s.mu.Unlock()
	in := s.snapshot()
	args := []any{"path", s.o.Path, "ssrc", SSRCText(s.o.SSRC), "peer", in.Peer, "transport", in.Transport,
		"local_port", in.LocalPort, "packets", in.Packets, "bytes", in.Bytes, "cause", cause.Error()}
	if notify {
		s.m.log().Warn("RTP sending stopped", args...)
		if s.m.OnStopped != nil {
			s.m.OnStopped(in, cause)
		}
		return
	}
	s.m.log().Info("RTP sending stopped", args...)
}
