package ident

import (
	"context"
	"net"
)

type dialerKey struct{}

// WithDialer makes the probes run with ctx dial through d: the self-probe
// passes one that records its own connections' addresses before they
// connect, so the servers can tell them from clients.
func WithDialer(ctx context.Context, d *net.Dialer) context.Context {
	return context.WithValue(ctx, dialerKey{}, d)
}

func dial(ctx context.Context, addr string) (net.Conn, error) {
	d, _ := ctx.Value(dialerKey{}).(*net.Dialer)
	if d == nil {
		d = &net.Dialer{}
	}
	return d.DialContext(ctx, "tcp", addr)
}
