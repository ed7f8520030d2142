package limits

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Rate is a token bucket per remote IP: each IP may make Burst requests at
// once and PerSecond a second after that. The HTTP API goes through one, so
// a script gone wrong (or an attacker) cannot keep the server busy with
// calls that walk every stream and session.
//
// The zero value lets everything through. Set the rate with Set.
type Rate struct {
	Warn *Warner

	mu             sync.Mutex
	perSecond      float64 // 0 = no limit
	burst          float64
	exemptLoopback bool
	buckets        map[netip.Addr]*bucket
	swept          time.Time
	now            func() time.Time // tests
}

type bucket struct {
	tokens float64
	at     time.Time
}

// Set changes the rate: perSecond requests a second with bursts of burst
// (at least 1), per remote IP; perSecond 0 turns the limit off. Loopback
// peers are exempt when exemptLoopback is set (local tools and a reverse
// proxy on the same machine).
func (r *Rate) Set(perSecond float64, burst int, exemptLoopback bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.perSecond, r.burst, r.exemptLoopback = perSecond, float64(max(burst, 1)), exemptLoopback
}

// Allow takes a token for ip; when none is left it reports how long until
// one is.
func (r *Rate) Allow(ip netip.Addr) (bool, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.perSecond <= 0 || (r.exemptLoopback && ip.IsLoopback()) {
		return true, 0
	}
	now := time.Now()
	if r.now != nil {
		now = r.now()
	}
	if r.buckets == nil {
		r.buckets = map[netip.Addr]*bucket{}
	}
	r.sweep(now)
	b := r.buckets[ip]
	if b == nil {
		b = &bucket{tokens: r.burst, at: now}
		r.buckets[ip] = b
	}
	b.tokens = math.Min(r.burst, b.tokens+now.Sub(b.at).Seconds()*r.perSecond)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / r.perSecond * float64(time.Second))
}

// sweep forgets full buckets once a minute, so the map holds the IPs of
// the last minute, not of the server's life.
func (r *Rate) sweep(now time.Time) {
	if now.Sub(r.swept) < time.Minute {
		return
	}
	r.swept = now
	for ip, b := range r.buckets {
		if r.burst <= b.tokens+now.Sub(b.at).Seconds()*r.perSecond {
			delete(r.buckets, ip)
		}
	}
}

// Handler wraps h: a request over its IP's rate is answered 429 Too Many
// Requests (RFC 6585 section 4) with Retry-After in whole seconds (RFC 9110
// section 10.2.3) and a JSON body in ZLMediaKit's form, and logged
// (rate-limited). name says what is limited in the log line ("api").
func (r *Rate) Handler(name string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ip := RequestIP(req)
		ok, wait := r.Allow(ip)
		if ok {
			h.ServeHTTP(w, req)
			return
		}
		secs := int(math.Ceil(wait.Seconds()))
		r.Warn.Warn("api.max_requests_per_second", name, fmt.Sprintf("%s request from %s over the rate limit; answered 429. Raise [api] max_requests_per_second (or max_request_burst) if this client is legitimate",
			name, ip), "remote_ip", ip.String(), "path", req.URL.Path)
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprintf(w, `{"code":-1,"msg":"too many requests from %s; retry after %d s"}`+"\n", ip, max(secs, 1))
	})
}

// RequestIP is the remote IP of req (its TCP peer; forwarded headers are
// not trusted).
func RequestIP(req *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		host = req.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return ip.Unmap()
}
