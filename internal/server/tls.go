package server

import (
	"crypto/tls"
	"fmt"
	"log"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/berthmedia/berth/internal/certs"
	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/fanout"
	"github.com/berthmedia/berth/internal/ports"
)

// TLS listeners (ZLMediaKit's sslport keys): HTTPS serves the HTTP port's
// handler, RTSPS and RTMPS the RTSP and RTMP servers, each over TLS with
// the one certificate in s.certs. ports binds them as plain TCP like every
// listener (findings, doctor, banner); the TLS layer goes on where a
// protocol server is handed its listener. Players over TLS are served by a
// goroutine each: the event-driven writev (internal/fanout) writes raw
// sockets, and a *tls.Conn is not one, so fanout.NewWriter declines it.

// tlsOf maps each TLS listener to the plain listener whose server it uses.
var tlsOf = map[string]string{"https": "http", "rtsps": "rtsp", "rtmps": "rtmp"}

// tlsSpecs are the TLS listeners of cfg: none without a certificate, so
// ZLMediaKit's config.ini ([http] sslport=443) opens nothing by itself.
func tlsSpecs(cfg *config.Config) []ports.Spec {
	if !cfg.TLS.On() {
		return nil
	}
	var out []ports.Spec
	for _, l := range []struct {
		name, section string
		port          int
	}{{"rtsps", "rtsp", cfg.TLS.RTSPPort}, {"rtmps", "rtmp", cfg.TLS.RTMPPort}, {"https", "http", cfg.TLS.HTTPPort}} {
		if l.port > 0 {
			out = append(out, ports.Spec{Name: l.name, Section: l.section, Key: "sslport", Flag: "--" + l.section + "-sslport",
				Network: "tcp", Host: cfg.General.ListenIP, Port: l.port})
		}
	}
	return out
}

// loadCert loads the certificate before anything binds: a TLS listener
// asked for with a certificate Berth cannot use refuses the start (a
// *certs.Error, exit 2), as a port that cannot be used does, rather than
// run without the encryption the config asked for.
func (s *Server) loadCert(cfg *config.Config) error {
	specs := tlsSpecs(cfg)
	t := cfg.TLS
	switch {
	case !t.On() && t.Key != "":
		s.Log.Warn("tls: [http] sslKey is set but sslCert is not; no TLS listener opens", "key", t.Key,
			"fix", "set [http] sslCert (flag -s) to the certificate of that key")
		return nil
	case !t.On():
		if t.RTSPPort > 0 || t.RTMPPort > 0 || (t.HTTPPort > 0 && t.HTTPPort != config.Default().TLS.HTTPPort) {
			// Said once, at info: ZLMediaKit's shipped config.ini has sslport=443.
			s.Log.Info("tls: the sslport listeners are off: no certificate is configured",
				"fix", "give one with -s FILE.pem or [http] sslCert; a self-signed one for a try: "+certs.SelfSigned)
		}
		return nil
	case len(specs) == 0:
		s.Log.Info("tls: a certificate is configured but every sslport is 0; nothing serves it", "cert", t.Cert)
		return nil
	}
	c, err := certs.Load(t.Cert, t.Key)
	if err != nil {
		return err
	}
	s.certs.Set(c)
	s.Log.Info("tls: certificate loaded", "file", t.Cert, "names", c.Names, "valid_until", c.NotAfter.UTC().Format(time.DateOnly))
	if p := c.Problem(time.Now()); p != "" {
		s.Log.Warn("tls: " + p)
	}
	return nil
}

// overTLS is l with a TLS layer serving the current certificate; alpn is
// the protocol it names in ALPN.
func (s *Server) overTLS(l net.Listener, alpn ...string) net.Listener {
	return tls.NewListener(l, s.certs.Config(alpn...))
}

// serveTLS hands each bound TLS listener to its protocol's server; Start
// calls it once the plain servers exist (a server exists when its plain
// listener or its TLS one is on).
func (s *Server) serveTLS(b *ports.Bound) {
	for name := range tlsOf {
		if l := b.TCP[name]; l != nil {
			s.serveTLSListener(name, l)
		}
	}
}

func (s *Server) serveTLSListener(name string, l net.Listener) {
	switch name {
	case "https":
		// A SealConn under each TLS layer lets its players be event-driven
		// (fanout.Writer: the TLS layer seals a batch into memory).
		tl := s.overTLS(fanout.SealListener(l), "http/1.1")
		s.serve(name, func() error { return s.http.Serve(tl) })
	case "rtsps":
		tl := s.overTLS(fanout.SealListener(l))
		s.serve(name, func() error { return s.rtsp.Serve(tl) })
	case "rtmps":
		tl := s.overTLS(fanout.SealListener(l))
		s.serve(name, func() error { return s.rtmp.Serve(tl) })
	}
}

// reloadCert reads the certificate of newCfg again when TLS runs: a
// changed path, or the same path holding a renewed certificate (certbot's
// deploy hook sends SIGHUP). nil: it stays as it is. A certificate that
// does not load fails the reload, and nothing changes.
func (s *Server) reloadCert(newCfg *config.Config) (*certs.Cert, error) {
	cur := s.certs.Get()
	if cur == nil || !newCfg.TLS.On() {
		return nil, nil // TLS was off at start, or is turned off: applyKey says what that needs
	}
	c, err := certs.Load(newCfg.TLS.Cert, newCfg.TLS.Key)
	if err != nil {
		return nil, fmt.Errorf("reload: %w; the running config and certificate stay", err)
	}
	if c.Sum == cur.Sum && c.CertFile == cur.CertFile && c.KeyFile == cur.KeyFile {
		return nil, nil
	}
	return c, nil
}

// applyCert installs c (from reloadCert) and says so in the report: under
// sslCert's key when that key changed, else as a renewal of the same file.
func (s *Server) applyCert(c *certs.Cert, changed []string, rep *ReloadReport) {
	if c == nil {
		return
	}
	s.certs.Set(c)
	if p := c.Problem(time.Now()); p != "" {
		s.Log.Warn("tls: " + p)
	}
	for _, k := range changed {
		if k == "http.sslCert" || k == "http.sslKey" {
			return // applyKey reports it
		}
	}
	rep.Changes = append(rep.Changes, Change{Key: "http.sslCert", Old: c.CertFile, New: c.CertFile, Live: true,
		Note: "the file holds a new certificate; " + certNote(c)})
}

func certNote(c *certs.Cert) string {
	return "TLS handshakes from now on get the certificate valid until " + c.NotAfter.UTC().Format(time.DateOnly) +
		"; connections made keep theirs"
}

// applyCertKey is applyKey for [http] sslCert and sslKey.
func (s *Server) applyCertKey(c *config.Config) (live bool, note string) {
	cur := s.certs.Get()
	switch {
	case cur == nil && c.TLS.On():
		return false, "no TLS listener runs (there was no certificate at start); turning them on needs a restart"
	case cur == nil:
		return true, "no TLS listener runs"
	case !c.TLS.On():
		return false, "the TLS listeners keep serving the certificate they have until a restart turns them off"
	}
	return true, certNote(cur)
}

// tlsPortOf is portOf for the TLS listeners: 0 without a certificate.
func tlsPortOf(c *config.Config, name string) int {
	for _, sp := range tlsSpecs(c) {
		if sp.Name == name {
			return sp.Port
		}
	}
	return 0
}

// httpErrorLog is the HTTP server's error log: a failed TLS handshake (a
// scanner, a client that does not trust the certificate, plain HTTP sent
// to the HTTPS port) is the client's problem and goes at debug; anything
// else net/http reports goes at warn, as it did on stderr.
func (s *Server) httpErrorLog() *log.Logger {
	return log.New(httpErrorWriter{s.Log.With("component", "http")}, "", 0)
}

type httpErrorWriter struct{ log *slog.Logger }

func (w httpErrorWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if strings.Contains(msg, "TLS handshake error") {
		w.log.Debug(msg)
	} else {
		w.log.Warn(msg)
	}
	return len(p), nil
}

// CheckCert is what a start would say about cfg's certificate, for berth
// doctor: err when a TLS listener is configured and the certificate cannot
// be used (a start is refused), warn when it loads but clients that verify
// it will refuse it.
func CheckCert(cfg *config.Config) (warn string, err error) {
	if len(tlsSpecs(cfg)) == 0 {
		return "", nil
	}
	c, err := certs.Load(cfg.TLS.Cert, cfg.TLS.Key)
	if err != nil {
		return "", err
	}
	return c.Problem(time.Now()), nil
}
