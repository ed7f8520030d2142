package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"time"
)

// TLS schemes (rtsps://, rtmps://, https://): after the TCP connect, the
// probe shakes hands as a verifying client would, so a certificate clients
// refuse is named as that, not as "not an RTSP server". The probe then goes
// on without verifying, since ffmpeg by default does not verify either and
// whether the stream plays is still worth saying.

// tlsSchemes maps each TLS scheme to the protocol it carries.
var tlsSchemes = map[string]string{"rtsps": "rtsp", "rtmps": "rtmp", "https": "http"}

// handshake runs TLS over conn, verifying the certificate for the URL's
// host. It returns the connection to go on with (nil when TLS failed for
// another reason than trust) and whether the certificate is trusted.
func (p *prober) handshake(ctx context.Context, conn net.Conn) (net.Conn, bool) {
	hctx, cancel := context.WithTimeout(ctx, p.opt.StepTimeout)
	defer cancel()
	start := time.Now()
	tc := tls.Client(conn, &tls.Config{ServerName: p.host})
	err := tc.HandshakeContext(hctx)
	if err == nil {
		st := tc.ConnectionState()
		p.say("tls", "%s, certificate for %s trusted (valid until %s), in %v", tls.VersionName(st.Version),
			st.PeerCertificates[0].Subject.CommonName, st.PeerCertificates[0].NotAfter.UTC().Format(time.DateOnly),
			time.Since(start).Round(100*time.Microsecond))
		return tc, true
	}
	conn.Close()
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		p.say("tls", "FAIL: TLS handshake with %s: %v", p.addr, err)
		p.fix("check that port %d serves %s over TLS (%s); the plain protocol has its own port", p.port, p.proto, p.u.Scheme)
		return nil, false
	}
	p.say("tls", "WARN: clients that verify certificates (browsers, curl, OBS) refuse this one: %v", verr.Err)
	p.fix("serve a certificate from a CA they trust (Let's Encrypt) for %s; for a test, trust this one (curl --cacert FILE) or use ffmpeg/ffplay, which do not verify by default", p.host)
	d := net.Dialer{Timeout: p.opt.StepTimeout}
	c, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		p.say("connect", "FAIL: %s/tcp again: %v", p.addr, err)
		return nil, false
	}
	tc = tls.Client(c, &tls.Config{ServerName: p.host, InsecureSkipVerify: true})
	if err := tc.HandshakeContext(hctx); err != nil {
		c.Close()
		p.say("tls", "FAIL: TLS handshake without verifying: %v", err)
		return nil, false
	}
	return tc, false
}
