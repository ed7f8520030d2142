package config

import "strings"

// TLS is what Berth serves over TLS: ZLMediaKit's [http], [rtsp] and [rtmp]
// sslport keys and the certificate, which ZLMediaKit takes only from its -s
// flag (Berth has that flag too, and keys for it so a file can say it).
//
// A listener on an sslport opens only when a certificate is configured:
// ZLMediaKit's shipped config.ini says sslport=443 under [http], and a
// user of that file who never made a certificate expects no HTTPS and no
// error. Berth's default HTTPS port is 8443 (as its HTTP port is 8080, not
// 80), so turning HTTPS on needs the certificate and nothing else.
type TLS struct {
	HTTPPort int    // [http] sslport: HTTPS, the HTTP port's handler over TLS
	RTSPPort int    // [rtsp] sslport: RTSPS (RTSP over TLS, interleaved TCP transport)
	RTMPPort int    // [rtmp] sslport: RTMPS (RTMP over TLS)
	Cert     string // [http] sslCert: PEM file with the certificate chain, and the key when Key is empty
	Key      string // [http] sslKey: PEM file with the private key; empty = in Cert's file
}

// On reports whether a certificate is configured, which is what turns the
// sslport listeners on.
func (t TLS) On() bool { return t.Cert != "" }

func init() {
	for _, k := range tlsKeys() {
		insertAfterSection(k)
	}
}

func tlsKeys() []key {
	return []key{
		portKeyNamed("http", "sslport", "http-sslport", "HTTPS port: every HTTP URL (API, page, HLS, FLV, fMP4, TS, WebSocket) over TLS; open only with a certificate (-s); 0 = off",
			func(c *Config) *int { return &c.TLS.HTTPPort }),
		stringKey("http", "sslCert", "s", "PEM file with the TLS certificate chain and (unless sslKey is set) its private key, as ZLMediaKit's -s; empty = no TLS listener",
			func(c *Config) *string { return &c.TLS.Cert }),
		stringKey("http", "sslKey", "ssl-key", "PEM file with the private key of sslCert when it is not in that file (certbot's privkey.pem)",
			func(c *Config) *string { return &c.TLS.Key }),
		portKeyNamed("rtsp", "sslport", "rtsp-sslport", "RTSPS port (RTSP over TLS, interleaved TCP transport), with the certificate of [http] sslCert; 0 = off",
			func(c *Config) *int { return &c.TLS.RTSPPort }),
		portKeyNamed("rtmp", "sslport", "rtmp-sslport", "RTMPS port (RTMP over TLS), with the certificate of [http] sslCert; 0 = off",
			func(c *Config) *int { return &c.TLS.RTMPPort }),
	}
}

func portKeyNamed(section, name, flag, help string, p func(c *Config) *int) key {
	k := portKey(section, flag, help, p)
	k.name = name
	return k
}

// insertAfterSection puts k after the last key of its section, so
// --print-config shows each section once.
func insertAfterSection(k key) {
	at := len(keys)
	for i := range keys {
		if strings.EqualFold(keys[i].section, k.section) {
			at = i + 1
		}
	}
	keys = append(keys[:at], append([]key{k}, keys[at:]...)...)
}

func defaultTLS(c *Config) {
	c.TLS = TLS{HTTPPort: 8443}
}
