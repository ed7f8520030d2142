package config

import (
	"fmt"
	"strings"
)

// Origin is the static form of ZLMediaKit's [cluster] section: an edge that
// pulls a stream it does not have from origin URLs written in the config,
// for users without a registry (the Redis keys of [cluster] are another
// feature). See docs/cluster.md.
type Origin struct {
	// URLs are origin_url's templates, split at ';': each names app and
	// stream as %s %s (ZLMediaKit's printf form), $app $stream or $1 $2
	// (internal/cluster expands and checks them).
	URLs       []string
	TimeoutSec float64 // timeout_sec: how long a reader waits for the pull; each origin gets its share
	RetryCount int     // retry_count: failed attempts of a pull before it gives up; -1 = until its readers stop waiting
}

func init() { keys = append(keys, originKeys()...) }

func originKeys() []key {
	return []key{
		{section: "cluster", name: "origin_url", flag: "origin-url",
			help: "origin URL templates (';' between several) an edge pulls a stream it does not have from: rtsp://origin:554/%s/%s, rtmp://origin/$app/$stream, http://origin/$app/$stream.live.flv; empty = not an edge",
			set: func(c *Config, v string) error {
				var urls []string
				for _, u := range strings.Split(v, ";") {
					if u = strings.TrimSpace(u); u == "" {
						continue
					}
					if !strings.Contains(u, "://") {
						return fmt.Errorf("origin_url %q is not a URL; write scheme://host/..., for example rtsp://10.0.0.1:554/$app/$stream", u)
					}
					urls = append(urls, u)
				}
				c.Origin.URLs = urls
				return nil
			},
			get: func(c *Config) string { return strings.Join(c.Origin.URLs, ";") }},
		secondsKey("cluster", "timeout_sec", "", "seconds a reader of a stream the edge pulls from origin_url waits for it; each of N origins gets timeout_sec/N to answer", 1, 600,
			func(c *Config) *float64 { return &c.Origin.TimeoutSec }),
		intKey("cluster", "retry_count", "", "failed attempts (one origin each, in turn) before an origin pull gives up; -1 = for as long as its readers wait", -1, 1000000,
			func(c *Config) *int { return &c.Origin.RetryCount }),
	}
}

func defaultOrigin(c *Config) {
	c.Origin = Origin{TimeoutSec: 15, RetryCount: 3} // ZLMediaKit's defaults
}
