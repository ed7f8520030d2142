package config

// Limits are Berth's limits against abuse (docs/reliability.md#limits-against-abuse).
// Each lives in the section of what it limits; where ZLMediaKit has a key
// for it ([http] maxReqSize, keepAliveSecond; [rtmp] handshakeSecond) it is
// that key, with ZLMediaKit's default.
type Limits struct {
	MaxConnections      int  // [general] max_connections: open TCP connections of every listener together; 0 = no cap
	MaxConnectionsPerIP int  // [general] max_connections_per_ip: from one remote IP; 0 = no cap
	ExemptLoopback      bool // [general] limits_exempt_loopback: 127.0.0.0/8 and ::1 skip the per-IP cap and the API rate

	HTTPKeepAliveSecond  int // [http] keepAliveSecond: an idle keep-alive connection is closed after this
	HTTPMaxReqSize       int // [http] maxReqSize: request body bytes (413 over it)
	HTTPMaxHeaderBytes   int // [http] max_header_bytes: request head bytes (431 over it)
	HTTPHeaderTimeoutSec int // [http] header_timeout_sec: a request head must arrive within this

	RTSPMaxHeaderBytes      int // [rtsp] max_header_bytes: request head bytes (431 and close over it)
	RTSPMaxBodyBytes        int // [rtsp] max_body_bytes: Content-Length of a request (413 and close over it)
	RTSPHeaderTimeoutSec    int // [rtsp] header_timeout_sec: a request must arrive within this of its first byte (408 and close)
	RTSPMaxInterleavedBytes int // [rtsp] max_interleaved_bytes: a '$' frame from a connection that does not publish

	RTMPMaxMessageBytes  int // [rtmp] max_message_bytes: one message (a video frame); a longer announced length closes the connection
	RTMPHandshakeSeconds int // [rtmp] handshakeSecond: the handshake must be done within this

	RTPMaxSSRCPerPort    int // [rtp_proxy] max_ssrc_per_port: concurrent SSRC streams one port accepts
	RTPUnreadyTimeoutSec int // [rtp_proxy] unready_timeout_sec: an SSRC that has not become a stream by then is dropped

	APIRequestsPerSecond int // [api] max_requests_per_second: per remote IP; 0 = no limit
	APIRequestBurst      int // [api] max_request_burst: requests at once before the rate applies
}

func init() {
	for _, k := range limitKeys() {
		insertAfterSection(k)
	}
}

func limitKeys() []key {
	l := func(c *Config) *Limits { return &c.Limits }
	return []key{
		intKey("general", "max_connections", "max-connections", "open TCP connections of all listeners and SRT sessions together; one over it is closed at once and logged; 0 = no cap", 0, 1<<24,
			func(c *Config) *int { return &l(c).MaxConnections }),
		intKey("general", "max_connections_per_ip", "max-connections-per-ip", "open TCP connections and SRT sessions from one remote IP; raise it for many players behind one NAT or proxy; 0 = no cap", 0, 1<<24,
			func(c *Config) *int { return &l(c).MaxConnectionsPerIP }),
		boolKey("general", "limits_exempt_loopback", "", "1 = clients on 127.0.0.0/8 and ::1 (local tools, a reverse proxy on this machine) skip max_connections_per_ip and [api] max_requests_per_second",
			func(c *Config) *bool { return &l(c).ExemptLoopback }),

		intKey("http", "keepAliveSecond", "", "seconds an idle keep-alive HTTP connection is kept between requests", 1, 3600,
			func(c *Config) *int { return &l(c).HTTPKeepAliveSecond }),
		intKey("http", "maxReqSize", "", "largest HTTP request body in bytes (API calls, WHIP offers); larger is answered 413", 1024, 1<<30,
			func(c *Config) *int { return &l(c).HTTPMaxReqSize }),
		intKey("http", "max_header_bytes", "", "largest HTTP request head in bytes (request line and headers); larger is answered 431", 1024, 1<<24,
			func(c *Config) *int { return &l(c).HTTPMaxHeaderBytes }),
		intKey("http", "header_timeout_sec", "", "seconds a client has to send a whole HTTP request head; a slower one (slowloris) is disconnected", 1, 600,
			func(c *Config) *int { return &l(c).HTTPHeaderTimeoutSec }),

		intKey("rtsp", "max_header_bytes", "", "largest RTSP request head in bytes; larger is answered 431 and the connection closed", 1024, 1<<20,
			func(c *Config) *int { return &l(c).RTSPMaxHeaderBytes }),
		intKey("rtsp", "max_body_bytes", "", "largest RTSP request body (Content-Length, an ANNOUNCE's SDP) in bytes; larger is answered 413 and the connection closed (at most 128 KB, gortsplib's own bound)", 1024, 128<<10,
			func(c *Config) *int { return &l(c).RTSPMaxBodyBytes }),
		intKey("rtsp", "header_timeout_sec", "", "seconds a client has to send a whole RTSP request once it began it; a slower one is answered 408 and closed", 1, 600,
			func(c *Config) *int { return &l(c).RTSPHeaderTimeoutSec }),
		intKey("rtsp", "max_interleaved_bytes", "", "largest interleaved ($) frame from a connection that is not publishing (players send only RTCP); a publisher's are bounded by the 64 KB length field", 256, 65535,
			func(c *Config) *int { return &l(c).RTSPMaxInterleavedBytes }),

		intKey("rtmp", "max_message_bytes", "", "largest RTMP message (one video frame) in bytes; a peer announcing more is disconnected", 64<<10, 0xFFFFFF,
			func(c *Config) *int { return &l(c).RTMPMaxMessageBytes }),
		intKey("rtmp", "handshakeSecond", "", "seconds a client has to finish the RTMP handshake", 1, 600,
			func(c *Config) *int { return &l(c).RTMPHandshakeSeconds }),

		intKey("rtp_proxy", "max_ssrc_per_port", "", "concurrent RTP streams (SSRCs) one port accepts; packets of a new SSRC over it are dropped and logged", 1, 1<<20,
			func(c *Config) *int { return &l(c).RTPMaxSSRCPerPort }),
		intKey("rtp_proxy", "unready_timeout_sec", "", "seconds an SSRC may send packets without becoming a stream (no decodable tracks) before it is dropped", 1, 3600,
			func(c *Config) *int { return &l(c).RTPUnreadyTimeoutSec }),

		intKey("api", "max_requests_per_second", "", "HTTP API calls a second per remote IP; more are answered 429 with Retry-After; 0 = no limit", 0, 1<<20,
			func(c *Config) *int { return &l(c).APIRequestsPerSecond }),
		intKey("api", "max_request_burst", "", "HTTP API calls one remote IP may make at once before max_requests_per_second applies", 1, 1<<20,
			func(c *Config) *int { return &l(c).APIRequestBurst }),
	}
}

func defaultLimits(c *Config) {
	c.Limits = Limits{
		MaxConnections: 10000, MaxConnectionsPerIP: 100, ExemptLoopback: true,
		HTTPKeepAliveSecond: 30, HTTPMaxReqSize: 40960, HTTPMaxHeaderBytes: 16 << 10, HTTPHeaderTimeoutSec: 10,
		RTSPMaxHeaderBytes: 16 << 10, RTSPMaxBodyBytes: 64 << 10, RTSPHeaderTimeoutSec: 10, RTSPMaxInterleavedBytes: 4096,
		RTMPMaxMessageBytes: 8 << 20, RTMPHandshakeSeconds: 15,
		RTPMaxSSRCPerPort: 256, RTPUnreadyTimeoutSec: 10,
		APIRequestsPerSecond: 20, APIRequestBurst: 100,
	}
}
