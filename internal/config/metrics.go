package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// Metrics is the [metrics] section: who may read /metrics on the HTTP port.
type Metrics struct {
	Enable  bool           // serve /metrics on the HTTP port
	Secret  string         // "" = none; else a scrape must send it (Bearer, Basic password or ?secret=)
	AllowIP []netip.Prefix // empty = any address; else the scraper's address must be in one
}

func init() { keys = append(keys, metricsKeys()...) }

func metricsKeys() []key {
	return []key{
		boolKey("metrics", "enable", "metrics", "1 = serve Prometheus metrics at /metrics on [http] port; 0 = off",
			func(c *Config) *bool { return &c.Metrics.Enable }),
		{section: "metrics", name: "secret", flag: "metrics-secret",
			help: "empty = /metrics needs no secret (like most exporters); else a scrape sends it as a bearer token, a basic-auth password or ?secret=",
			set:  func(c *Config, v string) error { c.Metrics.Secret = v; return nil },
			get:  func(c *Config) string { return c.Metrics.Secret }},
		{section: "metrics", name: "allow_ip", flag: "metrics-allow-ip",
			help: "addresses or CIDRs, comma separated, that may scrape /metrics (e.g. 127.0.0.1,10.0.0.0/8); empty = any",
			set:  func(c *Config, v string) error { return setPrefixes(&c.Metrics.AllowIP, v) },
			get: func(c *Config) string {
				var parts []string
				for _, p := range c.Metrics.AllowIP {
					parts = append(parts, p.String())
				}
				return strings.Join(parts, ",")
			}},
	}
}

// setPrefixes reads "127.0.0.1, 10.0.0.0/8, ::1": a bare address is a
// prefix of that one address.
func setPrefixes(p *[]netip.Prefix, v string) error {
	var out []netip.Prefix
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if a, err := netip.ParseAddr(part); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		pr, err := netip.ParsePrefix(part)
		if err != nil {
			return fmt.Errorf("%q is neither an IP address nor a CIDR like 10.0.0.0/8", part)
		}
		out = append(out, pr.Masked())
	}
	*p = out
	return nil
}
