package config

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name    string
		ini     string
		check   func(c *Config) bool
		warn    string // substring of a warning
		wantErr string // substring of the error
	}{
		{name: "zlm keys", ini: "[general]\nlisten_ip=0.0.0.0\n[rtsp]\nport=554\nkeepAliveSecond=30\nauthBasic=1\n[rtmp]\nport=1936\n[http]\nport=80\n[rtp_proxy]\nport=10001\n[api]\nsecret=s3\n",
			check: func(c *Config) bool {
				return c.General.ListenIP == "0.0.0.0" && c.RTSP.Port == 554 && c.RTSP.KeepAliveSecond == 30 && c.RTSP.AuthBasic &&
					c.RTMP.Port == 1936 && c.HTTP.Port == 80 && c.RTPProxy.Port == 10001 && c.API.Secret == "s3"
			}},
		{name: "comments, blanks, BOM and spaces", ini: "\ufeff; comment\n# another\n\n[rtsp]\n  port = 8555  \n",
			check: func(c *Config) bool { return c.RTSP.Port == 8555 }},
		{name: "port 0 disables", ini: "[rtmp]\nport=0\n", check: func(c *Config) bool { return c.RTMP.Port == 0 }},
		{name: "unknown section warns", ini: "[hlss]\nsegNum=3\n", warn: "x.ini:1: unknown section [hlss]"},
		{name: "unknown key warns with line", ini: "[rtsp]\nport=8554\ndirectProxyy=1\n", warn: "x.ini:3: unknown key [rtsp] directProxyy, ignored (neither Berth nor ZLMediaKit has it); did you mean directProxy?"},
		{name: "a ZLMediaKit section is not warned", ini: "[hls]\nsegNum=3\n", check: func(c *Config) bool { return len(c.Warnings) == 0 }},
		{name: "port out of range", ini: "[rtsp]\nport=70000\n", wantErr: "x.ini:2: [rtsp] port: 70000 is out of range 0-65535"},
		{name: "port not a number", ini: "[http]\nport=abc\n", wantErr: "x.ini:2: [http] port: \"abc\" is not a number"},
		{name: "bad level", ini: "[log]\nlevel=loud\n", wantErr: "[log] level"},
		{name: "bad ip", ini: "[general]\nlisten_ip=nowhere\n", wantErr: "not an IP address"},
		{name: "not key=value", ini: "[rtsp]\nport\n", wantErr: "x.ini:2: line \"port\" is not key=value"},
		{name: "users", ini: "[auth]\npublish=a:1,b:2\n", check: func(c *Config) bool { return len(c.Auth.Publish) == 2 && c.Auth.Publish[1].Password == "2" }},
		{name: "bad users", ini: "[auth]\nplay=nopass\n", wantErr: "not user:password"},
		{name: "range", ini: "[rtsp]\nrtp_port_range=40000-40010\n", check: func(c *Config) bool { return c.RTSP.RTPPortRange == PortRange{40000, 40010} }},
		{name: "zlm hook keys", ini: "[general]\nmediaServerId=b1\nflowThreshold=0\n[hook]\nenable=1\ntimeoutSec=2.5\nalive_interval=10.0\non_publish=http://h/p\non_rtp_server_timeout=http://h/t\n",
			check: func(c *Config) bool {
				return c.General.MediaServerID == "b1" && c.General.FlowThreshold == 0 && c.Hook.Enable && c.Hook.TimeoutSec == 2.5 &&
					c.Hook.AliveInterval == 10 && c.Hook.URL("on_publish") == "http://h/p" && c.Hook.OnRTPServerTimeout == "http://h/t" &&
					c.Hook.URL("on_play") == "" && c.General.StreamNoneReaderDelayMS == 20000
			}},
		{name: "hook seconds not a number", ini: "[hook]\ntimeoutSec=soon\n", wantErr: "[hook] timeoutSec"},
		{name: "empty range", ini: "[rtsp]\nrtp_port_range=5-4\n", wantErr: "empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			err := c.Parse(strings.NewReader(tc.ini), "x.ini")
			if tc.wantErr != "" {
				var ce *Error
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.As(err, &ce) {
					t.Fatalf("error %v, want *Error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil && !tc.check(c) {
				t.Errorf("config not as expected: %+v", c)
			}
			if tc.warn != "" && !strings.Contains(strings.Join(c.Warnings, "\n"), tc.warn) {
				t.Errorf("warnings %q, want one containing %q", c.Warnings, tc.warn)
			}
		})
	}
}

// TestPrintedDefaultsParseBack: --print-config output is a valid config
// that yields the defaults, and it comments every key.
func TestPrintedDefaultsParseBack(t *testing.T) {
	var b bytes.Buffer
	WriteDefault(&b)
	c := Default()
	if err := c.Parse(&b, "printed"); err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) > 0 {
		t.Errorf("printed config has unknown keys: %v", c.Warnings)
	}
	var again bytes.Buffer
	WriteDefault(&again)
	for _, k := range keys {
		if !strings.Contains(again.String(), "\n"+k.name+"=") {
			t.Errorf("key %s missing from the printed config", k.name)
		}
	}
	if strings.Count(again.String(), "\n; ") < len(keys) {
		t.Errorf("not every key is commented")
	}
}

func TestFlagsOverride(t *testing.T) {
	c := Default()
	var rtsp Flag
	for _, f := range Flags() {
		if f.Name == "rtsp-port" {
			rtsp = f
		}
	}
	if rtsp.Name == "" {
		t.Fatal("no --rtsp-port flag")
	}
	if err := rtsp.Apply(c, "9554"); err != nil || c.RTSP.Port != 9554 {
		t.Fatalf("apply: %v, port %d", err, c.RTSP.Port)
	}
	if err := rtsp.Apply(c, "99999"); err == nil || !strings.Contains(err.Error(), "--rtsp-port") {
		t.Errorf("bad flag value error %v should name the flag", err)
	}
}
