package server

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/mpegts"
	"github.com/berthmedia/berth/internal/ports"
	"github.com/berthmedia/berth/internal/srt"
)

func init() {
	for k, why := range map[string]string{
		"srt.port":       "gosrt binds its socket at start (docs/srt.md)",
		"srt.timeoutSec": "the SRT listener takes its settings when it starts",
		"srt.latencyMul": "the SRT listener takes its settings when it starts",
		"srt.passPhrase": "the SRT listener takes its settings when it starts",
		"srt.pbkeylen":   "the SRT listener takes its settings when it starts",
	} {
		restartOnly[k] = why
	}
	secretKeys["srt.passPhrase"] = true
}

// srtRTT is the round trip [srt] latencyMul multiplies: Berth cannot know a
// caller's RTT before its handshake, when gosrt fixes the latency, so it
// assumes a typical internet one. latencyMul=4 (ZLMediaKit's default) is
// then 120 ms, SRT's own default.
const srtRTT = 30 * time.Millisecond

// startSRT serves SRT on the UDP socket ports bound for [srt] port.
// gosrt cannot take a bound socket (its Listen binds its own), so the
// socket ports bound, which proved the port free and named any holder, is
// closed and gosrt binds the same address at once. On a wildcard that
// ports bound for both families ("::"), gosrt binds one dual-stack socket
// on [::] (IPv4 callers arrive as mapped addresses): two gosrt listeners on
// one port would split a caller's handshakes between them.
func (s *Server) startSRT(bound *ports.Bound, checker *auth.Checker) error {
	pc := bound.UDP["srt"]
	if pc == nil {
		return nil
	}
	var addrs []string // to try, in order
	for _, c := range pc.Conns() {
		if a := c.LocalAddr().(*net.UDPAddr); a.IP.To4() == nil && a.IP.IsUnspecified() && len(pc.Conns()) > 1 {
			addrs = append([]string{net.JoinHostPort("::", strconv.Itoa(a.Port))}, addrs...)
		} else {
			addrs = append(addrs, a.String())
		}
	}
	cfg := s.Config.SRT
	ts := s.tsOpenerSRT()
	s.srt = &srt.Server{Hub: s.Hub, Log: s.Log.With("proto", "srt"), Auth: checker, TS: ts, StreamWait: s.streamWait(),
		Timeout: time.Duration(cfg.TimeoutSec) * time.Second, Latency: time.Duration(cfg.LatencyMul) * srtRTT,
		Passphrase: cfg.PassPhrase, PBKeyLen: cfg.PBKeyLen, Register: s.registerSRT,
		Conns: &s.guard.conns} // SRT sessions count against the connection caps (limits.go)
	pc.Close()
	var err error
	for _, addr := range addrs {
		if err = s.srt.Listen(addr); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("[srt] port: %w (another program may have taken port %d/udp in the moment between Berth's check and gosrt's bind; start again)", err, pc.Port())
	}
	s.serve("srt", s.srt.Serve)
	return nil
}

// tsOpenerSRT is the shared TS muxer SRT players read: HTTP-TS's, or, with
// the HTTP port off, SRT's own.
func (s *Server) tsOpenerSRT() srt.TSOpener {
	if s.ts != nil {
		return s.ts.Muxers.Open
	}
	ms := &mpegts.Muxers{Log: s.Log.With("component", "mpegts"),
		StopDelay: min(time.Duration(s.Config.General.StreamNoneReaderDelayMS)*time.Millisecond, 5*time.Second)}
	return ms.Open
}

// SRT returns the SRT server (nil when [srt] port is 0), for tests.
func (s *Server) SRT() *srt.Server { return s.srt }
