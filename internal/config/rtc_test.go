package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestRTCKeys(t *testing.T) {
	cases := []struct {
		name, ini string
		want      RTC
		err       string
	}{
		{name: "defaults", ini: "", want: RTC{Port: 8000, TCPPort: 8000}},
		{name: "ZLMediaKit's section", ini: "[rtc]\nport=8001\ntcpPort=8002\nexternIP=203.0.113.7, 2001:db8::7\ntimeoutSec=15\n",
			want: RTC{Port: 8001, TCPPort: 8002, ExternIP: []string{"203.0.113.7", "2001:db8::7"}}},
		{name: "off", ini: "[rtc]\nport=0\ntcpPort=0\n", want: RTC{}},
		{name: "externIP empty", ini: "[rtc]\nexternIP=\n", want: RTC{Port: 8000, TCPPort: 8000}},
		{name: "externIP a host name", ini: "[rtc]\nexternIP=media.example.com\n", err: "not an IP address"},
		{name: "bad port", ini: "[rtc]\nport=70000\n", err: "70000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Default()
			err := cfg.Parse(strings.NewReader(c.ini), "x.ini")
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "x.ini:2") {
					t.Fatalf("Parse: %v, want an error at x.ini:2 containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.RTC, c.want) {
				t.Errorf("RTC %+v, want %+v", cfg.RTC, c.want)
			}
		})
	}
}
