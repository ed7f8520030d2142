package config

import (
	"fmt"
	"net"
	"strings"
)

// RTC is ZLMediaKit's [rtc] section: WebRTC (WHEP play, WHIP publish and
// ZLMediaKit's /index/api/webrtc) with ICE on one UDP port; see
// docs/webrtc.md.
type RTC struct {
	Port     int      // [rtc] port: the ICE UDP port every peer shares (pion's UDP mux); 0 = WebRTC off
	TCPPort  int      // [rtc] tcpPort: ICE over TCP (RFC 6544 passive candidates) for peers whose UDP is blocked; 0 = off
	ExternIP []string // [rtc] externIP: addresses put in the host candidates instead of the interfaces'; empty = the interfaces'
}

func init() {
	for _, k := range rtcKeys() {
		insertAfterSection(k)
	}
}

func rtcKeys() []key {
	return []key{
		portKey("rtc", "rtc-port", "WebRTC ICE port (UDP, shared by every peer): WHEP play and WHIP publish at /index/api/whep and /index/api/whip; 0 = off",
			func(c *Config) *int { return &c.RTC.Port }),
		portKeyNamed("rtc", "tcpPort", "rtc-tcp-port", "WebRTC ICE-TCP port, for peers whose UDP is blocked; 0 = off",
			func(c *Config) *int { return &c.RTC.TCPPort }),
		{section: "rtc", name: "externIP", flag: "rtc-extern-ip",
			help: "addresses (comma-separated IPs) WebRTC peers should reach Berth at, when NAT hides the interfaces' own; empty = the interfaces'",
			set: func(c *Config, v string) error {
				var ips []string
				for _, f := range strings.Split(v, ",") {
					f = strings.TrimSpace(f)
					if f == "" {
						continue
					}
					if net.ParseIP(f) == nil {
						return fmt.Errorf("externIP %q is not an IP address; give the public IPv4 or IPv6 address peers reach Berth at (host names are not resolved)", f)
					}
					ips = append(ips, f)
				}
				c.RTC.ExternIP = ips
				return nil
			},
			get: func(c *Config) string { return strings.Join(c.RTC.ExternIP, ",") }},
	}
}

func defaultRTC(c *Config) {
	c.RTC = RTC{Port: 8000, TCPPort: 8000} // ZLMediaKit's defaults: one port number, both transports
}
