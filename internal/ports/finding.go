package ports

import (
	"fmt"
	"net"
	"strconv"
)

// Finding is a listener that could not be bound, said so a human can act.
type Finding struct {
	Spec    Spec
	Network string // the concrete network that failed: tcp4, tcp6, udp4, udp6
	Addr    string // host:port that failed
	Err     error  // the system error
}

func newFinding(spec Spec, network, host string, port int, err error) *Finding {
	return &Finding{Spec: spec, Network: network, Addr: net.JoinHostPort(host, strconv.Itoa(port)), Err: err}
}

func (f *Finding) Error() string {
	return fmt.Sprintf("%s: cannot listen on %s/%s: %v; set [%s] port to another value",
		f.Spec.Name, f.Addr, f.Spec.Network, f.Err, f.Spec.Section)
}

func (f *Finding) Unwrap() error { return f.Err }
