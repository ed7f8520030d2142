// Package webrtc serves WebRTC on pion: WHEP play (a player is a hub
// reader), WHIP publish (a publisher's RTP goes into the hub as an RTSP
// publisher's would) and ZLMediaKit's /index/api/webrtc exchange. Every
// peer's ICE runs over the one UDP socket internal/ports bound for [rtc]
// port, through pion's UDP mux. Non-trickle: the answer carries every
// candidate, so a trickle PATCH gets 405 (RFC 9725 section 4.3.1 allows it).
package webrtc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	pion "github.com/pion/webrtc/v4"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/hub"
)

// Paths on the HTTP port.
const (
	WHEPPath   = "/index/api/whep"   // POST an offer to play; DELETE WHEPPath/ID ends it
	WHIPPath   = "/index/api/whip"   // POST an offer to publish; DELETE WHIPPath/ID ends it
	ZLMPath    = "/index/api/webrtc" // ZLMediaKit's ?type=play|push, JSON reply
	maxOffer   = 64 << 10            // an SDP offer is a few kB
	gatherWait = 5 * time.Second     // host candidates on a mux gather at once; this only bounds a broken interface
)

// Server answers WebRTC offers. Set the fields, then Start.
type Server struct {
	Hub        *hub.Hub
	Log        *slog.Logger
	Auth       *auth.Checker
	StreamWait time.Duration // how long a play waits for a missing stream (on_stream_not_found)
	// UDP are the sockets of [rtc] port, one per address family, bound by
	// internal/ports; every peer's ICE shares them.
	UDP []net.PacketConn
	// TCP is [rtc] tcpPort's listener (ICE-TCP, RFC 6544 passive
	// candidates); nil = UDP only.
	TCP net.Listener
	// ExternIP replaces the interfaces' addresses in host candidates ([rtc] externIP).
	ExternIP []string

	api      *pion.API
	mu       sync.Mutex
	sessions map[string]*session
	pubs     map[string]*session // WHIP publishers by path: players' keyframe requests go to them
	closed   bool
}

// session is one peer: a player or a publisher.
type session struct {
	id      string
	publish bool
	path    string
	pc      *pion.PeerConnection
	once    sync.Once
	done    chan struct{}
	close   func() // ends the hub side; runs once
	// keyframe asks a publisher's peer for a keyframe now (a player's PLI
	// or FIR, forwarded); nil for players.
	keyframe chan struct{}
	// connected is closed when DTLS is up (PeerConnectionStateConnected):
	// only then do written packets reach the peer. ICE connected is too
	// early: the cached keyframe written then would be lost.
	connected     chan struct{}
	connectedOnce sync.Once
}

// Start builds the pion API over the UDP sockets.
func (s *Server) Start() error {
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	s.sessions = map[string]*session{}
	s.pubs = map[string]*session{}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	lf.Writer = io.Discard
	var se pion.SettingEngine
	se.LoggerFactory = lf
	var muxes []ice.UDPMux
	for _, c := range s.UDP {
		muxes = append(muxes, pion.NewICEUDPMux(lf.NewLogger("ice"), c))
	}
	if len(muxes) == 1 {
		se.SetICEUDPMux(muxes[0])
	} else if len(muxes) > 1 {
		se.SetICEUDPMux(ice.NewMultiUDPMuxDefault(muxes...))
	}
	types := []pion.NetworkType{pion.NetworkTypeUDP4, pion.NetworkTypeUDP6}
	if s.TCP != nil {
		se.SetICETCPMux(pion.NewICETCPMux(lf.NewLogger("ice-tcp"), s.TCP, 64))
		types = append(types, pion.NetworkTypeTCP4, pion.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(types)
	// Berth only answers: ICE lite (RFC 8445 section 2.5) leaves the
	// checks to the browser, and loopback candidates let a peer on the
	// same host (and the tests) connect over 127.0.0.1.
	se.SetLite(true)
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(5*time.Second, 10*time.Second, 2*time.Second)
	if len(s.ExternIP) > 0 {
		if err := se.SetICEAddressRewriteRules(pion.ICEAddressRewriteRule{External: s.ExternIP, AsCandidateType: pion.ICECandidateTypeHost}); err != nil {
			return fmt.Errorf("[rtc] externIP %v: %w", s.ExternIP, err)
		}
	}
	m, err := mediaEngine()
	if err != nil {
		return err
	}
	// NACK responder (retransmits from its buffer), sender and receiver
	// reports, TWCC: pion's defaults.
	ir := &interceptor.Registry{}
	if err := pion.RegisterDefaultInterceptors(m, ir); err != nil {
		return err
	}
	s.api = pion.NewAPI(pion.WithSettingEngine(se), pion.WithMediaEngine(m), pion.WithInterceptorRegistry(ir))
	return nil
}

// ServeHTTP routes WHEP, WHIP, their resource URLs and ZLMediaKit's webrtc call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "Location")
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "POST, DELETE, PATCH, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, If-Match")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	p := r.URL.Path
	switch {
	case p == WHEPPath || p == WHIPPath || p == ZLMPath:
		if r.Method != http.MethodPost {
			h.Set("Allow", "POST, OPTIONS")
			http.Error(w, "send the SDP offer with POST", http.StatusMethodNotAllowed)
			return
		}
		s.offer(w, r)
	case strings.HasPrefix(p, WHEPPath+"/") || strings.HasPrefix(p, WHIPPath+"/"):
		s.resource(w, r, p[strings.LastIndexByte(p, '/')+1:])
	default:
		http.NotFound(w, r)
	}
}

// resource serves a session's URL: DELETE ends it; trickle PATCH is 405
// because the answer already holds every candidate.
func (s *Server) resource(w http.ResponseWriter, r *http.Request, id string) {
	switch r.Method {
	case http.MethodDelete:
		s.mu.Lock()
		ss := s.sessions[id]
		s.mu.Unlock()
		if ss == nil {
			http.Error(w, "no WebRTC session "+id+" (it ended, or the id is wrong)", http.StatusNotFound)
			return
		}
		s.Log.Info("webrtc session ended by DELETE", "id", id, "path", ss.path)
		s.end(ss)
		w.WriteHeader(http.StatusOK)
	default:
		w.Header().Set("Allow", "DELETE, OPTIONS")
		http.Error(w, "Berth's WebRTC answers carry every ICE candidate: no trickle PATCH; DELETE ends the session", http.StatusMethodNotAllowed)
	}
}

// offer handles a POSTed offer on any of the three URLs.
func (s *Server) offer(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	zlm := r.URL.Path == ZLMPath
	publish := r.URL.Path == WHIPPath || (zlm && q.Get("type") == "push")
	fail := func(status int, msg string) {
		if zlm { // ZLMediaKit's SDK reads code and msg from a 200 JSON reply
			writeJSON(w, map[string]any{"code": -1, "msg": msg})
			return
		}
		http.Error(w, msg, status)
	}
	if zlm && q.Get("type") != "play" && q.Get("type") != "push" {
		fail(http.StatusBadRequest, "type must be play or push (ZLMediaKit's echo and other types are not served)")
		return
	}
	app, stream := q.Get("app"), q.Get("stream")
	if app == "" || stream == "" {
		fail(http.StatusBadRequest, "name the stream with ?app=APP&stream=STREAM")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxOffer+1))
	if err != nil || len(body) == 0 || len(body) > maxOffer || !strings.HasPrefix(strings.TrimSpace(string(body)), "v=0") {
		s.Log.Warn("webrtc offer refused: the body is not an SDP offer", "remote", r.RemoteAddr, "bytes", len(body))
		fail(http.StatusBadRequest, "the body must be an SDP offer (Content-Type: application/sdp) of at most 64 kB")
		return
	}
	path := app + "/" + stream
	who := hub.Origin{Proto: "webrtc", Remote: r.RemoteAddr, ID: newID(), Params: auth.CleanParams(r.URL.RawQuery)}
	if status, err := s.check(r, publish, app, stream, who); err != nil {
		fail(status, err.Error())
		return
	}
	var ss *session
	var answer string
	if publish {
		ss, answer, err = s.publish(path, who, string(body))
	} else {
		ss, answer, err = s.play(r.Context(), path, who, string(body))
	}
	if err != nil {
		status := http.StatusBadRequest
		var he *httpError
		if errors.As(err, &he) {
			status = he.status
		}
		fail(status, err.Error())
		return
	}
	if zlm {
		writeJSON(w, map[string]any{"code": 0, "sdp": answer, "type": "answer", "id": ss.id})
		return
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", r.URL.Path+"/"+ss.id)
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, answer)
}

// check applies [auth] users, then on_play / on_publish.
func (s *Server) check(r *http.Request, publish bool, app, stream string, who hub.Origin) (int, error) {
	if s.Auth == nil {
		return 0, nil
	}
	act, verb := auth.Play, "play"
	if publish {
		act, verb = auth.Publish, "publish"
	}
	q := r.URL.Query()
	if !s.Auth.Allow(act, q.Get("user"), q.Get("pass")) {
		s.Auth.CountRefusal(act)
		s.Log.Warn("webrtc "+verb+" refused: bad or missing credentials", "user", q.Get("user"), "path", app+"/"+stream,
			"fix", "add ?user=NAME&pass=PASSWORD of an [auth] "+verb+" user to the URL")
		return http.StatusUnauthorized, fmt.Errorf("%s needs ?user=NAME&pass=PASSWORD of a %s user", verb, verb)
	}
	if err := s.Auth.Authorize(r.Context(), auth.Request{Action: act, Proto: "webrtc", App: app, Stream: stream,
		Params: who.Params, Remote: r.RemoteAddr, ID: who.ID, User: q.Get("user")}); err != nil {
		s.Log.Warn("webrtc "+verb+" refused by the web hook; answered 403", "path", app+"/"+stream, "reason", err.Error())
		return http.StatusForbidden, fmt.Errorf("%s refused: %w", verb, err)
	}
	return 0, nil
}

// httpError carries the status an offer's failure answers.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

// negotiate answers offer on pc once setup has added or chosen tracks;
// the answer waits for candidate gathering (host candidates on the mux:
// immediate), so it is complete.
func (s *Server) negotiate(pc *pion.PeerConnection, offer string, setup func() error) (string, error) {
	if err := pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: offer}); err != nil {
		return "", &httpError{http.StatusBadRequest, "the SDP offer was refused: " + err.Error()}
	}
	if err := setup(); err != nil {
		return "", err
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", &httpError{http.StatusNotAcceptable, "no answer to this offer: " + err.Error()}
	}
	gathered := pion.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return "", &httpError{http.StatusInternalServerError, "answer: " + err.Error()}
	}
	select {
	case <-gathered:
	case <-time.After(gatherWait):
	}
	s.Log.Debug("webrtc offer and answer", "offer", offer, "answer", pc.LocalDescription().SDP)
	return pc.LocalDescription().SDP, nil
}

// add registers a session and ends it when its peer connection fails or closes.
func (s *Server) add(ss *session) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return &httpError{http.StatusServiceUnavailable, "server is shutting down"}
	}
	s.sessions[ss.id] = ss
	if ss.publish {
		s.pubs[ss.path] = ss
	}
	s.mu.Unlock()
	ss.pc.OnConnectionStateChange(func(st pion.PeerConnectionState) {
		switch st {
		case pion.PeerConnectionStateConnected:
			ss.connectedOnce.Do(func() { close(ss.connected) })
		case pion.PeerConnectionStateFailed, pion.PeerConnectionStateClosed, pion.PeerConnectionStateDisconnected:
			s.Log.Info("webrtc peer gone", "id", ss.id, "path", ss.path, "state", st.String())
			go s.end(ss)
		}
	})
	return nil
}

// end closes a session once: the hub side first, then the peer.
func (s *Server) end(ss *session) {
	ss.once.Do(func() {
		s.mu.Lock()
		delete(s.sessions, ss.id)
		if s.pubs[ss.path] == ss {
			delete(s.pubs, ss.path)
		}
		s.mu.Unlock()
		close(ss.done)
		if ss.close != nil {
			ss.close()
		}
		ss.pc.Close()
	})
}

// requestKeyframe forwards a player's keyframe request to path's WHIP
// publisher, and reports whether there is one (other publishers cannot be
// asked).
func (s *Server) requestKeyframe(path string) bool {
	s.mu.Lock()
	pub := s.pubs[path]
	s.mu.Unlock()
	if pub == nil || pub.keyframe == nil {
		return false
	}
	select {
	case pub.keyframe <- struct{}{}:
	default: // one is pending already
	}
	return true
}

// Sessions counts live WebRTC sessions (players and publishers).
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Shutdown ends every session.
func (s *Server) Shutdown(ctx context.Context) {
	s.mu.Lock()
	s.closed = true
	all := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		all = append(all, ss)
	}
	s.mu.Unlock()
	for _, ss := range all {
		s.end(ss)
	}
}

func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
