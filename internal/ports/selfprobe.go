package ports

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berthmedia/berth/internal/ports/ident"
)

// probeResult is one self-probe: a listener reached through one address.
type probeResult struct {
	host   string
	served bool   // Berth listens on this address family
	ok     bool   // Berth's own instance answered
	line   string // the error line when not ok ("" when nothing answered an unserved family)
}

// identifiable lists the listeners a probe can ask "who are you".
func identifiable(s Spec) bool {
	switch s.Name {
	case "rtsp", "rtmp", "http", "rtsps", "rtmps", "https":
		return s.Network == "tcp"
	}
	return false
}

// SelfProbe connects to every bound listener over each loopback family and
// checks that the answer carries this process's instance token. It also
// knocks on the loopback of a family Berth does not serve (listen_ip
// 0.0.0.0 and ::1): "localhost" often resolves there first. Each failure is
// one human line naming what answered instead.
func SelfProbe(b *Bound, instance string, timeout time.Duration) []string {
	type job struct {
		spec Spec
		host string
		idx  int
	}
	var jobs []job
	for _, s := range b.Specs {
		if !identifiable(s) {
			continue
		}
		hosts := clientHosts(s)
		if s.Host == "0.0.0.0" && hasIPv6Loopback() {
			hosts = append(hosts, "::1")
		}
		for _, h := range hosts {
			jobs = append(jobs, job{s, h, len(jobs)})
		}
	}
	results := make([]probeResult, len(jobs))
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[j.idx] = probeOne(j.spec, j.host, instance, timeout)
		}()
	}
	wg.Wait()
	probed := map[string][]probeResult{}
	probes := make([]ProbeState, 0, len(jobs))
	var lines []string
	for i, j := range jobs {
		r := results[i]
		probed[j.spec.Name] = append(probed[j.spec.Name], r)
		probes = append(probes, ProbeState{Name: j.spec.Name, Addr: net.JoinHostPort(r.host, strconv.Itoa(j.spec.Port)),
			Served: r.served, OK: r.line == "", Problem: r.line})
		if r.line != "" {
			lines = append(lines, r.line)
		}
	}
	b.setProbed(probed, probes)
	return lines
}

func probeOne(s Spec, host, instance string, timeout time.Duration) probeResult {
	addr := net.JoinHostPort(host, strconv.Itoa(s.Port))
	r := probeResult{host: host, served: serves(s, host)}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var mine probeAddrs
	defer mine.forget()
	id, err := Identify(ident.WithDialer(ctx, probeDialer(&mine)), s.Name, addr)
	switch {
	case err == nil && id.Instance == instance:
		r.ok = true
		return r
	case !r.served && err != nil && errors.Is(err, syscall.ECONNREFUSED):
		return r // nothing there: a client falls back to the family Berth serves
	}
	what := describeAnswer(id, err, s.Name, timeout)
	holder := ""
	if hs, _ := Holders("tcp", s.Port); len(hs) > 0 {
		ip := net.ParseIP(host)
		for _, h := range hs {
			if h.Proc != nil && !h.Proc.Self() && Conflicts(ip, h) {
				holder = " from " + h.Proc.Describe(s.Port) + " on " + h.Addr()
				break
			}
		}
	}
	if r.served {
		if err != nil && id == nil && holder == "" {
			r.line = fmt.Sprintf("%s: self-probe of %s failed: %s; Berth listens there but did not answer as itself", s.Name, addr, what)
		} else {
			r.line = fmt.Sprintf("%s: self-probe of %s reached %s%s, not this Berth; clients connecting to %s reach it, not Berth", s.Name, addr, what, holder, host)
		}
	} else {
		r.line = fmt.Sprintf("%s: %s answers with %s%s, not Berth (which listens on %s only); clients connecting to %s (localhost may resolve to it) reach it, not Berth", s.Name, addr, what, holder, familyName(s), host)
	}
	return r
}

// serves reports whether spec's sockets cover host.
func serves(s Spec, host string) bool {
	ip := net.ParseIP(host)
	switch {
	case s.Host == "0.0.0.0":
		return ip.To4() != nil
	case s.Wildcard():
		return true
	}
	return net.ParseIP(s.Host).Equal(ip)
}

func familyName(s Spec) string {
	if s.Host == "0.0.0.0" {
		return "IPv4"
	}
	return s.Host
}

// overTLS maps the TLS listeners to the protocol they carry.
var overTLS = map[string]string{"https": "http", "rtsps": "rtsp", "rtmps": "rtmp"}

// Identify asks the listener at addr who it is in protocol proto ("rtsp",
// "rtmp", "http", and over TLS "rtsps", "rtmps", "https"). id is non-nil
// when something answered, even in another protocol.
func Identify(ctx context.Context, proto, addr string) (*ident.Identity, error) {
	if plain, ok := overTLS[proto]; ok {
		ctx, proto = ident.WithTLS(ctx), plain
	}
	switch proto {
	case "rtsp":
		r, err := ident.RTSPOptions(ctx, addr)
		if err != nil {
			return nil, err
		}
		return &r.Identity, nil
	case "http":
		r, _, err := ident.HTTPHealth(ctx, addr)
		if err != nil {
			return nil, err
		}
		return &r.Identity, nil
	case "rtmp":
		r, err := ident.RTMPIdentify(ctx, addr, "live")
		if err != nil {
			return nil, err
		}
		return &r.Identity, nil
	}
	return nil, fmt.Errorf("no probe for %s", proto)
}

func describeAnswer(id *ident.Identity, err error, proto string, timeout time.Duration) string {
	if id != nil {
		if id.IsBerth() {
			return "another Berth " + strings.TrimPrefix(id.Describe(), "Berth ")
		}
		return id.Describe()
	}
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, ident.ErrNoAnswer) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return fmt.Sprintf("a listener that accepted the connection but sent no %s reply within %v", strings.ToUpper(proto), timeout)
	}
	return err.Error()
}
