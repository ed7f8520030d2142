package cluster

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Listeners are this node's bound addresses ("127.0.0.1:8554"), "" for a
// protocol that is off: what an advertise setting without ports completes.
type Listeners struct{ RTSP, RTMP, HTTP string }

// DeriveAdvertise turns [cluster] advertise into base URLs. URLs are taken
// as written; a bare host gets the listeners' ports; empty takes the host
// from listenIP (127.0.0.1 when it is loopback, so a cluster on one machine
// works out of the box) or else the first non-loopback address.
func DeriveAdvertise(setting, listenIP string, l Listeners) (Advertise, error) {
	var a Advertise
	if strings.Contains(setting, "://") {
		for _, part := range strings.Split(setting, ",") {
			u, err := url.Parse(strings.TrimSpace(part))
			if err != nil || u.Host == "" {
				return a, fmt.Errorf("[cluster] advertise: %q is not scheme://host:port", part)
			}
			base := u.Scheme + "://" + u.Host
			switch u.Scheme {
			case "rtsp", "rtsps":
				a.RTSP = base
			case "rtmp", "rtmps":
				a.RTMP = base
			case "http", "https":
				a.HTTP = base
			}
		}
		if a.RTSP == "" && a.RTMP == "" {
			return a, fmt.Errorf("[cluster] advertise %q names neither an rtsp:// nor an rtmp:// URL: other nodes pull over one of those; add rtsp://HOST:%s", setting, portOf(l.RTSP, "8554"))
		}
		return a, nil
	}
	host := setting
	if host == "" {
		host = defaultHost(listenIP)
	}
	with := func(scheme, addr string) string {
		if addr == "" {
			return ""
		}
		return scheme + "://" + net.JoinHostPort(host, portOf(addr, ""))
	}
	a = Advertise{RTSP: with("rtsp", l.RTSP), RTMP: with("rtmp", l.RTMP), HTTP: with("http", l.HTTP)}
	if a.RTSP == "" && a.RTMP == "" {
		return a, fmt.Errorf("[cluster] needs RTSP or RTMP on: other nodes pull this node's streams over one of them; set [rtsp] port")
	}
	return a, nil
}

func portOf(addr, def string) string {
	if _, p, err := net.SplitHostPort(addr); err == nil {
		return p
	}
	return def
}

// defaultHost is the address other nodes most likely reach this one at.
func defaultHost(listenIP string) string {
	if ip := net.ParseIP(listenIP); ip != nil && !ip.IsUnspecified() {
		if ip.IsLoopback() {
			return "127.0.0.1"
		}
		return listenIP
	}
	addrs, _ := net.InterfaceAddrs()
	var v6 string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		if ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
		if v6 == "" {
			v6 = ipn.IP.String()
		}
	}
	if v6 != "" {
		return v6
	}
	return "127.0.0.1"
}
