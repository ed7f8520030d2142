package ports

import (
	"io"
	"log/slog"
	"time"
)

// Shadows lists other sockets that listen on the bound ports and would take
// some of Berth's clients, one human line each. (Filled in by the ports work.)
func Shadows(b *Bound) []string { return nil }

// SelfProbe connects to every bound listener over each loopback family and
// checks that the answer carries this process's instance token. Each failure
// is one human line. (Filled in by the ports work.)
func SelfProbe(b *Bound, instance string, timeout time.Duration) []string { return nil }

// Banner writes the startup banner: per protocol the URLs that work and a
// copy-paste push and play command. (Filled in by the ports work.)
func Banner(w io.Writer, b *Bound, log *slog.Logger) {}
