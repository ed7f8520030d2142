package config

import (
	"fmt"
	"strconv"
)

// SRT is ZLMediaKit's [srt] section: the SRT listener that takes MPEG-TS
// from publishers (m=publish) and sends it to players (m=request); see
// docs/srt.md.
type SRT struct {
	Port       int    // [srt] port: UDP; 0 = off
	TimeoutSec int    // [srt] timeoutSec: a peer silent this long is dropped
	LatencyMul int    // [srt] latencyMul: the receive latency floor is latencyMul x 30 ms (an assumed internet RTT); 4 = SRT's usual 120 ms
	PassPhrase string // [srt] passPhrase: AES key phrase (10-79 bytes); empty = no encryption
	PBKeyLen   int    // [srt] pbkeylen: AES key length in bytes (16, 24, 32) when Berth sets it; a caller's own choice wins
}

func init() {
	for _, k := range srtKeys() {
		insertAfterSection(k)
	}
}

func srtKeys() []key {
	return []key{
		portKey("srt", "srt-port", "SRT port (UDP): MPEG-TS publish with streamid #!::r=app/stream,m=publish, play with m=request; 0 = off",
			func(c *Config) *int { return &c.SRT.Port }),
		intKey("srt", "timeoutSec", "", "seconds an SRT peer may send nothing before Berth drops it", 1, 600,
			func(c *Config) *int { return &c.SRT.TimeoutSec }),
		intKey("srt", "latencyMul", "srt-latency-mul", "SRT latency as a multiple of 30 ms (an assumed round trip): 4 = 120 ms, SRT's default; a caller asking for more gets more", 1, 100,
			func(c *Config) *int { return &c.SRT.LatencyMul }),
		{section: "srt", name: "passPhrase", flag: "srt-passphrase",
			help: "SRT encryption passphrase (10 to 79 characters); callers must use the same one; empty = no encryption",
			set: func(c *Config, v string) error {
				if v != "" && (len(v) < 10 || len(v) > 79) {
					return fmt.Errorf("an SRT passphrase has 10 to 79 characters, this one %d; use a longer one, or none for no encryption", len(v))
				}
				c.SRT.PassPhrase = v
				return nil
			},
			get: func(c *Config) string { return c.SRT.PassPhrase }},
		{section: "srt", name: "pbkeylen", help: "SRT AES key length in bytes: 16, 24 or 32 (the caller's choice wins, as in libsrt)",
			set: func(c *Config, v string) error {
				n, err := strconv.Atoi(v)
				if err != nil || (n != 16 && n != 24 && n != 32) {
					return fmt.Errorf("pbkeylen %q: SRT keys are 16, 24 or 32 bytes (AES-128, -192, -256)", v)
				}
				c.SRT.PBKeyLen = n
				return nil
			},
			get: func(c *Config) string { return strconv.Itoa(c.SRT.PBKeyLen) }},
	}
}

func defaultSRT(c *Config) {
	c.SRT = SRT{Port: 9000, TimeoutSec: 5, LatencyMul: 4, PBKeyLen: 16}
}
