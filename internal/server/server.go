// Package server is the composition root: config -> ports -> hub -> protocol
// servers. It owns start-up order (bind everything, report every port problem
// at once, serve, prove the listeners answer) and shutdown order (listeners
// first, then sessions).
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berthmedia/berth/internal/api"
	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/certs"
	"github.com/berthmedia/berth/internal/cluster"
	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/flv"
	"github.com/berthmedia/berth/internal/fmp4"
	"github.com/berthmedia/berth/internal/hls"
	"github.com/berthmedia/berth/internal/hooks"
	"github.com/berthmedia/berth/internal/httpstream"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/metrics"
	"github.com/berthmedia/berth/internal/mpegts"
	"github.com/berthmedia/berth/internal/ports"
	"github.com/berthmedia/berth/internal/proxy"
	"github.com/berthmedia/berth/internal/pusher"
	"github.com/berthmedia/berth/internal/record"
	"github.com/berthmedia/berth/internal/rtmp"
	"github.com/berthmedia/berth/internal/rtpproxy"
	"github.com/berthmedia/berth/internal/rtpsend"
	"github.com/berthmedia/berth/internal/rtsp"
	"github.com/berthmedia/berth/internal/sessions"
	"github.com/berthmedia/berth/internal/srt"
	"github.com/berthmedia/berth/internal/web"
	"github.com/berthmedia/berth/internal/webrtc"
)

// Version is Berth's version, shown in the banner, the Server header and probes.
var Version = "0.1.0-dev"

// Server runs one Berth instance.
type Server struct {
	Config *config.Config
	Log    *slog.Logger
	// Ephemeral binds every enabled listener on port 0 (the kernel picks),
	// so tests can run in parallel; Addr tells the real ports.
	Ephemeral bool
	// Banner receives the startup banner; nil = none.
	Banner io.Writer
	// Level is Log's level when Log was built on it (logging.NewLevel):
	// a reload of [log] level sets it. nil: that key needs a restart.
	// Start sets it when it builds Log itself.
	Level *slog.LevelVar

	Hub      *hub.Hub
	Instance string
	// Sessions lists every TCP connection of every listener (the API's
	// getAllSession, kick_session; metrics' accepted counts).
	Sessions *sessions.Registry
	Metrics  *metrics.Metrics // served at /metrics on the HTTP port; ObserveHook feeds it hook calls

	bound *ports.Bound
	rtsp  *rtsp.Server
	rtmp  *rtmp.Server
	rtp   *rtpproxy.Server
	send  *rtpsend.Manager // startSendRtp's senders (sendrtp.go)
	srt   *srt.Server      // [srt] port (srt.go)
	rtc   *webrtc.Server   // [rtc] port: WHEP, WHIP (webrtc.go)
	flv   *flv.Handler
	// players is what every event-driven HTTP player shares (FLV, TS, fMP4):
	// one set of sender goroutines and one poller for WebSocket pages.
	players httpstream.Players
	api     *api.Handler
	fmp4    *fmp4.Handler
	hls     *hls.Handler
	ts      *mpegts.Handler
	http    *http.Server
	pprof   *http.Server
	web     webState // the status page's view of this run (web.go)
	wg      sync.WaitGroup
	live    liveState    // hot reload (reload.go)
	guard   serverLimits // limits against abuse (limits.go)

	certs         certs.Store    // the certificate of the TLS listeners (tls.go)
	hooks         *hooks.Client  // web hooks (hooks.go)
	proxies       *proxy.Manager // pull proxies (proxy.go)
	edge          *cluster.Edge  // [cluster] origin_url: pulls of missing streams from origins (origin.go)
	cluster       *cluster.Node  // [cluster] redis: the stream registry (cluster.go); nil when off
	stopKeepalive func()

	pushers      *pusher.Manager  // addStreamPusherProxy (pusher.go)
	record       *record.Manager  // MP4 recording (record.go)
	playback     *record.Playback // recordings played back as streams (playback.go)
	recordMu     sync.Mutex
	recordMuxers *fmp4.Muxers   // the recorder's own fMP4 muxers when there is no HTTP port
	recordTS     *mpegts.Muxers // and MPEG-TS ones (HLS recording)
	files        http.Handler   // [http] rootPath's static files (recordings); nil when off
	filesPrefix  string         // "/<appName>/": paths the files take before the live handlers
}

// New returns a server for cfg; Start runs it.
func New(cfg *config.Config, log *slog.Logger) *Server {
	return &Server{Config: cfg, Log: log, Instance: newInstance()}
}

func newInstance() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Specs lists the listeners a config asks for; a port of 0 disables one.
func Specs(cfg *config.Config) []ports.Spec {
	host := cfg.General.ListenIP
	var specs []ports.Spec
	add := func(name, section, flag, network string, port int) {
		if port > 0 {
			specs = append(specs, ports.Spec{Name: name, Section: section, Flag: flag, Network: network, Host: host, Port: port})
		}
	}
	add("rtsp", "rtsp", "--rtsp-port", "tcp", cfg.RTSP.Port)
	add("rtmp", "rtmp", "--rtmp-port", "tcp", cfg.RTMP.Port)
	add("http", "http", "--http-port", "tcp", cfg.HTTP.Port)
	add("rtp_proxy", "rtp_proxy", "--rtp-port", "tcp", cfg.RTPProxy.Port)
	add("rtp_proxy", "rtp_proxy", "--rtp-port", "udp", cfg.RTPProxy.Port)
	add("srt", "srt", "--srt-port", "udp", cfg.SRT.Port)
	add("rtc", "rtc", "--rtc-port", "udp", cfg.RTC.Port)
	if cfg.RTC.Port > 0 && cfg.RTC.TCPPort > 0 { // ICE-TCP, only with WebRTC on: same listener name, its own key (webrtc.go)
		specs = append(specs, ports.Spec{Name: "rtc", Section: "rtc", Key: "tcpPort", Flag: "--rtc-tcp-port", Network: "tcp", Host: host, Port: cfg.RTC.TCPPort})
	}
	specs = append(specs, tlsSpecs(cfg)...) // https, rtsps, rtmps: only with a certificate (tls.go)
	return specs
}

// Start binds every listener, reporting all port problems together as a
// *ports.StartError, then serves. It returns once everything listens.
func (s *Server) Start() error {
	cfg := s.Config
	if s.Log == nil {
		s.Level = logging.NewLevel(cfg.Log.Level)
		s.Log = logging.New(os.Stderr, s.Level)
	}
	s.Log = s.web.install(s.Log)
	if err := s.loadCert(cfg); err != nil { // before any bind: a bad certificate refuses the start (tls.go)
		return err
	}
	edge, err := s.newEdge(cfg) // before any bind too: a bad origin_url refuses the start (origin.go)
	if err != nil {
		return err
	}
	specs := Specs(cfg)
	if s.Ephemeral {
		for i := range specs {
			specs[i].Port = 0
		}
	}
	bound, err := ports.BindAll(specs, cfg.General.PortFallback)
	if err != nil {
		return err
	}
	s.bound = bound
	s.setLimits(cfg) // before the listeners are wrapped with the connection caps (limits.go)
	s.registerSessions(bound)
	for _, n := range bound.Notices {
		s.Log.Warn(n)
	}
	for _, line := range ports.Shadows(bound) {
		s.Log.Warn(line)
	}
	if err := s.startCluster(); err != nil { // a node_id live elsewhere refuses the start (cluster.go)
		bound.Close()
		return err
	}

	policy := hub.SkipToKeyframe
	if cfg.Hub.SlowReader == "close" {
		policy = hub.CloseSlow
	}
	s.startHooks()
	s.proxies = s.newProxies()
	edge.Proxies, s.edge = s.proxies, edge
	s.record = s.newRecorder() // finalises what a previous run left in progress (record.go)
	s.playback = s.newPlayback()
	s.Hub = hub.New(hub.Options{Observer: hub.Observers{s.hookObserver(), s.proxies, hub.OnPublish(s.hlsPublished), hub.OnPublish(s.recordPublished), s.playback, s.clusterObserver(), s.edge},
		RingSize: cfg.Hub.RingSize, SlowReader: policy, AllowTakeover: cfg.General.AllowTakeover,
		Log: s.Log, Converters: codec.Converters(s.Log.With("component", "convert")),
	})
	s.proxies.Hub = s.Hub
	s.playback.Hub = s.Hub
	s.pushers = s.newPushers()
	checker := &auth.Checker{Publish: cfg.Auth.Publish, Play: cfg.Auth.Play, Realm: cfg.Auth.Realm, Gate: s.publishGate()}
	s.live.checker = checker
	// Metrics before any session, so the hooks' calls are observed from the first.
	s.Metrics = s.newMetrics(checker)
	s.hooks.Observe = s.Metrics.ObserveHook

	if l := bound.TCP["rtsp"]; l != nil || bound.TCP["rtsps"] != nil {
		s.rtsp = &rtsp.Server{
			Hub: s.Hub, Log: s.Log.With("proto", "rtsp"), Auth: checker, AuthBasic: cfg.RTSP.AuthBasic,
			KeepAlive: time.Duration(cfg.RTSP.KeepAliveSecond) * time.Second,
			UDPRange:  cfg.RTSP.RTPPortRange, Instance: s.Instance, Version: Version,
			HookAuth: hooks.RTSPAuth{C: s.hooks}, StreamWait: s.streamWait(), Playback: s.playback,
			MaxHeaderBytes: cfg.Limits.RTSPMaxHeaderBytes, MaxBodyBytes: cfg.Limits.RTSPMaxBodyBytes, // limits against abuse
			HeaderTimeout: time.Duration(cfg.Limits.RTSPHeaderTimeoutSec) * time.Second, MaxInterleavedBytes: cfg.Limits.RTSPMaxInterleavedBytes,
			Warn: s.guard.warn,
		}
		if l != nil {
			s.serve("rtsp", func() error { return s.rtsp.Serve(l) })
		}
	}
	if l := bound.TCP["rtmp"]; l != nil || bound.TCP["rtmps"] != nil {
		s.rtmp = &rtmp.Server{Hub: s.Hub, Log: s.Log.With("proto", "rtmp"), Auth: checker, Instance: s.Instance, Version: Version,
			StreamWait: s.streamWait(), MaxMessageBytes: cfg.Limits.RTMPMaxMessageBytes, HandshakeTimeout: time.Duration(cfg.Limits.RTMPHandshakeSeconds) * time.Second,
			Warn: s.guard.warn}
		s.rtmp.SetReadTimeout(time.Duration(cfg.RTMP.KeepAliveSecond) * time.Second)
		if l != nil {
			s.serve("rtmp", func() error { return s.rtmp.Serve(l) })
		}
	}
	// The RTP proxy exists even when its shared port is off: openRtpServer
	// still opens ports for single streams, as in ZLMediaKit.
	s.rtp = &rtpproxy.Server{
		Hub: s.Hub, Log: s.Log.With("proto", "rtp"), TimeoutSec: cfg.RTPProxy.TimeoutSec,
		PSPT: cfg.RTPProxy.PSPT, TSPT: cfg.RTPProxy.TSPT, PortRange: cfg.RTPProxy.PortRange, Host: cfg.General.ListenIP,
		OnTimeout: s.rtpTimeout,
	}
	s.rtp.MaxSSRCPerPort, s.rtp.UnreadyTimeout = cfg.Limits.RTPMaxSSRCPerPort, time.Duration(cfg.Limits.RTPUnreadyTimeoutSec)*time.Second // limits against abuse
	s.rtp.Warn = s.guard.warn
	s.send = s.newRTPSender()
	if pc := bound.UDP["rtp_proxy"]; pc != nil {
		s.serve("rtp_proxy", func() error { return s.rtp.ServeUDP(pc) })
	}
	if l := bound.TCP["rtp_proxy"]; l != nil {
		s.serve("rtp_proxy", func() error { return s.rtp.ServeTCP(l) })
	}
	if err := s.startWebRTC(bound, checker); err != nil { // before HTTP, which routes its offers (webrtc.go)
		s.Shutdown(context.Background())
		return err
	}
	if l := bound.TCP["http"]; l != nil || bound.TCP["https"] != nil {
		s.http = &http.Server{Handler: s.httpHandler(checker), ReadHeaderTimeout: 10 * time.Second, ConnContext: httpstream.ConnContext} // players name their session (hub.Origin.Conn)
		// Head, body and keep-alive limits against abuse (limits.go).
		s.limitHTTP(s.http, cfg)
		// Failed TLS handshakes at debug, the rest at warn (tls.go).
		s.http.ErrorLog = s.httpErrorLog()
		if s.flv != nil {
			// FLV responses last as long as the stream: end them when shutdown starts.
			s.http.RegisterOnShutdown(s.flv.Close)
		}
		if s.fmp4 != nil {
			s.http.RegisterOnShutdown(s.fmp4.Muxers.Close) // fMP4 responses too
		}
		if s.hls != nil {
			s.http.RegisterOnShutdown(s.hls.Close) // blocked LL-HLS playlist requests
		}
		if s.ts != nil {
			s.http.RegisterOnShutdown(s.ts.Muxers.Close) // and TS ones
		}
		if l != nil {
			s.serve("http", func() error { return s.http.Serve(l) })
		}
	}
	s.serveTLS(bound) // the TLS listeners, on the servers above (tls.go)
	// After HTTP: SRT players read HTTP-TS's muxers (srt.go).
	if err := s.startSRT(bound, checker); err != nil {
		s.Shutdown(context.Background())
		return err
	}

	if err := s.startPprof(); err != nil {
		s.Shutdown(context.Background())
		return err
	}

	for _, line := range ports.SelfProbe(bound, s.Instance, 2*time.Second) {
		s.Log.Error(line)
	}
	s.web.probed(bound)
	if s.Banner != nil {
		ports.Banner(s.Banner, bound, s.Log)
	}
	s.hooksStarted()
	s.startPulls()
	s.runCluster()
	return nil
}

// startPprof serves Go's profiler on 127.0.0.1 only ([general] pprof_port):
// it exposes stacks and memory, so it never listens beyond loopback.
func (s *Server) startPprof() error {
	port := s.Config.General.PprofPort
	if port <= 0 {
		return nil
	}
	if s.Ephemeral {
		port = 0
	}
	spec := ports.Spec{Name: "pprof", Section: "general", Key: "pprof_port", Flag: "--pprof-port", Network: "tcp", Host: "127.0.0.1", Port: port}
	l, err := ports.Listen(spec)
	if err != nil {
		var f *ports.Finding
		if errors.As(err, &f) {
			return &ports.StartError{Findings: []*ports.Finding{f}}
		}
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.pprof = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.Log.Info("pprof listening", "url", "http://"+l.Addr().String()+"/debug/pprof/")
	s.serve("pprof", func() error { return s.pprof.Serve(l) })
	return nil
}

func (s *Server) serve(name string, fn func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := fn(); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
			s.Log.Error(name+": server stopped", "err", err)
		}
	}()
}

func (s *Server) httpHandler(checker *auth.Checker) http.Handler {
	mux := http.NewServeMux()
	// HTTP-FLV / WS-FLV: /app/stream.live.flv and /app/stream.flv. Only
	// paths ending in .flv go there; the status page takes / and
	// /index.html, and answers 404 for any other path.
	s.flv = &flv.Handler{Hub: s.Hub, Log: s.Log, Auth: checker, StreamWait: s.streamWait(), Players: httpstream.PlayersRef{Shared: &s.players}} // it names proto=http-flv or ws-flv per request
	page := s.webHandler()
	s.fmp4 = s.newFMP4(checker) // HTTP-fMP4 / WS-fMP4: /app/stream.live.mp4
	s.ts = s.newTS(checker)     // HTTP-TS / WS-TS: /app/stream.live.ts
	s.hls = s.newHLS(checker)   // /app/stream/hls.m3u8, /app/stream/hls.fmp4.m3u8 and their files
	s.files = s.newFiles()      // [http] rootPath: recordings at /record/app/stream/day/file.mp4 (record.go)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if s.filesFirst(r.URL.Path) {
			s.files.ServeHTTP(w, r)
			return
		}
		if strings.HasSuffix(r.URL.Path, ".live.mp4") {
			s.fmp4.ServeHTTP(w, r)
			return
		}
		if strings.HasSuffix(r.URL.Path, mpegts.Suffix) {
			s.ts.ServeHTTP(w, r)
			return
		}
		if hls.Match(r.URL.Path) {
			s.hls.ServeHTTP(w, r)
			return
		}
		if strings.HasSuffix(r.URL.Path, ".flv") {
			s.flv.ServeHTTP(w, r)
			return
		}
		page.ServeHTTP(w, r)
	})
	mux.Handle(web.AssetPrefix, page)
	mux.Handle(web.StatusPath, page)
	// ZLMediaKit's HTTP API.
	s.api = &api.Handler{Hub: s.Hub, Secret: s.Config.API.Secret, RTP: s.rtp, Sessions: s.Sessions,
		Schemas: []string{"rtsp", "rtmp", "fmp4", "ts", "hls", "hls.fmp4"}, // fmp4: HTTP-fMP4 and WS-fMP4 on this port; ts: HTTP-TS and WS-TS
		Config:  s, Version: Version, Log: s.Log.With("component", "api"),  // a reload calls s.api.SetSecret
		Proxies: s.proxies}
	s.api.SendRTP = s.send
	s.api.Pushers = s.pushers
	s.api.Record = s.record
	s.api.Playback = s.playback
	s.api.Cluster = s.clusterStatus
	mux.Handle(api.Prefix, s.limitAPI(s.api))   // per-IP rate (limits.go)
	s.routeWebRTC(mux)                          // /index/api/whep, whip, webrtc: before the API's secret check (webrtc.go)
	mux.Handle("/metrics", s.Metrics.Handler()) // [metrics] enable=0 makes it answer 404
	mux.HandleFunc("/berth/health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Berth-Instance", s.Instance)
		fmt.Fprintf(w, `{"server":"berth","version":%q,"instance":%q,"pid":%d}`+"\n", Version, s.Instance, os.Getpid())
	})
	return mux
}

// Addr returns 127.0.0.1:PORT (or the configured host) of a bound listener
// by name ("rtsp", "rtmp", "http", "rtp_proxy"), "" when it is off.
func (s *Server) Addr(name string) string {
	if s.bound == nil {
		return ""
	}
	s.live.mu.RLock() // a reload may be moving the listener
	sp, ok := s.bound.Spec(name)
	s.live.mu.RUnlock()
	if !ok {
		return ""
	}
	host := sp.Host
	if sp.Wildcard() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(sp.Port))
}

// Shutdown closes every listener first, then ends sessions and streams.
func (s *Server) Shutdown(ctx context.Context) error {
	s.live.stop() // no reload may bind a listener from now on
	if s.bound != nil {
		s.bound.Close()
	}
	s.stopCluster() // its registry entries go first: other nodes stop sending readers here
	if s.pushers != nil {
		s.pushers.Close() // they hang up on their targets before the streams they read end
	}
	if s.rtsp != nil {
		s.rtsp.Shutdown(ctx)
	}
	if s.rtmp != nil {
		s.rtmp.Shutdown(ctx)
	}
	if s.send != nil {
		s.send.Shutdown(ctx)
	}
	if s.srt != nil {
		s.srt.Shutdown(ctx)
	}
	if s.rtc != nil {
		s.rtc.Shutdown(ctx)
	}
	if s.rtp != nil {
		s.rtp.Shutdown(ctx)
	}
	if s.http != nil {
		s.http.Shutdown(ctx)
	}
	if s.pprof != nil {
		s.pprof.Close()
	}
	if s.proxies != nil {
		s.proxies.Close()
	}
	if s.playback != nil {
		s.playback.Close()
	}
	s.stopRecorder(ctx) // files closed and reported before the hooks drain
	if s.Hub != nil {
		s.Hub.Close()
	}
	s.stopHooks(ctx)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
