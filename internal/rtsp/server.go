// Package rtsp is Berth's RTSP server (RFC 2326, with what RFC 7826 clients
// send): publish with ANNOUNCE/RECORD and play with DESCRIBE/PLAY, over TCP
// interleaved and UDP, on top of the hub.
package rtsp

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/hub"
)

// Server serves RTSP on listeners it is given.
type Server struct {
	Hub       *hub.Hub
	Log       *slog.Logger
	Auth      *auth.Checker
	AuthBasic bool
	KeepAlive time.Duration
	UDPRange  config.PortRange // server RTP/RTCP pairs for the UDP transport
	Instance  string           // per-process token sent as X-Berth-Instance
	Version   string
}

// Serve accepts connections on l until Shutdown.
func (s *Server) Serve(l net.Listener) error { return nil }

// Shutdown closes listeners, then ends every session.
func (s *Server) Shutdown(ctx context.Context) error { return nil }
