package fmp4

import (
	"context"
	"net"
)

type connKey struct{}

// ConnContext is for http.Server.ConnContext: it keeps each request's
// connection in its context, so a player's hub.Origin names the
// connection's session registry id (the API lists players by it).
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// connID is the registry id of the request's connection, "" when the
// server did not set ConnContext or the connection is not registered.
func connID(ctx context.Context) string {
	if c, ok := ctx.Value(connKey{}).(interface{ ID() string }); ok {
		return c.ID()
	}
	return ""
}
