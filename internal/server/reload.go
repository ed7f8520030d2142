package server

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/ports"
)

// Hot reload, as Caddy does it: the new configuration's listeners are bound
// before anything of the old one stops, so a reload to a taken port fails
// with the same finding a start would print and changes nothing. Then every
// key that can change while running does, each protocol server accepts on
// its new listener, the old listener closes (connections it accepted keep
// running), and the keys that cannot change live are named, not ignored.

// liveState is what Reload needs beyond the fields Start fills.
type liveState struct {
	setMu    sync.Mutex   // one setServerConfig at a time: clone, reload, write
	reloadMu sync.Mutex   // one reload at a time
	mu       sync.RWMutex // guards Server.Config and the bound listeners' specs while a reload swaps them

	checker   *auth.Checker
	reloaders []reloader

	stopped      bool                                       // Shutdown began; guarded by reloadMu
	restartExec  func(exe string, args, env []string) error // tests replace it (restart_*.go)
	restartDelay time.Duration
}

// stop marks the server as shutting down, after any reload in progress.
func (l *liveState) stop() {
	l.reloadMu.Lock()
	l.stopped = true
	l.reloadMu.Unlock()
}

type reloader struct {
	keys  []string // "hook" claims the section, "general.mediaServerId" one key
	apply func(*config.Config)
}

// OnReload registers apply to run after a reload that changed one of keys:
// a section name ("hook") claims every key of the section, "section.key"
// one key. Claimed keys count as applied live. This is where features that
// own settings hook in (the web hooks, metrics).
// apply must not block: it runs while the reload holds its lock.
func (s *Server) OnReload(keys []string, apply func(*config.Config)) {
	s.live.reloadMu.Lock()
	defer s.live.reloadMu.Unlock()
	s.live.reloaders = append(s.live.reloaders, reloader{keys: keys, apply: apply})
}

// ReloadReport says what a reload changed and how.
type ReloadReport struct {
	Changes []Change
	// Listeners are the banner lines of the listeners that moved.
	Listeners []string
}

// Change is one key whose value differs between the running config and
// the new one.
type Change struct {
	Key      string // "rtsp.port", ZLMediaKit's form
	Old, New string // "(hidden)" for secrets and passwords
	Live     bool   // applied while running
	Note     string // how it applied, or why it needs a restart
}

// Restart lists the keys that changed but need a restart to apply.
func (r ReloadReport) Restart() []string {
	var out []string
	for _, c := range r.Changes {
		if !c.Live {
			out = append(out, c.Key)
		}
	}
	return out
}

// Key returns the change of key, if it changed.
func (r ReloadReport) Key(key string) (Change, bool) {
	for _, c := range r.Changes {
		if c.Key == key {
			return c, true
		}
	}
	return Change{}, false
}

func (c Change) String() string {
	section, key, _ := strings.Cut(c.Key, ".")
	head := fmt.Sprintf("[%s] %s %s -> %s", section, key, c.Old, c.New)
	if c.Live {
		return head + ": applied live (" + c.Note + ")"
	}
	return head + ": needs a restart (" + c.Note + ")"
}

// secretKeys are shown as "(hidden)" in reports and logs.
var secretKeys = map[string]bool{"api.secret": true, "auth.publish": true, "auth.play": true}

// restartOnly says why a key cannot change while Berth runs.
var restartOnly = map[string]string{
	"general.listen_ip":       "every listener would have to bind the new address; moved ports keep the running address until then",
	"general.port_fallback":   "it only matters while binding at start",
	"general.pprof_port":      "the profiler's listener is bound at start",
	"general.allow_takeover":  "the hub's takeover rule is fixed when the hub is made",
	"general.maxStreamWaitMS": "the RTSP and RTMP servers take the wait when they start",
	"rtsp.rtp_port_range":     "UDP port pairs already handed out stay where they are, and the RTSP server keeps the range it started with",
	"rtp_proxy.port_range":    "ports openRtpServer opened stay open, and the RTP server keeps the range it started with",
	"rtp_proxy.ps_pt":         "the RTP server's packet path reads it without a lock",
	"rtp_proxy.ts_pt":         "the RTP server's packet path reads it without a lock",
	"hub.slow_reader":         "the hub's slow-reader policy is fixed when the hub is made",
	"cluster.redis":           "the node joins its registry at start",
	"cluster.node_id":         "the node registers under its node_id at start",
	"cluster.advertise":       "the node's entry and its streams' play URLs are written with it from start",
}

// listenerKeys are the ports a reload can move: key -> listener name.
var listenerKeys = map[string]string{
	"rtsp.port": "rtsp", "rtmp.port": "rtmp", "http.port": "http", "rtp_proxy.port": "rtp_proxy",
	"rtsp.sslport": "rtsps", "rtmp.sslport": "rtmps", "http.sslport": "https",
}

// listenerKey is the port key of a listener: "rtsp" -> "rtsp.port".
func listenerKey(name string) string {
	for k, n := range listenerKeys {
		if n == name {
			return k
		}
	}
	return name + ".port"
}

// move is one listener a reload rebinds (or turns off).
type move struct {
	name string
	tcp  net.Listener
	udp  *ports.PacketConn
	spec ports.Spec // the bound spec (real port); Network is set per socket
	off  bool
}

// Reload applies newCfg to the running server: see the comment at the top
// of this file. On error nothing has changed; a port problem is a
// *ports.StartError whose findings name the listener, address, holder and
// fix, as at start.
func (s *Server) Reload(newCfg *config.Config) (ReloadReport, error) {
	s.live.reloadMu.Lock()
	defer s.live.reloadMu.Unlock()
	var rep ReloadReport
	if s.bound == nil || s.live.stopped {
		return rep, errors.New("reload: the server is not running")
	}
	if err := newCfg.Validate(); err != nil {
		return rep, fmt.Errorf("reload: %w; the running config stays", err)
	}
	s.live.mu.RLock()
	old := s.Config
	s.live.mu.RUnlock()
	oldV, newV := old.Values(), newCfg.Values()
	var changed []string
	for _, k := range config.Keys() {
		if oldV[k] != newV[k] {
			changed = append(changed, k)
		}
	}
	cert, err := s.reloadCert(newCfg) // a renewed certificate in the same file counts too (tls.go)
	if err != nil {
		return rep, err
	}
	if len(changed) == 0 && cert == nil {
		s.Log.Info("reload: no key changed")
		return rep, nil
	}

	moves, notes, err := s.bindMoves(newCfg, changed)
	if err != nil {
		return rep, err
	}
	s.applyCert(cert, changed, &rep)

	for _, k := range changed {
		c := Change{Key: k, Old: oldV[k], New: newV[k]}
		if secretKeys[k] {
			c.Old, c.New = "(hidden)", "(hidden)"
		}
		c.Live, c.Note = s.applyKey(k, newCfg, notes)
		rep.Changes = append(rep.Changes, c)
	}
	for _, r := range s.live.reloaders {
		if slices.ContainsFunc(changed, func(k string) bool { return claims(r.keys, k) }) {
			r.apply(newCfg)
		}
	}

	for i := range moves {
		if !moves[i].off {
			// Wrapped before Bound records it, so closing it at the next
			// reload (or shutdown) goes through the wrapper too.
			moves[i].tcp = s.wrapListener(moves[i].name, moves[i].tcp)
		}
	}
	s.live.mu.Lock()
	s.Config = newCfg
	var olds []func() error
	for _, m := range moves {
		if m.off {
			if l := s.bound.ReplaceTCP(m.spec, nil); l != nil {
				olds = append(olds, l.Close)
			}
			if m.name == "rtp_proxy" {
				if pc := s.bound.ReplaceUDP(m.spec, nil); pc != nil {
					olds = append(olds, pc.Close)
				}
			}
			continue
		}
		if l := s.bound.ReplaceTCP(m.spec, m.tcp); l != nil {
			olds = append(olds, l.Close)
		}
		if m.udp != nil {
			if pc := s.bound.ReplaceUDP(m.spec, m.udp); pc != nil {
				olds = append(olds, pc.Close)
			}
		}
	}
	s.live.mu.Unlock()
	// The new listeners serve before the old ones close: a client never
	// finds neither.
	for _, m := range moves {
		if !m.off {
			s.serveMoved(m)
		}
	}
	for _, closeOld := range olds {
		closeOld()
	}

	var moved []string
	for _, m := range moves {
		if !m.off {
			moved = append(moved, m.name)
		}
	}
	if len(moved) > 0 {
		for _, line := range s.bound.ShadowsOnly(moved) {
			s.Log.Warn(line)
		}
		for _, line := range s.bound.SelfProbeOnly(moved, s.Instance, 2*time.Second) {
			s.Log.Error(line)
		}
		var b bytes.Buffer
		ports.BannerOnly(&b, s.bound, moved, nil)
		rep.Listeners = strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
		if s.Banner != nil {
			s.Banner.Write(b.Bytes())
		}
	}
	s.logReport(rep)
	return rep, nil
}

func claims(keys []string, key string) bool {
	section, _, _ := strings.Cut(key, ".")
	for _, c := range keys {
		if strings.EqualFold(c, key) || strings.EqualFold(c, section) {
			return true
		}
	}
	return false
}

// bindMoves binds the new listener of every changed port, all or nothing.
// notes says, per port key, what happened (for the report).
func (s *Server) bindMoves(newCfg *config.Config, changed []string) ([]move, map[string]string, error) {
	notes := map[string]string{}
	var moves []move
	var specs []ports.Spec // the listeners as they will be, for the duplicate check
	want := map[string]ports.Spec{}
	for _, k := range changed {
		name, ok := listenerKeys[k]
		if !ok {
			continue
		}
		cur, running := s.bound.Spec(name)
		port := portOf(newCfg, name)
		switch {
		case port == 0 && running:
			moves = append(moves, move{name: name, spec: cur, off: true})
			notes[k] = name + " stopped listening; sessions it accepted keep running"
		case port == 0:
			notes[k] = name + " was off already"
		case !running:
			notes[k] = "-" + name + " was off at start; turning a listener on needs a restart"
		default:
			sp := cur
			sp.Port = port
			want[name] = sp
		}
	}
	for _, sp := range s.bound.Specs {
		if w, ok := want[sp.Name]; ok {
			w.Network = sp.Network
			specs = append(specs, w)
		} else if !slices.ContainsFunc(moves, func(m move) bool { return m.off && m.name == sp.Name }) {
			specs = append(specs, sp)
		}
	}
	avoid := map[int]bool{}
	for _, sp := range specs {
		avoid[sp.Port] = true
	}
	var findings []*ports.Finding
	for _, f := range ports.Duplicates(specs) {
		_, moved := want[f.Spec.Name]
		if !moved && f.Other != nil {
			if _, ok := want[f.Other.Name]; ok { // name the listener that moves, not the one in its way
				f.Spec, *f.Other = *f.Other, f.Spec
				f.Addr, f.Network = f.Spec.Addr(), f.Spec.Network
				moved = true
			}
		}
		if moved {
			f.FreePort = ports.NearestFree(f.Spec, netsOf(f.Spec.Name), avoid)
			findings = append(findings, f)
		}
	}
	var bound []move
	if len(findings) == 0 {
		for _, name := range []string{"rtsp", "rtmp", "http", "rtp_proxy", "rtsps", "rtmps", "https"} {
			sp, ok := want[name]
			if !ok {
				continue
			}
			m := move{name: name, spec: sp}
			sp.Network = "tcp"
			l, err := ports.Listen(sp)
			if err == nil && name == "rtp_proxy" {
				var pc *ports.PacketConn
				if pc, err = ports.ListenPacket(ports.Spec{Name: sp.Name, Section: sp.Section, Flag: sp.Flag, Network: "udp", Host: sp.Host, Port: sp.Port}); err == nil {
					m.udp = pc
				} else {
					l.Close()
					sp.Network = "udp"
				}
			}
			if err != nil {
				f := asFinding(sp, err)
				f.FreePort = ports.NearestFree(sp, netsOf(name), avoid)
				findings = append(findings, f)
				continue
			}
			m.tcp = l
			bound = append(bound, m)
			note := name + " now listens on " + l.Addr().String() + "; sessions on the old port keep running"
			if name == "rtp_proxy" {
				note = "rtp_proxy now listens on " + l.Addr().String() + " (TCP and UDP); RTP over TCP connections on the old port keep running, UDP senders must send to the new port"
			}
			notes[listenerKey(name)] = note
		}
	}
	if len(findings) > 0 {
		for _, m := range bound {
			m.tcp.Close()
			if m.udp != nil {
				m.udp.Close()
			}
		}
		return nil, nil, &ports.StartError{Findings: findings}
	}
	return append(moves, bound...), notes, nil
}

// netsOf lists the networks a listener binds: the RTP proxy's port is TCP and UDP.
func netsOf(name string) []string {
	if name == "rtp_proxy" {
		return []string{"tcp", "udp"}
	}
	return []string{"tcp"}
}

func asFinding(sp ports.Spec, err error) *ports.Finding {
	var f *ports.Finding
	if errors.As(err, &f) {
		return f
	}
	return &ports.Finding{Spec: sp, Network: sp.Network, Addr: sp.Addr(), Err: err}
}

func portOf(c *config.Config, name string) int {
	switch name {
	case "rtsp":
		return c.RTSP.Port
	case "rtmp":
		return c.RTMP.Port
	case "http":
		return c.HTTP.Port
	case "rtp_proxy":
		return c.RTPProxy.Port
	}
	return tlsPortOf(c, name)
}

// serveMoved hands a new listener to the protocol server that served the
// old one: each accepts on any number of listeners.
func (s *Server) serveMoved(m move) {
	l := m.tcp
	switch m.name {
	case "rtsp":
		s.serve("rtsp", func() error { return s.rtsp.Serve(l) })
	case "rtmp":
		s.serve("rtmp", func() error { return s.rtmp.Serve(l) })
	case "http":
		s.serve("http", func() error { return s.http.Serve(l) })
	case "rtp_proxy":
		s.serve("rtp_proxy", func() error { return s.rtp.ServeTCP(l) })
		s.serve("rtp_proxy", func() error { return s.rtp.ServeUDP(m.udp) })
	default:
		s.serveTLSListener(m.name, l) // https, rtsps, rtmps (tls.go)
	}
}

// wrapListener is where a moved listener gets what Start gives every
// listener: the session registry (getAllSession, kick_session).
func (s *Server) wrapListener(name string, l net.Listener) net.Listener {
	return s.sessionListener(name, l)
}

// applyKey applies one changed key live where it can, and says how.
func (s *Server) applyKey(k string, c *config.Config, portNotes map[string]string) (live bool, note string) {
	if n, ok := portNotes[k]; ok {
		if strings.HasPrefix(n, "-") {
			return false, n[1:]
		}
		return true, n
	}
	switch k {
	case "rtsp.keepAliveSecond":
		if s.rtsp == nil {
			return true, "RTSP is off"
		}
		s.rtsp.SetKeepAlive(time.Duration(c.RTSP.KeepAliveSecond) * time.Second)
		return true, "for RTSP sessions accepted from now on"
	case "rtmp.keepAliveSecond":
		if s.rtmp == nil {
			return true, "RTMP is off"
		}
		s.rtmp.SetReadTimeout(time.Duration(c.RTMP.KeepAliveSecond) * time.Second)
		return true, "from each RTMP connection's next read on"
	case "rtsp.authBasic":
		if s.rtsp == nil {
			return true, "RTSP is off"
		}
		s.rtsp.SetAuthBasic(c.RTSP.AuthBasic)
		return true, "from the next RTSP challenge on"
	case "rtp_proxy.timeoutSec":
		s.rtp.SetTimeout(time.Duration(c.RTPProxy.TimeoutSec) * time.Second)
		return true, "for every RTP stream, running ones included"
	case "api.secret":
		if s.api != nil { // nil: HTTP is off, there is no API to change
			s.api.SetSecret(c.API.Secret)
		}
		return true, "the next API call must pass the new secret"
	case "log.level":
		if s.Level == nil {
			return false, "the logger was not built with a level variable (logging.NewLevel)"
		}
		lv, _ := logging.ParseLevel(c.Log.Level)
		s.Level.Set(lv)
		return true, "every logger, now"
	case "auth.publish", "auth.play", "auth.realm":
		s.live.checker.SetUsers(c.Auth.Publish, c.Auth.Play, c.Auth.Realm)
		return true, "checks from now on; sessions already admitted stay"
	case "http.sslCert", "http.sslKey":
		return s.applyCertKey(c)
	case "hub.ring_size":
		s.Hub.SetRingSize(c.Hub.RingSize)
		return true, "streams published from now on; running streams keep their ring"
	}
	for _, r := range s.live.reloaders {
		if claims(r.keys, k) {
			return true, "applied by its feature"
		}
	}
	if why, ok := restartOnly[k]; ok {
		return false, why
	}
	return false, "Berth cannot change it while running"
}

func (s *Server) logReport(rep ReloadReport) {
	restart := 0
	for _, c := range rep.Changes {
		if c.Live {
			s.Log.Info("reload: " + c.String())
		} else {
			restart++
			s.Log.Warn("reload: " + c.String())
		}
	}
	msg := fmt.Sprintf("reload: %d key(s) changed, %d applied live", len(rep.Changes), len(rep.Changes)-restart)
	if restart > 0 {
		s.Log.Warn(msg+fmt.Sprintf(", %d need a restart", restart), "keys", strings.Join(rep.Restart(), " "),
			"fix", "restart Berth (or call /index/api/restartServer) to apply them")
		return
	}
	s.Log.Info(msg)
}

// boundState is the listeners' state (for metrics), read under the lock a
// reload takes to swap listeners.
func (s *Server) boundState() ports.State {
	s.live.mu.RLock()
	defer s.live.mu.RUnlock()
	return s.bound.State()
}

// CurrentConfig is the running config. Reload replaces the Config field
// while handlers run, so code that reads the config after Start (status
// pages, API handlers) calls this instead of reading the field.
func (s *Server) CurrentConfig() *config.Config {
	s.live.mu.RLock()
	defer s.live.mu.RUnlock()
	return s.Config
}
