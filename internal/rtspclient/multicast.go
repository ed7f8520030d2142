// Multicast delivery (RFC 2326 section 12.39): the client asks SETUP for
// "RTP/AVP;multicast" without ports, the server answers with the group
// (destination=), its ports (port=) and a ttl; the client joins the group on
// the interface that routes to the server and reads RTP and RTCP there.

package rtspclient

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/bluenviron/gortsplib/v5/pkg/headers"
	"golang.org/x/net/ipv4"
)

// defaultMulticastTTL is our reports' TTL when the answer names none: what
// GStreamer's rtspsrc and gortsplib use.
const defaultMulticastTTL = 16

// ErrNotMulticast is a SETUP answer that does not carry what multicast
// needs (the server chose unicast, or named no group or ports).
var ErrNotMulticast = errors.New("the server's answer is not a usable multicast transport")

// mcastGroup is one joined group on one port: the socket and what to leave
// on close.
type mcastGroup struct {
	conn  *net.UDPConn
	pc    *ipv4.PacketConn
	group net.IP
	port  int
	ifi   *net.Interface // nil: the kernel's choice
}

// leave drops the membership (an IGMP leave, so a switch stops forwarding
// the group here at once rather than after its query timeout) and closes.
func (g *mcastGroup) leave() {
	if g == nil {
		return
	}
	g.pc.LeaveGroup(g.ifi, &net.UDPAddr{IP: g.group})
	g.conn.Close()
}

// multicastAnswer is what the server's SETUP answer says about the group.
type multicastAnswer struct {
	group  netip.Addr
	ports  [2]int
	ttl    int        // the session's scope (RFC 2326 section 12.39); our reports use it
	source netip.Addr // who sends: source=, else the RTSP server
}

// parseMulticastAnswer checks that rt is a multicast transport with a group
// and ports; srv is the RTSP server's address, the source by default.
func parseMulticastAnswer(rt *headers.Transport, srv netip.Addr) (multicastAnswer, error) {
	var a multicastAnswer
	if rt.Delivery == nil || *rt.Delivery != headers.TransportDeliveryMulticast {
		return a, fmt.Errorf("%w: it answered unicast (it ignored the multicast request)", ErrNotMulticast)
	}
	if rt.Destination2 == nil {
		return a, fmt.Errorf("%w: it named no group (no destination=)", ErrNotMulticast)
	}
	g, err := netip.ParseAddr(*rt.Destination2)
	if err != nil || !g.Unmap().Is4() || !g.IsMulticast() {
		return a, fmt.Errorf("%w: destination=%s is not an IPv4 multicast group", ErrNotMulticast, *rt.Destination2)
	}
	a.group = g.Unmap()
	switch {
	case rt.Ports != nil:
		a.ports = *rt.Ports
	case rt.ServerPorts != nil: // seen on cameras that reuse the unicast answer's shape
		a.ports = *rt.ServerPorts
	default:
		return a, fmt.Errorf("%w: it named no ports (no port=)", ErrNotMulticast)
	}
	if a.ports[0] <= 0 || a.ports[0] > 65535 || a.ports[1] <= 0 || a.ports[1] > 65535 {
		return a, fmt.Errorf("%w: port=%d-%d is out of range", ErrNotMulticast, a.ports[0], a.ports[1])
	}
	a.ttl = defaultMulticastTTL
	if rt.TTL != nil && *rt.TTL > 0 && *rt.TTL < 256 {
		a.ttl = int(*rt.TTL)
	}
	a.source = srv.Unmap()
	if rt.Source2 != nil {
		if s, err := netip.ParseAddr(*rt.Source2); err == nil {
			a.source = s.Unmap()
		}
	}
	return a, nil
}

// joinMulticast binds the answer's two ports and joins its group on the
// interface that holds local, the RTSP connection's own address: that is
// the interface the route to the server goes out of, so the group's traffic
// comes in there (RFC 1112 section 4: a host joins per interface).
func joinMulticast(t *track, a multicastAnswer, local net.IP) error {
	ifi := interfaceWithAddr(local)
	var err error
	if t.mrtp, err = listenGroup(a.group, a.ports[0], ifi, a.ttl); err != nil {
		return err
	}
	if t.mrtcp, err = listenGroup(a.group, a.ports[1], ifi, a.ttl); err != nil {
		t.mrtp.leave()
		t.mrtp = nil
		return err
	}
	t.rtp, t.rtcp = t.mrtp.conn, t.mrtcp.conn
	// RFC 3550 section 6: receivers send their reports to the group's
	// RTCP port, where the sender (and every other receiver) hears them.
	t.srvRTCP = netip.AddrPortFrom(a.group, uint16(a.ports[1]))
	t.source = a.source
	t.ifName = "the kernel's choice of interface"
	if ifi != nil {
		t.ifName = ifi.Name
	}
	return nil
}

// listenGroup binds port and joins group on ifi. SO_REUSEADDR lets other
// receivers on this host that set it too (a second pull of the same
// camera, ffmpeg, VLC) bind the same port; on Linux binding the group
// address rather than the wildcard keeps other groups' and unicast traffic
// to the port out of this socket. ttl is the scope of what it sends.
func listenGroup(group netip.Addr, port int, ifi *net.Interface, ttl int) (*mcastGroup, error) {
	host := "0.0.0.0"
	if runtime.GOOS == "linux" {
		host = group.String()
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = setReuseAddr(fd) }); err != nil {
			return err
		}
		return serr
	}}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	pconn, err := lc.ListenPacket(context.Background(), "udp4", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("binding UDP %s for multicast group %s: %w (a program on this host holds the port without SO_REUSEADDR: "+
			"a camera or receiver running here; pull from another host, or over TCP with rtp_type=0)", addr, group, err)
	}
	if err != nil {
		return nil, fmt.Errorf("binding UDP %s for multicast group %s: %w (pull over TCP with rtp_type=0)", addr, group, err)
	}
	conn := pconn.(*net.UDPConn)
	g := &mcastGroup{conn: conn, pc: ipv4.NewPacketConn(conn), group: group.AsSlice(), port: port, ifi: ifi}
	if err := g.pc.JoinGroup(ifi, &net.UDPAddr{IP: g.group}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("joining multicast group %s on %s: %w (this host has no interface for multicast there: "+
			"give it a multicast route, ip route add 224.0.0.0/4 dev <interface to the camera>, or pull over TCP with rtp_type=0)", group, ifaceName(ifi), err)
	}
	// Reports leave by the interface the group comes in on, with the
	// session's TTL, so they reach the camera wherever its packets came from.
	if ifi != nil {
		g.pc.SetMulticastInterface(ifi)
	}
	g.pc.SetMulticastTTL(ttl)
	conn.SetReadBuffer(1 << 20)
	return g, nil
}

// interfaceWithAddr is the interface that holds ip, or nil (the kernel
// then joins on the interface its route to the group names).
func interfaceWithAddr(ip net.IP) *net.Interface {
	if ip == nil || ip.IsUnspecified() {
		return nil
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	for i := range ifs {
		addrs, err := ifs[i].Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
				return &ifs[i]
			}
		}
	}
	return nil
}

func ifaceName(ifi *net.Interface) string {
	if ifi == nil {
		return "the default interface"
	}
	return ifi.Name
}

// fromSource reports whether a multicast packet is the server's: others on
// the group (a second sender by mistake, other receivers' RTCP) are dropped.
func (t *track) fromSource(from netip.AddrPort) bool {
	return !t.source.IsValid() || from.Addr().Unmap() == t.source
}

// senderRTCP reports whether an RTCP packet read on a group comes from the
// RTP sender: its SSRC (RFC 3550 section 6.4) is the one RTP carries, or,
// before any RTP, it is a sender report. Other receivers' reports (Berth's
// own come back on the loopback) and their BYEs, which would read as the
// source leaving, stay out.
func (t *track) senderRTCP(pkt []byte) bool {
	if len(pkt) < 8 {
		return false
	}
	if t.received.Load() == 0 {
		return pkt[1] == 200
	}
	return binary.BigEndian.Uint32(pkt[4:]) == t.ssrc.Load()
}

// Multicast names what a multicast session joined, one entry per media:
// "239.255.0.1 ports 5000-5001 on eth0" (empty for other transports).
func (c *Client) Multicast() []string {
	c.sockMu.Lock()
	defer c.sockMu.Unlock()
	var out []string
	for _, t := range c.tracks {
		if t.mrtp != nil {
			out = append(out, fmt.Sprintf("%s ports %d-%d on %s", t.mrtp.group, t.mrtp.port, t.mrtcp.port, t.ifName))
		}
	}
	return out
}

// multicastSilence words the read timeout of a multicast session: it names
// the groups and ports, the likely causes and the fix.
func (c *Client) multicastSilence() error {
	var groups []string
	var iface string
	var heard bool
	for _, t := range c.tracks {
		if t.mrtp == nil {
			continue
		}
		groups = append(groups, fmt.Sprintf("%s port %d-%d", t.mrtp.group, t.mrtp.port, t.mrtcp.port))
		iface = t.ifName
		heard = heard || t.received.Load() > 0
	}
	if heard {
		return fmt.Errorf("rtsp %s: nothing received for %s on multicast group %s (joined on %s): the camera stopped sending",
			c.url, c.opts.ReadTimeout, strings.Join(groups, ", "), iface)
	}
	return fmt.Errorf("rtsp %s: nothing received for %s: no multicast packet arrived on group %s (joined on %s); "+
		"likely no multicast route to this host, IGMP snooping on a switch without a querier, or a firewall dropping UDP to the group; "+
		"pull over TCP instead (rtp_type=0)", c.url, c.opts.ReadTimeout, strings.Join(groups, ", "), iface)
}
