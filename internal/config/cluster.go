package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Cluster is the [cluster] section's registry keys: the Redis that every
// node of a cluster shares, and how this node names and advertises itself
// there (docs/cluster.md). Redis empty = this node is alone.
type Cluster struct {
	Redis     string  // redis://[user:password@]host:port[/db]; "" = clustering off
	NodeID    string  // this node's name in the registry; "" = hostname-port
	Advertise string  // comma-separated URLs other nodes reach this one at, or a bare host; "" = derived
	TTL       float64 // seconds a node's and its streams' entries live without a heartbeat
}

func init() {
	for _, k := range clusterKeys() {
		insertAfterSection(k)
	}
}

func clusterKeys() []key {
	return []key{
		{section: "cluster", name: "redis", flag: "cluster-redis",
			help: "redis://host:6379 URL of the stream registry every node of the cluster shares; empty = this node is alone",
			set: func(c *Config, v string) error {
				if err := CheckRedisURL(v); err != nil {
					return err
				}
				c.Cluster.Redis = v
				return nil
			},
			get: func(c *Config) string { return c.Cluster.Redis }},
		{section: "cluster", name: "node_id", flag: "cluster-node-id",
			help: "this node's name in the cluster (letters, digits, . _ -); empty = hostname-port",
			set: func(c *Config, v string) error {
				if strings.IndexFunc(v, func(r rune) bool {
					return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
				}) >= 0 {
					return fmt.Errorf("%q: a node_id has letters, digits, '.', '_' and '-' only", v)
				}
				c.Cluster.NodeID = v
				return nil
			},
			get: func(c *Config) string { return c.Cluster.NodeID }},
		{section: "cluster", name: "advertise", flag: "cluster-advertise",
			help: "how other nodes reach this one: a host (10.0.0.5) or URLs (rtsp://10.0.0.5:8554,rtmp://10.0.0.5:1935,http://10.0.0.5:8080); empty = the first non-loopback address and the listeners' ports",
			set: func(c *Config, v string) error {
				if err := checkAdvertise(v); err != nil {
					return err
				}
				c.Cluster.Advertise = v
				return nil
			},
			get: func(c *Config) string { return c.Cluster.Advertise }},
		secondsKey("cluster", "ttl", "cluster-ttl", "seconds a node's and its streams' registry entries outlive its last heartbeat (heartbeats every ttl/3)", 1, 3600,
			func(c *Config) *float64 { return &c.Cluster.TTL }),
	}
}

func defaultCluster(c *Config) {
	c.Cluster = Cluster{TTL: 10}
}

// CheckRedisURL accepts "" (off) and redis://, rediss:// and unix:// URLs.
func CheckRedisURL(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil {
		return fmt.Errorf("%q does not parse as a URL: want redis://host:6379", v)
	}
	switch u.Scheme {
	case "redis", "rediss":
		if u.Host == "" {
			return fmt.Errorf("%q has no host: want redis://host:6379", v)
		}
	case "unix":
		if u.Path == "" {
			return fmt.Errorf("%q has no socket path: want unix:///run/redis.sock", v)
		}
	default:
		return fmt.Errorf("%q: scheme %q is not redis, rediss or unix; want redis://host:6379", v, u.Scheme)
	}
	return nil
}

// checkAdvertise accepts "", a bare host or IP, or comma-separated
// rtsp(s)://, rtmp(s)://, http(s):// URLs with a host and port.
func checkAdvertise(v string) error {
	if v == "" || !strings.Contains(v, "://") {
		if strings.ContainsAny(v, " ,/") {
			return fmt.Errorf("%q is neither a host nor URLs like rtsp://10.0.0.5:8554", v)
		}
		return nil
	}
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		u, err := url.Parse(part)
		if err != nil || u.Host == "" {
			return fmt.Errorf("%q does not parse as scheme://host:port", part)
		}
		switch u.Scheme {
		case "rtsp", "rtsps", "rtmp", "rtmps", "http", "https":
		default:
			return fmt.Errorf("%q: scheme %q is not rtsp, rtmp or http (other nodes pull over those)", part, u.Scheme)
		}
		if _, _, err := net.SplitHostPort(u.Host); err != nil {
			return fmt.Errorf("%q names no port: write it, e.g. %s://%s:8554", part, u.Scheme, u.Host)
		}
	}
	return nil
}
