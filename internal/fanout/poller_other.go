//go:build !linux

package fanout

import "net"

// Poller is Linux-only for now: elsewhere Watch reports false and servers
// keep a goroutine per connection waiting in Read.
type Poller struct{}

// Watch is a socket's registration with a Poller.
type Watch struct{}

// Watch reports false: no poller here.
func (p *Poller) Watch(nc net.Conn, ready func()) (*Watch, bool) { return nil, false }

// Arm is never called where Watch reports false.
func (w *Watch) Arm() {}

// Stop is never called where Watch reports false.
func (w *Watch) Stop() {}

// Check is never called where Watch reports false.
func (w *Watch) Check() {}

// Close does nothing.
func (p *Poller) Close() {}

// Watching reports 0.
func (p *Poller) Watching() int { return 0 }
