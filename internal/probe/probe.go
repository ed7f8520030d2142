// Package probe is `berth probe URL`: what a user runs when ffmpeg cannot
// reach a stream. It walks the path a client takes (name resolution, TCP
// connect, who answers, whether the stream exists) and says at each step
// what is wrong and how to fix it. When the URL's port is closed or answered
// by something else while a Berth runs on this host on another port, it
// prints the URL that works.
package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/bluenviron/gortsplib/v5/pkg/base"

	"github.com/berthmedia/berth/internal/ports"
	"github.com/berthmedia/berth/internal/ports/ident"
)

// Exit codes of berth probe.
const (
	ExitPlayable    = 0 // the stream answered and can be played
	ExitNotPlayable = 1 // something on the way is wrong; the output says what
	ExitUsage       = 2 // not a URL berth probe understands
)

// Options tune a probe.
type Options struct {
	// StepTimeout bounds each network step (resolve, connect, request).
	StepTimeout time.Duration
}

// prober carries one run's state and output.
type prober struct {
	out     io.Writer
	opt     Options
	u       *url.URL
	proto   string // rtsp, rtmp, http
	tls     bool   // rtsps, rtmps, https: proto over TLS (tls.go)
	trusted bool   // the TLS certificate verified
	host    string
	port    int
	addr    string // the address that connected
	local   bool   // the host resolves to this machine
	holders []ports.Socket
}

// Run probes rawURL, writes a report to out and returns the exit code.
func Run(ctx context.Context, rawURL string, out io.Writer, opt Options) int {
	if opt.StepTimeout == 0 {
		opt.StepTimeout = 3 * time.Second
	}
	p := &prober{out: out, opt: opt}
	if err := p.parse(rawURL); err != nil {
		fmt.Fprintf(out, "berth probe: %v\n", err)
		return ExitUsage
	}
	fmt.Fprintf(out, "probing %s\n", redact(p.u))
	if p.step(ctx) {
		return ExitPlayable
	}
	return ExitNotPlayable
}

func (p *prober) say(step, format string, a ...any) {
	fmt.Fprintf(p.out, "  %-9s %s\n", step, fmt.Sprintf(format, a...))
}

func (p *prober) fix(format string, a ...any) {
	fmt.Fprintf(p.out, "  %-9s %s\n", "fix:", fmt.Sprintf(format, a...))
}

func (p *prober) parse(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not a URL; give one like rtsp://127.0.0.1:8554/live/stream", raw)
	}
	def := map[string]int{"rtsp": 554, "rtsps": 322, "rtmp": 1935, "rtmps": 443, "http": 80, "https": 443}
	dp, ok := def[u.Scheme]
	if !ok {
		return fmt.Errorf("scheme %q is not one berth probe speaks (rtsp://, rtmp://, http:// and their TLS forms rtsps://, rtmps://, https://)", u.Scheme)
	}
	p.u = u
	p.proto = u.Scheme
	if plain, ok := tlsSchemes[u.Scheme]; ok {
		p.proto, p.tls = plain, true
	}
	p.host = u.Hostname()
	p.port = dp
	if ps := u.Port(); ps != "" {
		if p.port, err = strconv.Atoi(ps); err != nil || p.port <= 0 || p.port > 65535 {
			return fmt.Errorf("port %q in %s is not a port", ps, raw)
		}
	}
	return nil
}

// step runs the steps in order and reports whether the stream is playable.
func (p *prober) step(ctx context.Context) bool {
	ips, ok := p.resolve(ctx)
	if !ok {
		return false
	}
	conn, ok := p.connect(ctx, ips)
	if !ok {
		p.suggestLocalBerth(ctx, "")
		return false
	}
	if p.tls {
		if conn, p.trusted = p.handshake(ctx, conn); conn == nil {
			p.suggestLocalBerth(ctx, "")
			return false
		}
	}
	switch p.proto {
	case "rtsp":
		return p.rtsp(ctx, conn)
	case "rtmp":
		return p.rtmp(ctx, conn)
	}
	conn.Close()
	return p.http(ctx)
}

func (p *prober) resolve(ctx context.Context) ([]net.IP, bool) {
	if ip := net.ParseIP(p.host); ip != nil {
		p.local = isLocal(ip)
		return []net.IP{ip}, true
	}
	ctx, cancel := context.WithTimeout(ctx, p.opt.StepTimeout)
	defer cancel()
	as, err := net.DefaultResolver.LookupIPAddr(ctx, p.host)
	if err != nil || len(as) == 0 {
		p.say("resolve", "FAIL: cannot resolve %q: %v", p.host, err)
		p.fix("check the host name, or use the server's IP address")
		return nil, false
	}
	var ips []net.IP
	var strs []string
	for _, a := range as {
		ips = append(ips, a.IP)
		strs = append(strs, a.IP.String())
		if isLocal(a.IP) {
			p.local = true
		}
	}
	p.say("resolve", "%s -> %s", p.host, strings.Join(strs, ", "))
	return ips, true
}

// connect tries each address like a client does, reporting each failure.
func (p *prober) connect(ctx context.Context, ips []net.IP) (net.Conn, bool) {
	for _, ip := range ips {
		addr := net.JoinHostPort(ip.String(), strconv.Itoa(p.port))
		d := net.Dialer{Timeout: p.opt.StepTimeout}
		start := time.Now()
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			p.addr = addr
			p.say("connect", "%s/tcp: connected in %v", addr, time.Since(start).Round(100*time.Microsecond))
			return c, true
		}
		var ne net.Error
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			p.say("connect", "FAIL: %s/tcp: connection refused: nothing listens on port %d there", addr, p.port)
		case errors.As(err, &ne) && ne.Timeout():
			p.say("connect", "FAIL: %s/tcp: no answer within %v: a firewall drops the packets, or the host is wrong or down", addr, p.opt.StepTimeout)
		default:
			p.say("connect", "FAIL: %s/tcp: %v", addr, err)
		}
	}
	if p.local {
		p.fix("start Berth (`berth -c config.ini`), or check the port: `berth doctor` lists what Berth would listen on")
	} else {
		p.fix("check that the server runs and listens on port %d, and that no firewall between here and %s drops it", p.port, p.host)
	}
	return nil, false
}

// whoHolds names the local process listening on the probed port.
func (p *prober) whoHolds() string {
	if !p.local {
		return ""
	}
	hs, _ := ports.Holders("tcp", p.port)
	ip := net.ParseIP(hostOf(p.addr))
	for _, h := range hs {
		if h.Proc != nil && (ip == nil || ports.Conflicts(ip, h)) {
			return h.Proc.Describe(p.port)
		}
	}
	return ""
}

func (p *prober) serverLine(id *ident.Identity) {
	who := p.whoHolds()
	if who != "" {
		who = ", " + who
	}
	p.say("server", "%s%s", id.Describe(), who)
}

// notThisProtocol reports a peer that does not speak the URL's protocol.
func (p *prober) notThisProtocol(ctx context.Context, what string) {
	if p.proto != "http" {
		// Ask in HTTP, the protocol most often found on a wrong port; an
		// RTSP server answers that too, with an RTSP status line.
		hctx, cancel := context.WithTimeout(ctx, p.opt.StepTimeout)
		r, err := ident.HTTPHead(hctx, p.addr)
		cancel()
		if err == nil && r.Protocol != "" && r.Protocol != strings.ToUpper(p.proto) {
			what = describeForeign(&r.Identity) + " (to GET /); to " + strings.ToUpper(p.proto) + " " + what
		}
	}
	who := p.whoHolds()
	if who != "" {
		who = "; the listener is " + who
	}
	p.say("server", "FAIL: not an %s server: %s%s", strings.ToUpper(p.proto), what, who)
	p.fix("use the port of your %s server; this one serves something else", strings.ToUpper(p.proto))
	p.suggestLocalBerth(ctx, "")
}

func (p *prober) rtsp(ctx context.Context, conn net.Conn) bool {
	defer conn.Close()
	ctx1, cancel := context.WithTimeout(ctx, p.opt.StepTimeout)
	defer cancel()
	clean := *p.u
	clean.User = nil
	r, err := ident.RTSPRequest(ctx1, conn, "OPTIONS", clean.String(), 1, nil)
	if err != nil {
		if errors.Is(err, ident.ErrNoAnswer) {
			p.notThisProtocol(ctx, fmt.Sprintf("no reply to OPTIONS within %v", p.opt.StepTimeout))
		} else {
			p.say("server", "FAIL: OPTIONS failed: %v", err)
		}
		return false
	}
	if r.Protocol != "RTSP" {
		p.notThisProtocol(ctx, "it answered "+describeForeign(&r.Identity))
		return false
	}
	p.serverLine(&r.Identity)
	if !r.IsBerth() {
		p.suggestLocalBerth(ctx, r.Instance)
	}
	ctx2, cancel2 := context.WithTimeout(ctx, p.opt.StepTimeout)
	defer cancel2()
	hdr := map[string]string{"Accept": "application/sdp"}
	d, err := ident.RTSPRequest(ctx2, conn, "DESCRIBE", clean.String(), 2, hdr)
	if err == nil && d.Code == 401 && p.u.User != nil {
		if a := authorization(d.WWWAuth, p.u, "DESCRIBE", clean.String()); a != "" {
			hdr["Authorization"] = a
			d, err = ident.RTSPRequest(ctx2, conn, "DESCRIBE", clean.String(), 3, hdr)
		}
	}
	if err != nil {
		p.say("stream", "FAIL: DESCRIBE got no reply: %v", err)
		return false
	}
	path := p.u.Path
	switch {
	case d.Code == 200:
		p.say("stream", "DESCRIBE %s: %s", d.Status, summarizeSDP(d.Body))
		p.say("play", "ffplay -rtsp_transport tcp %s", redact(p.u))
		return true
	case d.Code == 404:
		p.say("stream", "FAIL: DESCRIBE %s: no stream at %s on this server (nothing publishes it now)", d.Status, path)
		p.fix("publish first, e.g. `ffmpeg -re -i input.mp4 -c copy -f rtsp -rtsp_transport tcp %s`, or check the path (app/stream)", redact(p.u))
	case d.Code == 401:
		if p.u.User == nil {
			p.say("stream", "FAIL: DESCRIBE %s: the server wants a user and password", d.Status)
			p.fix("put them in the URL: rtsp://user:password@%s%s", p.u.Host, path)
		} else {
			p.say("stream", "FAIL: DESCRIBE %s: the server refused the user and password in the URL", d.Status)
			p.fix("check the credentials ([auth] play in Berth's config)")
		}
	default:
		p.say("stream", "FAIL: DESCRIBE %s", d.Status)
	}
	return false
}

// authorization answers an RTSP auth challenge with the URL's credentials.
func authorization(wwwAuth []string, u *url.URL, method, rawURL string) string {
	pass, _ := u.User.Password()
	se := auth.Sender{WWWAuth: base.HeaderValue(wwwAuth), User: u.User.Username(), Pass: pass}
	if se.Initialize() != nil {
		return ""
	}
	bu, err := base.ParseURL(rawURL)
	if err != nil {
		return ""
	}
	req := base.Request{Method: base.Method(method), URL: bu, Header: base.Header{}}
	se.AddAuthorization(&req)
	if v := req.Header["Authorization"]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// summarizeSDP lists the media of a session description.
func summarizeSDP(sdp []byte) string {
	var media []string
	var cur string
	for _, line := range strings.Split(string(sdp), "\n") {
		line = strings.TrimSpace(line)
		if m, ok := strings.CutPrefix(line, "m="); ok {
			if f := strings.Fields(m); len(f) > 0 {
				cur = f[0]
				media = append(media, cur)
			}
		} else if rm, ok := strings.CutPrefix(line, "a=rtpmap:"); ok && len(media) > 0 {
			if f := strings.Fields(rm); len(f) > 1 {
				codec, _, _ := strings.Cut(f[1], "/")
				media[len(media)-1] = cur + " " + codec
			}
		}
	}
	if len(media) == 0 {
		return "the stream exists (no media described)"
	}
	return fmt.Sprintf("the stream exists: %d track(s): %s", len(media), strings.Join(media, ", "))
}

func (p *prober) rtmp(ctx context.Context, conn net.Conn) bool {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(p.opt.StepTimeout))
	c, err := ident.RTMPHandshake(conn)
	if err != nil {
		switch {
		case errors.Is(err, ident.ErrNotRTMP):
			p.notThisProtocol(ctx, "the handshake got "+strings.TrimPrefix(err.Error(), ident.ErrNotRTMP.Error()+": its first bytes were "))
		case errors.Is(err, ident.ErrNoAnswer):
			p.notThisProtocol(ctx, fmt.Sprintf("no reply to the handshake within %v", p.opt.StepTimeout))
		default:
			p.say("server", "FAIL: RTMP handshake: %v", err)
		}
		return false
	}
	app, stream := splitRTMPPath(p.u.Path)
	tc := *p.u
	tc.Path, tc.RawQuery, tc.User = "/"+app, "", nil
	var res ident.RTMPResult
	if err := c.Connect(tc.String(), app, &res); err != nil {
		p.say("server", "FAIL: RTMP handshake done, but connect got no reply: %v", err)
		return false
	}
	p.serverLine(&res.Identity)
	if !res.IsBerth() {
		p.suggestLocalBerth(ctx, res.Instance)
	}
	if res.Connect != "_result" {
		p.say("stream", "FAIL: connect to app %q refused: %s", app, res.ConnectMsg)
		return false
	}
	conn.SetDeadline(time.Now().Add(p.opt.StepTimeout))
	if err := c.Play(stream, &res); err != nil {
		p.say("stream", "FAIL: play %q got no status: %v", stream, err)
		return false
	}
	switch res.PlayCode {
	case "NetStream.Play.Start":
		p.say("stream", "play %s/%s: %s: the stream exists", app, stream, res.PlayCode)
		p.say("play", "ffplay %s", redact(p.u))
		return true
	case "NetStream.Play.StreamNotFound":
		p.say("stream", "FAIL: play %s/%s: %s: no stream at this path (nothing publishes it now)", app, stream, res.PlayCode)
		p.fix("publish first, e.g. `ffmpeg -re -i input.mp4 -c copy -f flv %s`, or check the path (app/stream)", redact(p.u))
	default:
		p.say("stream", "FAIL: play %s/%s: %s %s", app, stream, res.PlayCode, res.PlayDesc)
	}
	return false
}

func splitRTMPPath(path string) (app, stream string) {
	path = strings.TrimPrefix(path, "/")
	app, stream, _ = strings.Cut(path, "/")
	return app, stream
}

func (p *prober) http(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, p.opt.StepTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", p.u.String(), nil)
	if err != nil {
		p.say("server", "FAIL: %v", err)
		return false
	}
	// The handshake step said whether the certificate is trusted; go on either way.
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: p.tls && !p.trusted}}
	cl := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := cl.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			p.notThisProtocol(ctx, fmt.Sprintf("it accepted the connection but sent no HTTP reply within %v", p.opt.StepTimeout))
		} else {
			p.notThisProtocol(ctx, err.Error())
		}
		return false
	}
	defer res.Body.Close()
	head := make([]byte, 3)
	n, _ := io.ReadFull(res.Body, head)
	id := ident.Identity{Protocol: "HTTP", Code: res.StatusCode, Server: res.Header.Get("Server"), Instance: res.Header.Get("X-Berth-Instance")}
	if id.Instance == "" {
		// Berth's stream replies may not carry the header: its health path does.
		hctx, hcancel := context.WithTimeout(context.Background(), p.opt.StepTimeout)
		if p.tls {
			hctx = ident.WithTLS(hctx)
		}
		if hr, h, err := ident.HTTPHealth(hctx, p.u.Host); err == nil && h != nil {
			id.Instance, id.Server = hr.Instance, hr.Server
		}
		hcancel()
	}
	p.serverLine(&id)
	status := res.Proto + " " + res.Status
	switch {
	case res.StatusCode == 200:
		kind := "the stream answers"
		if string(head[:n]) == "FLV" {
			kind = "the stream answers with FLV"
		}
		p.say("stream", "GET %s: %s", status, kind)
		p.say("play", "ffplay %s", redact(p.u))
		return true
	case res.StatusCode == 404:
		p.say("stream", "FAIL: GET %s: no stream at %s on this server (nothing publishes it now)", status, p.u.Path)
		p.fix("publish first (rtsp or rtmp), then play %s://%s/app/stream.live.flv", p.u.Scheme, p.u.Host)
	case res.StatusCode == 401 || res.StatusCode == 403:
		p.say("stream", "FAIL: GET %s: the server wants credentials", status)
	default:
		p.say("stream", "FAIL: GET %s", status)
	}
	return false
}

// describeForeign names a reply in another protocol: `HTTP/1.0 400 Bad
// request version ('RTSP/1.0') from "SimpleHTTP/0.6 Python/3.11.2" (Python
// http.server)`.
func describeForeign(id *ident.Identity) string {
	if id.Protocol == "" {
		return id.Describe()
	}
	s := id.Status
	if id.Server != "" {
		s += fmt.Sprintf(" from %q", id.Server)
		if k := ident.KnownServer(id.Server); k != "" {
			s += " (" + k + ")"
		}
	}
	return s
}

// suggestLocalBerth looks for a Berth on this host that serves the URL's
// protocol on another port, and prints the URL that works. skip is the
// instance that already answered (no need to suggest it).
func (p *prober) suggestLocalBerth(ctx context.Context, skip string) {
	if !p.local {
		return
	}
	for _, hit := range FindLocalBerths(ctx, p.u.Scheme, p.opt.StepTimeout) { // rtsps: its TLS listener, not the plain one
		if hit.Instance == skip || hit.Port == p.port {
			continue
		}
		u := *p.u
		u.Host = net.JoinHostPort(hit.Host, strconv.Itoa(hit.Port))
		p.say("hint", "a Berth (%s) runs on this host and serves %s on %s: try %s",
			hit.Proc.Inline(hit.Port), strings.ToUpper(p.proto), u.Host, redact(&u))
	}
}

// LocalBerth is a Berth found on this host serving a protocol.
type LocalBerth struct {
	Proc     *ports.Process
	Host     string // address to reach it: loopback for a wildcard listener
	Port     int
	Instance string
}

// FindLocalBerths finds processes named berth, their listening TCP ports,
// and confirms each with the protocol's identity probe.
func FindLocalBerths(ctx context.Context, proto string, timeout time.Duration) []LocalBerth {
	berths := map[int]*ports.Process{}
	for _, pr := range ports.Processes() {
		if pr.IsBerth() && !pr.Self() {
			berths[pr.PID] = pr
		}
	}
	if len(berths) == 0 {
		return nil
	}
	socks, _ := ports.Listening()
	// IPv4 first: the URL a user copies is then the common 127.0.0.1 one.
	sort.SliceStable(socks, func(i, j int) bool { return !socks[i].V6() && socks[j].V6() })
	var out []LocalBerth
	seen := map[int]bool{}
	for _, s := range socks {
		if s.Proto != "tcp" || s.Proc == nil || berths[s.Proc.PID] == nil || seen[s.Port] {
			continue
		}
		host := s.IP.String()
		if s.IP.IsUnspecified() {
			host = "127.0.0.1"
			if s.V6() {
				host = "::1"
			}
		}
		addr := net.JoinHostPort(host, strconv.Itoa(s.Port))
		cctx, cancel := context.WithTimeout(ctx, timeout)
		id, err := ports.Identify(cctx, proto, addr)
		cancel()
		if err != nil || id == nil || !id.IsBerth() {
			continue
		}
		seen[s.Port] = true
		out = append(out, LocalBerth{Proc: berths[s.Proc.PID], Host: host, Port: s.Port, Instance: id.Instance})
	}
	return out
}

func isLocal(ip net.IP) bool {
	if ip.IsLoopback() || ip.IsUnspecified() {
		return true
	}
	as, _ := net.InterfaceAddrs()
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

func hostOf(addr string) string {
	h, _, _ := net.SplitHostPort(addr)
	return h
}

// redact hides a password in a printed URL.
func redact(u *url.URL) string { return u.Redacted() }
