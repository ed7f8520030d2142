// Ports opened for one stream each, ZLMediaKit's openRtpServer and
// closeRtpServer: binding them in a range, and listing them.

package rtpproxy

import (
	"fmt"
	"net"
	"sort"

	"github.com/berthmedia/berth/internal/ports"
)

// PortInfo describes a port opened with OpenPort.
type PortInfo struct {
	Port     int
	App      string // the stream is <App>/<StreamID>; "rtp" by default
	StreamID string
	TCPMode  int
	SSRC     uint32
}

type portBinding struct {
	PortInfo
	raw *rawDesc
	udp *ports.PacketConn
	tcp net.Listener
}

// PortOptions describe a port to open for one stream.
type PortOptions struct {
	StreamID string // the stream is <App>/<StreamID>
	App      string // "" = "rtp", as ZLMediaKit
	Port     int    // 0: a free port from PortRange
	TCPMode  int    // 0: UDP; 1: UDP and TCP (passive) on the same port
	SSRC     uint32 // 0: any SSRC
	// SDP, when set, says the port receives raw RTP of the codecs it
	// describes (one media per payload type) instead of MPEG-TS or PS.
	SDP []byte
}

// OpenPort opens a port for one stream, rtp/<streamID>, as ZLMediaKit's
// openRtpServer: UDP, and TCP on the same port when tcpMode is 1. Port 0
// takes a free port from PortRange. A port that cannot be bound comes back
// as the *ports.Finding a start-up bind would give. ssrc 0 accepts any SSRC.
func (s *Server) OpenPort(streamID string, port, tcpMode int, ssrc uint32) (int, error) {
	return s.Open(PortOptions{StreamID: streamID, Port: port, TCPMode: tcpMode, SSRC: ssrc})
}

// Open is OpenPort with every option, raw RTP included.
func (s *Server) Open(o PortOptions) (int, error) {
	s.init()
	streamID, port, tcpMode, ssrc := o.StreamID, o.Port, o.TCPMode, o.SSRC
	var raw *rawDesc
	if len(o.SDP) > 0 {
		var err error
		if raw, err = parseRawDesc(o.SDP); err != nil {
			return 0, err
		}
	}
	if streamID == "" {
		return 0, ErrNoStreamID
	}
	if tcpMode != 0 && tcpMode != 1 {
		return 0, ErrBadTCPMode
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, ErrServerClosed
	}
	if _, ok := s.dedicated[streamID]; ok {
		s.mu.Unlock()
		return 0, fmt.Errorf("%w: %s", ErrStreamIDExists, streamID)
	}
	s.mu.Unlock()

	var d *portBinding
	var err error
	if port != 0 || s.PortRange.Lo <= 0 {
		d, err = s.bind(port, tcpMode)
		for try := 0; err != nil && port == 0 && try < 8; try++ {
			d, err = s.bind(0, tcpMode) // the kernel's UDP port may be taken on TCP
		}
	} else {
		d, err = s.bindInRange(tcpMode)
	}
	if err != nil {
		return 0, err
	}
	d.StreamID, d.TCPMode, d.SSRC, d.raw = streamID, tcpMode, ssrc, raw
	d.App = o.App
	if d.App == "" {
		d.App = "rtp"
	}

	s.mu.Lock()
	if _, ok := s.dedicated[streamID]; ok || s.closed {
		s.mu.Unlock()
		d.closeSockets()
		if s.closed {
			return 0, ErrServerClosed
		}
		return 0, fmt.Errorf("%w: %s", ErrStreamIDExists, streamID)
	}
	s.dedicated[streamID] = d
	s.mu.Unlock()

	for _, c := range d.udp.Conns() {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.readUDP(c, d)
		}()
	}
	if d.tcp != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.acceptLoop(d.tcp, d)
		}()
	}
	s.Log.Info("RTP port opened", "stream_id", streamID, "path", d.App+"/"+streamID, "port", d.Port, "tcp_mode", tcpMode)
	return d.Port, nil
}

func (s *Server) spec(network string, port int) ports.Spec {
	host := s.Host
	if host == "" {
		host = "::"
	}
	// No config section: the port came from an openRtpServer call, and the
	// finding's fix says to ask for another one.
	return ports.Spec{Name: "rtp_proxy", Network: network, Host: host, Port: port}
}

func (s *Server) bind(port, tcpMode int) (*portBinding, error) {
	udp, err := ports.ListenPacket(s.spec("udp", port))
	if err != nil {
		return nil, err
	}
	d := &portBinding{udp: udp}
	d.Port = udp.Port()
	if tcpMode == 1 {
		l, err := ports.Listen(s.spec("tcp", d.Port))
		if err != nil {
			udp.Close()
			return nil, err
		}
		d.tcp = l
	}
	return d, nil
}

func (s *Server) bindInRange(tcpMode int) (*portBinding, error) {
	lo, hi := s.PortRange.Lo, s.PortRange.Hi
	if hi < lo {
		hi = lo
	}
	span := hi - lo + 1
	s.mu.Lock()
	start := s.nextPort
	s.mu.Unlock()
	for i := range span {
		p := lo + (start+i)%span
		d, err := s.bind(p, tcpMode)
		if err != nil {
			continue
		}
		s.mu.Lock()
		s.nextPort = (start + i + 1) % span // rotate: a port just closed is not reused at once
		s.mu.Unlock()
		return d, nil
	}
	return nil, fmt.Errorf("%w %s; widen it or close unused ports with closeRtpServer", ErrNoFreePort, s.PortRange)
}

func (d *portBinding) closeSockets() {
	d.udp.Close()
	if d.tcp != nil {
		d.tcp.Close()
	}
}

// ClosePort closes the port opened for streamID and ends its stream. It
// reports whether there was one.
func (s *Server) ClosePort(streamID string) bool {
	s.init()
	s.mu.Lock()
	d := s.dedicated[streamID]
	delete(s.dedicated, streamID)
	key := sessionKey{streamID: streamID}
	ss := s.sessions[key]
	if d != nil {
		delete(s.sessions, key)
		// Close the TCP connections that came in on this port.
		for c := range s.closers {
			if nc, ok := c.(net.Conn); ok {
				if a, ok := nc.LocalAddr().(*net.TCPAddr); ok && a.Port == d.Port && d.tcp != nil {
					nc.Close()
				}
			}
		}
	}
	s.mu.Unlock()
	if d == nil {
		return false
	}
	d.closeSockets()
	if ss != nil {
		ss.close("port closed by the API")
	}
	s.Log.Info("RTP port closed", "stream_id", streamID, "port", d.Port)
	return true
}

// Ports lists the ports opened with OpenPort, by port.
func (s *Server) Ports() []PortInfo {
	s.init()
	s.mu.Lock()
	out := make([]PortInfo, 0, len(s.dedicated))
	for _, d := range s.dedicated {
		out = append(out, d.PortInfo)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Port < out[j].Port })
	return out
}
