// The RTSP methods a client sends: OPTIONS, DESCRIBE, ANNOUNCE, SETUP, PLAY, RECORD.

package rtspclient

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"
	"github.com/bluenviron/gortsplib/v5/pkg/sdpunmarshaler"
	psdp "github.com/pion/sdp/v3"
)

// Options sends OPTIONS and returns the response.
func (c *Client) Options() (*base.Response, error) {
	res, err := c.do(base.Options, c.url, nil, nil)
	if err != nil {
		return res, err
	}
	if p := res.Header["Public"]; len(p) > 0 {
		c.mu.Lock()
		c.public = strings.Join(p, ",")
		c.mu.Unlock()
	}
	return res, nil
}

// Describe asks for the stream's description. rawSDP is the body as sent.
// Medias that do not parse are left out of desc and listed by Unreadable.
func (c *Client) Describe() (desc *description.Session, rawSDP []byte, err error) {
	res, err := c.do(base.Describe, c.url, base.Header{"Accept": base.HeaderValue{"application/sdp"}}, nil)
	if err != nil {
		return nil, nil, err
	}
	ssd, d, bad, err := parseSDP(res.Body)
	if err != nil {
		return nil, res.Body, fmt.Errorf("rtsp DESCRIBE %s: %w", c.url, err)
	}
	c.mu.Lock()
	c.unreadable = bad
	c.mu.Unlock()
	d.BaseURL = c.baseURL(ssd, res)
	return d, res.Body, nil
}

// Unreadable lists the medias of the last DESCRIBE's SDP that did not
// parse and are not in its description.
func (c *Client) Unreadable() []UnreadableMedia {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.unreadable
}

// baseURL is where media control URLs are relative to (RFC 2326 C.1.1):
// a session-level absolute control, else Content-Base, else the request URL.
func (c *Client) baseURL(ssd *psdp.SessionDescription, res *base.Response) *base.URL {
	if ctl, ok := ssd.Attribute("control"); ok && ctl != "*" {
		if u, err := base.ParseURL(ctl); err == nil {
			return u
		}
	}
	for _, h := range []string{"Content-Base", "Content-Location"} {
		if v := res.Header[h]; len(v) == 1 {
			s := v[0]
			if strings.HasPrefix(s, "/") {
				s = c.url.Scheme + "://" + c.url.Host + s
			}
			if u, err := base.ParseURL(s); err == nil {
				return u.CloneWithoutCredentials()
			}
		}
	}
	return c.url
}

// Announce sends rawSDP as the description of a stream to publish and
// returns it parsed, ready for SetupAll.
func (c *Client) Announce(rawSDP []byte) (*description.Session, error) {
	ssd, err := sdpunmarshaler.Unmarshal(rawSDP)
	if err != nil {
		return nil, fmt.Errorf("rtsp ANNOUNCE %s: the SDP to publish does not parse: %w", c.url, err)
	}
	var d description.Session
	if err := d.Unmarshal2(ssd); err != nil {
		return nil, fmt.Errorf("rtsp ANNOUNCE %s: the SDP to publish is not usable: %w", c.url, err)
	}
	d.BaseURL = c.url
	if _, err := c.do(base.Announce, c.url, base.Header{"Content-Type": base.HeaderValue{"application/sdp"}}, rawSDP); err != nil {
		return nil, err
	}
	c.recording = true
	return &d, nil
}

// SetupAll sets up every media of desc: to play after Describe, to record
// after Announce. Over TCP media i asks for interleaved channels 2i and
// 2i+1; over UDP the client binds an even/odd port pair per media on the
// local address of its RTSP connection; with Multicast it joins the group
// and ports each answer names.
func (c *Client) SetupAll(desc *description.Session) error {
	for i, m := range desc.Medias {
		if err := c.setup(desc, i, m); err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) setup(desc *description.Session, i int, m *description.Media) error {
	baseURL := desc.BaseURL
	if baseURL == nil {
		baseURL = c.url
	}
	mu, err := m.URL(baseURL)
	if err != nil {
		return fmt.Errorf("rtsp SETUP media %d: %w", i, err)
	}
	t := &track{media: m}
	th := headers.Transport{Profile: m.Profile}
	if _, tlsConn := c.conn.(*tls.Conn); tlsConn && c.opts.Transport == TCP {
		// An rtsps server may describe its media as RTP/SAVP (SRTP, keys by
		// MIKEY), which this client does not speak; interleaved in the TLS
		// connection, plain RTP/AVP is as private, and servers take it.
		th.Profile = headers.TransportProfileAVP
	}
	delivery := headers.TransportDeliveryUnicast
	th.Delivery = &delivery
	if c.recording {
		if c.opts.Transport == Multicast {
			return fmt.Errorf("rtsp SETUP %s: multicast is for playing; publish over TCP or UDP", mu)
		}
		mode := headers.TransportModeRecord
		th.Mode = &mode
	}
	switch c.opts.Transport {
	case TCP:
		th.Protocol = headers.TransportProtocolTCP
		th.InterleavedIDs = &[2]int{2 * i, 2*i + 1}
	case Multicast:
		// RFC 2326 section 12.39: no client_port; the server picks the
		// group and ports, and names them in its answer.
		th.Protocol = headers.TransportProtocolUDP
		mcast := headers.TransportDeliveryMulticast
		th.Delivery = &mcast
	default:
		th.Protocol = headers.TransportProtocolUDP
		ip := c.conn.LocalAddr().(*net.TCPAddr).IP
		t.rtp, t.rtcp, err = listenPair(ip)
		if err != nil {
			return fmt.Errorf("rtsp SETUP %s: binding a UDP port pair on %s: %w", mu, ip, err)
		}
		th.ClientPorts = &[2]int{t.rtp.LocalAddr().(*net.UDPAddr).Port, t.rtcp.LocalAddr().(*net.UDPAddr).Port}
	}
	c.tracks = append(c.tracks, t) // before the request, so Close releases the ports on failure
	res, err := c.do(base.Setup, mu, base.Header{"Transport": th.Marshal()}, nil)
	if err != nil {
		return err
	}
	var rt headers.Transport
	if err := rt.Unmarshal(res.Header["Transport"]); err != nil {
		return fmt.Errorf("rtsp SETUP %s: the server's Transport header does not parse: %w", mu, err)
	}
	c.mu.Lock()
	if c.session == "" {
		var sh headers.Session
		if err := sh.Unmarshal(res.Header["Session"]); err != nil {
			c.mu.Unlock()
			return fmt.Errorf("rtsp SETUP %s: the server sent no usable Session header: %w", mu, err)
		}
		c.session = sh.Session
		c.sessionTTL = 60 * time.Second
		if sh.Timeout != nil && *sh.Timeout > 0 {
			c.sessionTTL = time.Duration(*sh.Timeout) * time.Second
		}
	}
	c.mu.Unlock()
	if c.opts.Transport == TCP {
		ids := [2]int{2 * i, 2*i + 1}
		if rt.InterleavedIDs != nil {
			ids = *rt.InterleavedIDs // the server may choose other channels
		}
		if ids[0] < 0 || ids[0] > 255 || ids[1] < 0 || ids[1] > 255 {
			return fmt.Errorf("rtsp SETUP %s: the server chose interleaved channels %v, outside 0-255", mu, ids)
		}
		c.chanTrack[ids[0]] = int16(i << 1)
		c.chanTrack[ids[1]] = int16(i<<1 | 1)
		return nil
	}
	srv := c.conn.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()
	if c.opts.Transport == Multicast {
		a, err := parseMulticastAnswer(&rt, srv)
		if err != nil {
			return fmt.Errorf("rtsp SETUP %s: %w; pull over TCP instead", mu, err)
		}
		// Under sockMu: Close (from Dial's context) may run meanwhile, and
		// must not miss the sockets nor see them half set.
		c.sockMu.Lock()
		defer c.sockMu.Unlock()
		if c.failed.Load() {
			return c.err
		}
		for j, o := range c.tracks {
			if o != t && o.mrtp != nil && o.mrtp.port == a.ports[0] && o.mrtp.group.Equal(a.group.AsSlice()) {
				return fmt.Errorf("rtsp SETUP %s: %w: it sends media %d on the group and port of media %d (%s port %d), "+
					"so their packets cannot be told apart; pull over TCP instead", mu, ErrNotMulticast, i, j, a.group, a.ports[0])
			}
		}
		if err := joinMulticast(t, a, c.conn.LocalAddr().(*net.TCPAddr).IP); err != nil {
			return fmt.Errorf("rtsp SETUP %s: %w", mu, err)
		}
		return nil
	}
	if rt.ServerPorts == nil {
		return fmt.Errorf("rtsp SETUP %s: the server's Transport has no server_port for UDP; try TCP", mu)
	}
	if rt.Source2 != nil {
		if a, err := netip.ParseAddr(*rt.Source2); err == nil {
			srv = a
		}
	}
	t.srvRTP = netip.AddrPortFrom(srv, uint16(rt.ServerPorts[0]))
	t.srvRTCP = netip.AddrPortFrom(srv, uint16(rt.ServerPorts[1]))
	return nil
}

// Play starts playing every media set up, and the read loop. Set OnPacket
// and OnRTCP before calling it.
func (c *Client) Play() (headers.RTPInfo, error) { return c.PlayRange("npt=0.000-") }

// PlayRange is Play with a Range header (RFC 2326 §12.29): "npt=3.000-"
// asks a server playing a file to start 3 s in.
func (c *Client) PlayRange(rng string) (headers.RTPInfo, error) {
	if len(c.tracks) == 0 {
		return nil, fmt.Errorf("rtsp PLAY %s: nothing set up; call SetupAll first", c.url)
	}
	res, err := c.do(base.Play, c.url, base.Header{"Range": base.HeaderValue{rng}}, nil)
	if err != nil {
		return nil, err
	}
	var info headers.RTPInfo
	if v, ok := res.Header["RTP-Info"]; ok {
		if info.Unmarshal(v) != nil {
			info = nil // informative only
		}
	}
	if err := c.start(); err != nil {
		return nil, err
	}
	return info, nil
}

// Record starts publishing and the read loop (which consumes keep-alive
// responses and RTCP).
func (c *Client) Record() error {
	if len(c.tracks) == 0 || !c.recording {
		return fmt.Errorf("rtsp RECORD %s: call Announce and SetupAll first", c.url)
	}
	if _, err := c.do(base.Record, c.url, base.Header{"Range": base.HeaderValue{"npt=0.000-"}}, nil); err != nil {
		return err
	}
	return c.start()
}
