// Package config reads Berth's configuration: ZLMediaKit's ini form
// ("[rtsp] port=8554"), embedded defaults, and command-line flags on top.
//
// Every key is declared once in the keys table below; the defaults, the
// annotated --print-config output, the flags and validation all come from it.
package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
)

// User is one name/password pair of the [auth] section.
type User struct {
	Name, Password string
}

// PortRange is an inclusive range of ports, "30000-35000" in the file.
type PortRange struct{ Lo, Hi int }

func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.Lo, r.Hi) }

// Config is the typed configuration. The zero value is not useful: start from
// Default().
type Config struct {
	General struct {
		ListenIP      string // "::" means every interface, both families
		PortFallback  bool   // move a taken listener to the nearest free port
		PprofPort     int    // 0 disables the profiling endpoint
		AllowTakeover bool   // a second publisher replaces the first

		// ZLMediaKit's [general] keys that the web hooks use.
		MediaServerID           string // mediaServerId: names this server in every hook body
		StreamNoneReaderDelayMS int    // a stream without readers this long fires on_stream_none_reader
		MaxStreamWaitMS         int    // a player of a missing stream waits this long for it (on_stream_not_found)
		FlowThreshold           int    // KB: sessions that moved less send no on_flow_report
	}
	RTSP struct {
		Port            int
		KeepAliveSecond int
		AuthBasic       bool // offer Basic as well as Digest
		RTPPortRange    PortRange
	}
	RTMP struct {
		Port            int
		KeepAliveSecond int // a publisher that sends nothing this long is dropped
	}
	HTTP     struct{ Port int }
	Metrics  Metrics // [metrics] (metrics.go)
	RTPProxy struct {
		Port       int
		PortRange  PortRange
		TimeoutSec int
		PSPT       int
		TSPT       int
	}
	API  struct{ Secret string }
	Log  struct{ Level string }
	Auth struct {
		Publish []User // empty: anyone may publish
		Play    []User // empty: anyone may play
		Realm   string
	}
	Hub struct {
		RingSize   int    // frames kept per stream (GOP cache and slow-reader slack)
		SlowReader string // "skip" to the newest keyframe, or "close"
	}
	Hook   Hook
	HLS    HLS    // [protocol] enable_hls*, [hls] (hls.go)
	TLS    TLS    // [http] sslport, sslCert, sslKey; [rtsp], [rtmp] sslport (tls.go)
	Proxy  Proxy  // [proxy]: static pulls and how pulls retry (proxy.go)
	Record Record // [protocol] enable_mp4, [record], [http] rootPath, dirMenu (record.go)
	SRT    SRT    // [srt] (srt.go)
	RTC    RTC    // [rtc] (rtc.go)
	Origin Origin // [cluster] origin_url, timeout_sec, retry_count: the static edge (origin.go)
	// Cluster is [cluster]'s stream registry on Redis (cluster.go).
	Cluster Cluster
	Limits  Limits // limits against abuse, in the sections they limit (limits.go)

	// Notes are what loading found that is not an error, each at the level
	// it deserves (see notes.go): a ZLMediaKit key Berth does not use is
	// debug, their count one info line, a key nobody knows a warning.
	Notes []Note
	// Warnings are the texts of the warn-level Notes ("file:line: ..."),
	// kept for callers that predate Notes.
	Warnings []string
	// Source is the file the config came from, "" for embedded defaults.
	Source string
}

// key describes one config key: where it lives, its flag, its help, and how
// to read and print it.
type key struct {
	section, name string
	flag          string // without dashes; "" when the key has no flag
	help          string
	set           func(c *Config, v string) error
	get           func(c *Config) string
}

func portKey(section, flag, help string, p func(c *Config) *int) key {
	return key{section: section, name: "port", flag: flag, help: help,
		set: func(c *Config, v string) error { return setPort(p(c), v) },
		get: func(c *Config) string { return strconv.Itoa(*p(c)) }}
}

func intKey(section, name, flag, help string, lo, hi int, p func(c *Config) *int) key {
	return key{section: section, name: name, flag: flag, help: help,
		set: func(c *Config, v string) error { return setInt(p(c), v, lo, hi) },
		get: func(c *Config) string { return strconv.Itoa(*p(c)) }}
}

func boolKey(section, name, flag, help string, p func(c *Config) *bool) key {
	return key{section: section, name: name, flag: flag, help: help,
		set: func(c *Config, v string) error { return setBool(p(c), v) },
		get: func(c *Config) string {
			if *p(c) {
				return "1"
			}
			return "0"
		}}
}

func stringKey(section, name, flag, help string, p func(c *Config) *string) key {
	return key{section: section, name: name, flag: flag, help: help,
		set: func(c *Config, v string) error { *p(c) = v; return nil },
		get: func(c *Config) string { return *p(c) }}
}

// secondsKey reads seconds that ZLMediaKit writes as floats ("10.0").
func secondsKey(section, name, flag, help string, lo, hi float64, p func(c *Config) *float64) key {
	return key{section: section, name: name, flag: flag, help: help,
		set: func(c *Config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("%q is not a number of seconds", v)
			}
			if f < lo || f > hi {
				return fmt.Errorf("%g is out of range %g-%g", f, lo, hi)
			}
			*p(c) = f
			return nil
		},
		get: func(c *Config) string { return strconv.FormatFloat(*p(c), 'f', -1, 64) }}
}

func rangeKey(section, name, flag, help string, p func(c *Config) *PortRange) key {
	return key{section: section, name: name, flag: flag, help: help,
		set: func(c *Config, v string) error { return setRange(p(c), v) },
		get: func(c *Config) string { return p(c).String() }}
}

func usersKey(name, help string, p func(c *Config) *[]User) key {
	return key{section: "auth", name: name, help: help,
		set: func(c *Config, v string) error { return setUsers(p(c), v) },
		get: func(c *Config) string {
			var parts []string
			for _, u := range *p(c) {
				parts = append(parts, u.Name+":"+u.Password)
			}
			return strings.Join(parts, ",")
		}}
}

var keys = []key{
	{section: "general", name: "listen_ip", flag: "listen-ip",
		help: "address every listener binds; :: = all interfaces (IPv4 and IPv6 bound as separate sockets), 0.0.0.0 = all IPv4",
		set: func(c *Config, v string) error {
			if net.ParseIP(v) == nil {
				return fmt.Errorf("%q is not an IP address", v)
			}
			c.General.ListenIP = v
			return nil
		},
		get: func(c *Config) string { return c.General.ListenIP }},
	boolKey("general", "port_fallback", "port-fallback",
		"1 = when a port is taken, listen on the nearest free one (loudly) instead of refusing to start",
		func(c *Config) *bool { return &c.General.PortFallback }),
	intKey("general", "pprof_port", "pprof-port", "serve Go's pprof on 127.0.0.1:PORT; 0 = off", 0, 65535,
		func(c *Config) *int { return &c.General.PprofPort }),
	boolKey("general", "allow_takeover", "allow-takeover",
		"1 = a second publisher on a live path replaces the first; 0 = it is refused",
		func(c *Config) *bool { return &c.General.AllowTakeover }),
	stringKey("general", "mediaServerId", "media-server-id", "this server's name in every web hook body (ZLMediaKit's mediaServerId)",
		func(c *Config) *string { return &c.General.MediaServerID }),
	intKey("general", "streamNoneReaderDelayMS", "", "ms a stream may go without readers before on_stream_none_reader fires", 0, 1<<30,
		func(c *Config) *int { return &c.General.StreamNoneReaderDelayMS }),
	intKey("general", "maxStreamWaitMS", "", "ms a player of a missing stream waits for it to be published (after on_stream_not_found)", 0, 1<<30,
		func(c *Config) *int { return &c.General.MaxStreamWaitMS }),
	intKey("general", "flowThreshold", "", "KB a session must move to be reported by on_flow_report", 0, 1<<30,
		func(c *Config) *int { return &c.General.FlowThreshold }),

	portKey("rtsp", "rtsp-port", "RTSP port (TCP); 0 = RTSP off. 554 needs root on Linux and collides with Windows services",
		func(c *Config) *int { return &c.RTSP.Port }),
	intKey("rtsp", "keepAliveSecond", "rtsp-keepalive", "seconds without a request or RTCP before a session is closed", 1, 3600,
		func(c *Config) *int { return &c.RTSP.KeepAliveSecond }),
	boolKey("rtsp", "authBasic", "rtsp-auth-basic", "1 = offer Basic auth besides Digest (Basic sends the password in clear)",
		func(c *Config) *bool { return &c.RTSP.AuthBasic }),
	rangeKey("rtsp", "rtp_port_range", "rtsp-rtp-port-range", "UDP ports for RTSP's RTP/RTCP pairs (UDP transport)",
		func(c *Config) *PortRange { return &c.RTSP.RTPPortRange }),

	portKey("rtmp", "rtmp-port", "RTMP port (TCP); 0 = RTMP off", func(c *Config) *int { return &c.RTMP.Port }),
	intKey("rtmp", "keepAliveSecond", "rtmp-keepalive", "seconds an RTMP publisher (or a client not yet playing) may send nothing before it is dropped; players are dropped by their writes instead", 1, 3600,
		func(c *Config) *int { return &c.RTMP.KeepAliveSecond }),
	portKey("http", "http-port", "HTTP port (HTTP-FLV, WS-FLV, API); 0 = HTTP off", func(c *Config) *int { return &c.HTTP.Port }),

	portKey("rtp_proxy", "rtp-port", "RTP ingest port (UDP and TCP); 0 = off", func(c *Config) *int { return &c.RTPProxy.Port }),
	rangeKey("rtp_proxy", "port_range", "rtp-port-range", "ports for openRtpServer with port=0",
		func(c *Config) *PortRange { return &c.RTPProxy.PortRange }),
	intKey("rtp_proxy", "timeoutSec", "rtp-timeout", "seconds without packets before an RTP stream ends", 1, 3600,
		func(c *Config) *int { return &c.RTPProxy.TimeoutSec }),
	intKey("rtp_proxy", "ps_pt", "", "RTP payload type that carries MPEG-PS", 0, 127,
		func(c *Config) *int { return &c.RTPProxy.PSPT }),
	intKey("rtp_proxy", "ts_pt", "", "RTP payload type that carries MPEG-TS", 0, 127,
		func(c *Config) *int { return &c.RTPProxy.TSPT }),

	{section: "api", name: "secret", flag: "api-secret", help: "secret every /index/api/ call must pass; change it",
		set: func(c *Config, v string) error { c.API.Secret = v; return nil },
		get: func(c *Config) string { return c.API.Secret }},

	{section: "log", name: "level", flag: "log-level", help: "trace | debug | info | warn | error (trace logs every RTSP request and reply)",
		set: func(c *Config, v string) error {
			switch strings.ToLower(v) {
			case "trace", "debug", "info", "warn", "error":
				c.Log.Level = strings.ToLower(v)
				return nil
			}
			return fmt.Errorf("%q is not a level (want trace, debug, info, warn or error)", v)
		},
		get: func(c *Config) string { return c.Log.Level }},

	usersKey("publish", "user:password[,user:password...] allowed to publish; empty = anyone",
		func(c *Config) *[]User { return &c.Auth.Publish }),
	usersKey("play", "user:password[,user:password...] allowed to play; empty = anyone",
		func(c *Config) *[]User { return &c.Auth.Play }),
	{section: "auth", name: "realm", help: "realm sent in auth challenges",
		set: func(c *Config, v string) error { c.Auth.Realm = v; return nil },
		get: func(c *Config) string { return c.Auth.Realm }},

	intKey("hub", "ring_size", "ring-size", "RTP packets kept per stream (access-unit views of RTMP/FLV keep a quarter as many frames): the GOP cache and a slow reader's slack", 64, 1<<20,
		func(c *Config) *int { return &c.Hub.RingSize }),
	{section: "hub", name: "slow_reader", flag: "slow-reader", help: "skip = a reader that falls behind jumps to the newest keyframe; close = it is disconnected",
		set: func(c *Config, v string) error {
			if v != "skip" && v != "close" {
				return fmt.Errorf("%q is not a policy (want skip or close)", v)
			}
			c.Hub.SlowReader = v
			return nil
		},
		get: func(c *Config) string { return c.Hub.SlowReader }},
}

// Default returns the embedded defaults.
func Default() *Config {
	c := &Config{}
	c.General.ListenIP = "::"
	c.RTSP.Port = 8554
	c.RTSP.KeepAliveSecond = 15
	c.RTSP.RTPPortRange = PortRange{30000, 30999}
	c.RTMP.Port = 1935
	c.RTMP.KeepAliveSecond = 15
	c.HTTP.Port = 8080
	c.RTPProxy.Port = 10000
	c.RTPProxy.PortRange = PortRange{31000, 31999}
	c.RTPProxy.TimeoutSec = 15
	c.RTPProxy.PSPT = 96
	c.RTPProxy.TSPT = 33
	c.API.Secret = "berth-change-me"
	c.Metrics.Enable = true
	c.Log.Level = "info"
	c.Auth.Realm = "berth"
	c.Hub.RingSize = 4096
	c.Hub.SlowReader = "skip"
	c.General.MediaServerID = "your_server_id"
	c.General.StreamNoneReaderDelayMS = 20000
	c.General.MaxStreamWaitMS = 15000
	c.General.FlowThreshold = 1024
	c.Hook.TimeoutSec = 10
	c.Hook.AliveInterval = 10
	c.Hook.Retry = 1
	c.Hook.RetryDelay = 3
	c.Hook.AdminParams = "secret=035c73f7-bb6b-4889-a715-d9eb2d1925cc"
	c.Hook.StreamChangedSchemas = "rtsp/rtmp/fmp4/ts/hls/hls.fmp4"
	defaultHLS(c)
	defaultTLS(c)
	defaultProxy(c)
	defaultRecord(c)
	defaultSRT(c)
	defaultRTC(c)
	defaultOrigin(c)
	defaultCluster(c)
	defaultLimits(c)
	return c
}

// Error is a config problem a user must fix; the CLI exits 2 on it.
type Error struct {
	File string
	Line int
	Key  string
	Err  error
}

func (e *Error) Error() string {
	where := "config"
	if e.File != "" {
		where = e.File
		if e.Line > 0 {
			where += ":" + strconv.Itoa(e.Line)
		}
	}
	if e.Key != "" {
		return fmt.Sprintf("%s: %s: %v", where, e.Key, e.Err)
	}
	return fmt.Sprintf("%s: %v", where, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

func lookup(section, name string) *key {
	for i := range keys {
		if strings.EqualFold(keys[i].section, section) && strings.EqualFold(keys[i].name, name) {
			return &keys[i]
		}
	}
	return nil
}

func knownSection(section string) bool {
	for i := range keys {
		if strings.EqualFold(keys[i].section, section) {
			return true
		}
	}
	return false
}

// LoadFile reads an ini file over the defaults.
func LoadFile(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Err: fmt.Errorf("cannot read config: %w", err)}
	}
	defer f.Close()
	c := Default()
	c.Source = path
	if err := c.Parse(f, path); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse applies ini text to c. Invalid values of known keys are errors.
// Keys that are not Berth's become Notes: ZLMediaKit's own keys (a
// ZLMediaKit config.ini is full of them) at debug plus one info line that
// counts them, keys nobody knows at warn with their line.
func (c *Config) Parse(r io.Reader, name string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	section := ""
	sectionKnown := true // Berth's or ZLMediaKit's; keys of an unknown section are not warned one by one
	unused := 0
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if line == 1 {
			text = strings.TrimPrefix(text, "\ufeff")
		}
		if text == "" || text[0] == '#' || text[0] == ';' {
			continue
		}
		if text[0] == '[' {
			end := strings.IndexByte(text, ']')
			if end < 0 {
				return &Error{File: name, Line: line, Err: fmt.Errorf("section header %q has no closing ]", text)}
			}
			section = strings.TrimSpace(text[1:end])
			sectionKnown = knownSection(section) || IsZLMediaKitSection(section)
			if !sectionKnown {
				c.note(slog.LevelWarn, name, line, fmt.Sprintf("unknown section [%s], its keys are ignored (neither Berth nor ZLMediaKit has it)", section))
			}
			continue
		}
		eq := strings.IndexByte(text, '=')
		if eq < 0 {
			return &Error{File: name, Line: line, Err: fmt.Errorf("line %q is not key=value", text)}
		}
		k := strings.TrimSpace(text[:eq])
		v := strings.TrimSpace(text[eq+1:])
		if ok, err := c.pullLine(section, k, v); ok || err != nil {
			if err != nil {
				return &Error{File: name, Line: line, Err: err}
			}
			continue
		}
		if kd := lookup(section, k); kd != nil {
			if err := kd.set(c, v); err != nil {
				return &Error{File: name, Line: line, Key: "[" + kd.section + "] " + kd.name, Err: err}
			}
			continue
		}
		switch {
		case IsZLMediaKitKey(section, k):
			unused++
			c.note(slog.LevelDebug, name, line, fmt.Sprintf("[%s] %s is a ZLMediaKit key Berth does not use (yet); ignored", section, k))
		case !sectionKnown:
			// the section's warning covers it
		default:
			msg := fmt.Sprintf("unknown key [%s] %s, ignored (neither Berth nor ZLMediaKit has it)", section, k)
			if s := suggest(section, k); s != "" {
				msg += "; did you mean " + s + "?"
			}
			c.note(slog.LevelWarn, name, line, msg)
		}
	}
	if err := sc.Err(); err != nil {
		return &Error{File: name, Err: err}
	}
	if unused > 0 {
		c.note(slog.LevelInfo, name, 0, fmt.Sprintf("%d ZLMediaKit keys are not used by Berth (yet); --log-level debug lists them", unused))
	}
	return nil
}

// Flag is one command-line override: its name (without dashes), help, and
// the key it sets.
type Flag struct {
	Name, Help, Key, Default string
	Bool                     bool
	set                      func(c *Config, v string) error
}

// Flags lists every flag that overrides a key, for the CLI to register.
func Flags() []Flag {
	d := Default()
	var out []Flag
	for _, k := range keys {
		if k.flag == "" {
			continue
		}
		b := k.get(d)
		out = append(out, Flag{Name: k.flag, Help: k.help + " ([" + k.section + "] " + k.name + ")",
			Key: "[" + k.section + "] " + k.name, Default: b,
			Bool: (b == "0" || b == "1") && strings.HasPrefix(k.help, "1 ="), set: k.set})
	}
	return out
}

// Apply sets the flag's key on c.
func (f Flag) Apply(c *Config, v string) error {
	if err := f.set(c, v); err != nil {
		return &Error{Key: "--" + f.Name, Err: err}
	}
	return nil
}

// FlagFor returns the flag and key names for a section/key, for error
// messages that tell the user how to change a setting.
func FlagFor(section, name string) (flag, keyName string) {
	if k := lookup(section, name); k != nil {
		if k.flag != "" {
			flag = "--" + k.flag
		}
		return flag, "[" + k.section + "] " + k.name
	}
	return "", "[" + section + "] " + name
}

// Validate checks relations between keys.
func (c *Config) Validate() error {
	for _, r := range []struct {
		key string
		r   PortRange
	}{{"[rtsp] rtp_port_range", c.RTSP.RTPPortRange}, {"[rtp_proxy] port_range", c.RTPProxy.PortRange}} {
		if r.r.Lo > r.r.Hi {
			return &Error{Key: r.key, Err: errors.New("range is empty (low end above high end)")}
		}
	}
	return nil
}

// WriteDefault writes the annotated default config: every key, commented.
func WriteDefault(w io.Writer) {
	d := Default()
	fmt.Fprintln(w, "; Berth configuration, ZLMediaKit's ini form. Every key shows its default.")
	fmt.Fprintln(w, "; Flags override the file: berth -c config.ini --rtsp-port 8554 --log-level trace")
	section := ""
	for _, k := range keys {
		if k.section != section {
			section = k.section
			fmt.Fprintf(w, "\n[%s]\n", section)
		}
		fmt.Fprintf(w, "; %s", k.help)
		if k.flag != "" {
			fmt.Fprintf(w, " (flag --%s)", k.flag)
		}
		fmt.Fprintf(w, "\n%s=%s\n", k.name, k.get(d))
	}
}

func setPort(p *int, v string) error {
	return setInt(p, v, 0, 65535)
}

func setInt(p *int, v string, lo, hi int) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("%q is not a number", v)
	}
	if n < lo || n > hi {
		return fmt.Errorf("%d is out of range %d-%d", n, lo, hi)
	}
	*p = n
	return nil
}

func setBool(p *bool, v string) error {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		*p = true
	case "0", "false", "no", "off", "":
		*p = false
	default:
		return fmt.Errorf("%q is not 0 or 1", v)
	}
	return nil
}

func setRange(p *PortRange, v string) error {
	lo, hi, ok := strings.Cut(v, "-")
	if !ok {
		return fmt.Errorf("%q is not a range like 30000-30999", v)
	}
	var r PortRange
	if err := setInt(&r.Lo, strings.TrimSpace(lo), 1, 65535); err != nil {
		return err
	}
	if err := setInt(&r.Hi, strings.TrimSpace(hi), 1, 65535); err != nil {
		return err
	}
	if r.Lo > r.Hi {
		return fmt.Errorf("range %q is empty", v)
	}
	*p = r
	return nil
}

func setUsers(p *[]User, v string) error {
	var us []User
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, pass, ok := strings.Cut(part, ":")
		if !ok || name == "" {
			return fmt.Errorf("%q is not user:password", part)
		}
		us = append(us, User{Name: name, Password: pass})
	}
	*p = us
	return nil
}
