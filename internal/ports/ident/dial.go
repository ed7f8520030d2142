package ident

import (
	"context"
	"crypto/tls"
	"net"
)

type dialerKey struct{}

type tlsKey struct{}

// WithDialer makes the probes run with ctx dial through d: the self-probe
// passes one that records its own connections' addresses before they
// connect, so the servers can tell them from clients.
func WithDialer(ctx context.Context, d *net.Dialer) context.Context {
	return context.WithValue(ctx, dialerKey{}, d)
}

// WithTLS makes the probes run with ctx speak their protocol over TLS
// (HTTPS, RTSPS, RTMPS). The certificate is not verified: a probe asks who
// answers, and the instance token in the answer says it; whether clients
// trust the certificate is a question for the certificate, not the port.
func WithTLS(ctx context.Context) context.Context {
	return context.WithValue(ctx, tlsKey{}, true)
}

func dial(ctx context.Context, addr string) (net.Conn, error) {
	d, _ := ctx.Value(dialerKey{}).(*net.Dialer)
	if d == nil {
		d = &net.Dialer{}
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil || ctx.Value(tlsKey{}) == nil {
		return c, err
	}
	host, _, _ := net.SplitHostPort(addr)
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, ServerName: host})
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}
