package rtsp

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/fanout"
	"github.com/berthmedia/berth/internal/hub"
)

// sessionState is where a session is in RFC 2326's state machine (appendix A.2).
type sessionState uint8

const (
	stateInitial   sessionState = iota // no SETUP yet
	statePrePlay                       // SETUP for play done
	statePlay                          // PLAY: media flows to the client
	statePreRecord                     // ANNOUNCE (and SETUPs) done
	stateRecord                        // RECORD: media flows from the client
)

func (s sessionState) String() string {
	return [...]string{"initial", "ready-to-play", "playing", "ready-to-record", "recording"}[s]
}

// session is the one RTSP session a connection carries. The connection's
// read goroutine changes it; the watchdog reads a snapshot under mu.
type session struct {
	mu     sync.Mutex
	id     string
	state  sessionState
	path   string
	udp    bool // transport chosen by the first SETUP; all tracks use it
	tracks []*trackSetup

	// *publishing is nil until the connection's first ANNOUNCE, so a
	// player's session holds none of it (issue 14: memory per viewer).
	// Its fields are promoted: the publish path, which runs only in the
	// record states, uses them directly; code that runs for any session
	// checks s.publishing first. Once made it stays for the connection's
	// life (teardown clears what it holds), so goroutines that read it
	// (UDP readers, snapshot) never see it change.
	*publishing

	// playing
	stream   *hub.Stream
	reader   *hub.Reader
	playDone chan struct{}

	since time.Time
}

// publishing is what a session needs to publish.
type publishing struct {
	desc    *description.Session
	pub     *hub.Publisher
	pubLeft *atomic.Bool // set before the session ends its own publish (teardown), so its end does not close the conn
	keys    []codec.KeyDetector
	pubMu   sync.Mutex  // UDP tracks are read by one goroutine each; the ring has one writer
	byChan  *[256]int16 // interleaved channel -> track+1 (0 = none); made by a TCP publisher's SETUP
	pending int         // frames appended since the last flush (TCP)

	packetsIn  atomic.Uint64
	garbageIn  atomic.Uint64
	mediaBytes atomic.Uint64
}

// trackSetup is one SETUP: how a track's packets travel.
type trackSetup struct {
	index   int
	channel int // TCP: the RTP interleaved channel; RTCP is channel+1

	clientRTP, clientRTCP *net.UDPAddr      // UDP: where the client listens
	rtp, rtcp             *net.UDPConn      // UDP: the server pair
	rtpOut, rtcpOut       *fanout.UDPSender // UDP: the pair's sends to the client, which never wait
	rtcpReading           bool              // UDP play: rtcp is read (watchRTCP, set by startPlay)
	rtcpWatch             *fanout.Watch     // UDP play: the poller's watch of rtcp; nil where a goroutine reads it

	// play-side state for RTCP sender reports (RFC 3550 6.4.1)
	clockRate int
	ssrc      uint32
	lastTS    uint32
	lastRecv  time.Time
	packets   uint32
	octets    uint32
	seen      bool
}

type sessionView struct {
	id                 string
	path               string
	playing, recording bool
	udp                bool
	packetsIn          uint64
}

func (s *session) snapshot() sessionView {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := sessionView{id: s.id, path: s.path, playing: s.state == statePlay, recording: s.state == stateRecord, udp: s.udp}
	if s.publishing != nil {
		v.packetsIn = s.packetsIn.Load()
	}
	return v
}

func (s *session) setState(st sessionState) {
	s.mu.Lock()
	s.state = st
	s.mu.Unlock()
}

func (s *session) getState() sessionState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

func (s *session) ensureID() {
	s.mu.Lock()
	if s.id == "" {
		b := make([]byte, 8)
		rand.Read(b)
		s.id = hex.EncodeToString(b)
		s.since = time.Now()
	}
	s.mu.Unlock()
}

func (s *session) track(i int) *trackSetup {
	if i >= 0 && i < len(s.tracks) {
		return s.tracks[i]
	}
	return nil
}

func (s *session) setTrack(t *trackSetup, n int) {
	for len(s.tracks) < n {
		s.tracks = append(s.tracks, nil)
	}
	if old := s.tracks[t.index]; old != nil {
		old.closeUDP()
	}
	s.tracks[t.index] = t
}

func (t *trackSetup) closeUDP() {
	if t.rtcpWatch != nil {
		t.rtcpWatch.Stop() // before the close, which epoll would not report
	}
	if t.rtp != nil {
		t.rtp.Close()
		t.rtcp.Close()
	}
}

// teardown ends whatever the session does and returns it to the initial
// state, logging the end of a publish or play.
func (s *session) teardown(c *conn) {
	s.stopPlay()
	if s.publishing != nil && s.pub != nil {
		st := s.pub.Stream()
		if s.pubLeft != nil {
			s.pubLeft.Store(true)
		}
		s.pub.Close()
		c.log.Info("publish ended", "path", s.path, "bytes_in", s.mediaBytes.Load(), "packets_in", s.packetsIn.Load(),
			"duration", time.Since(st.Since).Round(time.Millisecond).String())
		s.pubMu.Lock() // a UDP track's reader reads it (onRTCP)
		s.pub = nil
		s.pubMu.Unlock()
	}
	for _, t := range s.tracks {
		if t != nil {
			t.closeUDP()
		}
	}
	s.mu.Lock()
	s.id, s.state, s.path, s.udp, s.tracks = "", stateInitial, "", false, nil
	s.stream = nil
	if s.publishing != nil {
		s.desc, s.keys, s.byChan = nil, nil, nil
	}
	s.mu.Unlock()
}

// stopPlay stops the media goroutine of a player and waits for it.
func (s *session) stopPlay() {
	if s.reader != nil {
		s.reader.Close()
		<-s.playDone
		s.reader = nil
	}
}
