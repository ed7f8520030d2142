package ports

import (
	"errors"
	"log/slog"
	"net"
	"time"
)

// AcceptLoop accepts connections on l and hands each to handle until l is
// closed, when it returns net.ErrClosed. Other accept errors (out of file
// descriptors and the like) are logged and retried with a backoff up to 1 s,
// as net/http does, so a burst of clients never stops a server. handle
// returns false when the server is closing; the connection is then closed and
// the loop ends.
func AcceptLoop(l net.Listener, log *slog.Logger, handle func(net.Conn) bool) error {
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return net.ErrClosed
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			log.Warn("accept failed; retrying", "listener", l.Addr().String(), "err", err, "retry_in", backoff.String())
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !handle(c) {
			c.Close()
			return net.ErrClosed
		}
	}
}
