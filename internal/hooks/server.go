package hooks

import (
	"context"
	"sync"
	"time"
)

// ServerStarted sends on_server_started: the body is the whole config,
// "section.key": "value", as ZLMediaKit sends its ini.
func (c *Client) ServerStarted() {
	st := c.settings()
	body := make(map[string]any, len(st.all))
	for k, v := range st.all {
		body[k] = v
	}
	c.Notify("on_server_started", body, nil)
}

// ServerExited sends on_server_exited (an empty body) and waits for it, at
// most ctx or timeoutSec: the process is going away, so it is one attempt
// outside the queue.
func (c *Client) ServerExited(ctx context.Context) {
	st := c.settings()
	u := st.url("on_server_exited")
	if u == "" {
		return
	}
	if _, _, err := c.post(ctx, st, "on_server_exited", u, map[string]any{}); err != nil {
		c.Log.Warn("web hook failed", "hook", "on_server_exited", "url", u, "err", err)
	}
}

// Keepalive sends on_server_keepalive every alive_interval with data()'s
// statistics as its "data" until stop is called. The interval is read
// again after every call, so a reload applies to the next one.
func (c *Client) Keepalive(data func() map[string]any) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			t := time.NewTimer(c.settings().aliveInterval)
			select {
			case <-done:
				t.Stop()
				return
			case <-c.stop:
				t.Stop()
				return
			case <-t.C:
			}
			if c.Enabled("on_server_keepalive") {
				c.Notify("on_server_keepalive", map[string]any{"data": data()}, nil)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		<-finished
	}
}

// RTPServerTimeout sends on_rtp_server_timeout for a port opened with
// openRtpServer whose stream went silent.
func (c *Client) RTPServerTimeout(localPort int, streamID string, tcpMode int, ssrc uint32) {
	c.Notify("on_rtp_server_timeout", map[string]any{"local_port": localPort, "stream_id": streamID,
		"tcp_mode": tcpMode, "re_use_port": false, "ssrc": ssrc}, nil)
}
