package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"
)

// TLS inputs: the plain inputs of RTSP, RTMP and the HTTP port over a TLS
// connection (RTSPS, RTMPS, HTTPS), and damaged ClientHellos (RFC 8446
// section 4.1.2) to each TLS port.

// tlsTargets are the TLS listeners' targets: each plain input runs on a
// copy of the run whose address is the TLS one and whose dial does TLS.
func (c *chaosRun) tlsTargets() []chaosTarget {
	var t []chaosTarget
	over := func(addr string, set func(*ChaosConfig), kinds map[string]chaosInput) {
		if addr == "" {
			return
		}
		tc := *c
		tc.tls = true
		set(&tc.cfg)
		for _, name := range slices.Sorted(maps.Keys(kinds)) {
			f := kinds[name]
			t = append(t, chaosTarget{name, func(ctx context.Context, _ *chaosRun, r *rand.Rand) error { return f(ctx, &tc, r) }})
		}
	}
	over(c.cfg.RTSPS, func(cf *ChaosConfig) { cf.RTSP = cf.RTSPS }, map[string]chaosInput{
		"rtsps-request": chaosRTSPRequest, "rtsps-interleaved": chaosRTSPInterleaved})
	over(c.cfg.RTMPS, func(cf *ChaosConfig) { cf.RTMP = cf.RTMPS }, map[string]chaosInput{
		"rtmps-handshake": chaosRTMPHandshake, "rtmps-chunks": chaosRTMPChunks})
	over(c.cfg.HTTPS, func(cf *ChaosConfig) { cf.HTTP = cf.HTTPS }, map[string]chaosInput{
		"https-request": chaosHTTPRequest, "wss": chaosWebSocket, "https-api": chaosAPI})
	var addrs []string
	for _, a := range []string{c.cfg.RTSPS, c.cfg.RTMPS, c.cfg.HTTPS} {
		if a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) > 0 {
		t = append(t, chaosTarget{"tls-hello", func(ctx context.Context, _ *chaosRun, r *rand.Rand) error {
			conn, err := dial(ctx, addrs[r.IntN(len(addrs))])
			if err != nil {
				return err
			}
			return exchange(ctx, conn, mutate(r, clientHello()), 200*time.Millisecond)
		}})
	}
	return t
}

var (
	helloOnce  sync.Once
	helloBytes []byte
)

// clientHello is the ClientHello crypto/tls sends, captured once.
func clientHello() []byte {
	helloOnce.Do(func() {
		cc := &captureConn{}
		tls.Client(cc, &tls.Config{ServerName: "localhost", InsecureSkipVerify: true}).Handshake()
		helloBytes = cc.buf
	})
	return helloBytes
}

// captureConn keeps what is written to it and fails every read, so a TLS
// client's handshake stops after its first flight.
type captureConn struct{ buf []byte }

var errCaptured = errors.New("captured")

func (c *captureConn) Write(b []byte) (int, error)      { c.buf = append(c.buf, b...); return len(b), nil }
func (c *captureConn) Read([]byte) (int, error)         { return 0, errCaptured }
func (c *captureConn) Close() error                     { return nil }
func (c *captureConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *captureConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *captureConn) SetDeadline(time.Time) error      { return nil }
func (c *captureConn) SetReadDeadline(time.Time) error  { return nil }
func (c *captureConn) SetWriteDeadline(time.Time) error { return nil }
