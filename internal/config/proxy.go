package config

import (
	"fmt"
	"strings"
)

// Proxy is Berth's [proxy] section (ZLMediaKit has none; it adds pulls only
// through addStreamProxy): static pulls, one "app/stream=URL" line each, and
// how they and the API's pulls behave.
type Proxy struct {
	Pulls      []Pull  // the app/stream=URL lines, in the file's order
	OnDemand   bool    // static pulls start with their first reader and stop streamNoneReaderDelayMS after the last
	RetryCount int     // retries after a failure; -1 = forever
	RTPType    int     // RTSP sources: 0 TCP, 1 UDP, 2 multicast
	TimeoutSec float64 // connect, each request, and media silence before a session counts as failed
	GraceMS    int     // a pulled stream stays registered this long while its source reconnects
}

// Pull is one static pull.
type Pull struct {
	Path string // app/stream
	URL  string
}

func init() { keys = append(keys, proxyKeys()...) }

func proxyKeys() []key {
	return []key{
		boolKey("proxy", "on_demand", "proxy-on-demand", "1 = the [proxy] app/stream=URL pulls connect only when a reader asks (it waits up to maxStreamWaitMS) and disconnect streamNoneReaderDelayMS after the last one (Berth's key)",
			func(c *Config) *bool { return &c.Proxy.OnDemand }),
		intKey("proxy", "retry_count", "", "retries of a failed [proxy] pull before it gives up; -1 = forever (Berth's key)", -1, 1000000,
			func(c *Config) *int { return &c.Proxy.RetryCount }),
		intKey("proxy", "rtp_type", "", "how [proxy] pulls of rtsp:// URLs take RTP: 0 = TCP, 1 = UDP, 2 = multicast (Berth's key)", 0, 2,
			func(c *Config) *int { return &c.Proxy.RTPType }),
		secondsKey("proxy", "timeout_sec", "", "seconds a pull waits for its source to connect, answer or send media (Berth's key)", 1, 600,
			func(c *Config) *float64 { return &c.Proxy.TimeoutSec }),
		intKey("proxy", "grace_ms", "", "milliseconds a pulled stream stays up for its readers while its source reconnects (Berth's key)", 0, 3600000,
			func(c *Config) *int { return &c.Proxy.GraceMS }),
	}
}

func defaultProxy(c *Config) {
	c.Proxy = Proxy{RetryCount: -1, TimeoutSec: 10, GraceMS: 10000}
}

// pullLine takes a line of [proxy] that names a stream (app/stream=URL);
// it reports false for the section's other keys.
func (c *Config) pullLine(section, k, v string) (bool, error) {
	if !strings.EqualFold(section, "proxy") || !strings.Contains(k, "/") {
		return false, nil
	}
	app, stream, _ := strings.Cut(strings.Trim(k, "/"), "/")
	if app == "" || stream == "" {
		return true, fmt.Errorf("[proxy] %s: a pull is app/stream=URL, for example live/cam1=rtsp://user:pass@10.0.0.5/stream1", k)
	}
	if !strings.Contains(v, "://") {
		return true, fmt.Errorf("[proxy] %s=%q: the value is the source URL (rtsp://, rtmp://, http://...flv or .m3u8, srt://)", k, v)
	}
	for i, p := range c.Proxy.Pulls {
		if p.Path == app+"/"+stream {
			c.Proxy.Pulls[i].URL = v
			return true, nil
		}
	}
	c.Proxy.Pulls = append(c.Proxy.Pulls, Pull{Path: app + "/" + stream, URL: v})
	return true, nil
}
