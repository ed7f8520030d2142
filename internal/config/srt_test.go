package config

import (
	"strings"
	"testing"
)

func TestSRTKeys(t *testing.T) {
	cases := []struct {
		name, ini string
		want      SRT
		err       string
	}{
		{name: "defaults", ini: "", want: SRT{Port: 9000, TimeoutSec: 5, LatencyMul: 4, PBKeyLen: 16}},
		{name: "ZLMediaKit's section", ini: "[srt]\nport=9001\ntimeoutSec=8\nlatencyMul=10\npktBufSize=8192\npassPhrase=0123456789\npbkeylen=32\n",
			want: SRT{Port: 9001, TimeoutSec: 8, LatencyMul: 10, PassPhrase: "0123456789", PBKeyLen: 32}},
		{name: "off", ini: "[srt]\nport=0\n", want: SRT{Port: 0, TimeoutSec: 5, LatencyMul: 4, PBKeyLen: 16}},
		{name: "short passphrase", ini: "[srt]\npassPhrase=short\n", err: "10 to 79 characters"},
		{name: "bad key length", ini: "[srt]\npbkeylen=20\n", err: "16, 24 or 32"},
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
			if cfg.SRT != c.want {
				t.Errorf("SRT %+v, want %+v", cfg.SRT, c.want)
			}
		})
	}
}
