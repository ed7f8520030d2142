package bench

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"
)

// HTTP-port inputs: requests with bad methods, paths, versions and headers
// (huge ones too), WebSocket upgrades followed by junk frames (RFC 6455
// section 5.2), API calls with random, missing and oversized arguments, and
// WHIP/WHEP offers of damaged SDP.

func (c *chaosRun) httpPath(r *rand.Rand) string {
	switch r.IntN(12) {
	case 0:
		return "/" + c.cfg.Path + ".live.flv"
	case 1:
		return "/" + chaosRTSPPath(r) + oneOf(r, ".live.mp4", ".live.ts", ".live.flv")
	case 2:
		return "/" + oneOf(r, c.cfg.Path, chaosRTSPPath(r)) + oneOf(r, "/hls.m3u8", "/hls.fmp4.m3u8", "/0.ts", "/init.mp4", "/hls.m3u8?_HLS_msn=99999&_HLS_part=-1")
	case 3:
		return oneOf(r, "/", "/berth/status.json", "/berth/health", "/metrics", "/index/api/getMediaList", "/debug/pprof/", "/favicon.ico")
	case 4:
		return "/" + url.PathEscape(weirdString(r))
	case 5:
		return "/" + strings.Repeat("a/", r.IntN(50000))
	case 6:
		return oneOf(r, "*", "", "//", "/%", "/%zz", "http://x/", "/..%2f..%2fetc/passwd", "/record/../../etc/passwd")
	case 7:
		return "/index/api/" + oneOf(r, "webrtc", "whep", "whip") + "?app=live&stream=" + url.QueryEscape(weirdString(r))
	}
	return "/" + chaosRTSPPath(r) + "." + oneOf(r, "flv", "mp4", "ts", "m3u8", "live", "live.")
}

func (c *chaosRun) httpRequest(r *rand.Rand, upgrade bool) []byte {
	var b strings.Builder
	method := oneOf(r, "GET", "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE", "G\x00T", "")
	fmt.Fprintf(&b, "%s %s %s\r\n", method, c.httpPath(r), oneOf(r, "HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/9.9", "HTTP/1.1 x", ""))
	if r.IntN(6) != 0 {
		fmt.Fprintf(&b, "Host: %s\r\n", c.cfg.HTTP)
	}
	if upgrade {
		b.WriteString("Connection: Upgrade\r\nUpgrade: websocket\r\n")
		if r.IntN(5) != 0 {
			fmt.Fprintf(&b, "Sec-WebSocket-Key: %s\r\n", oneOf(r, "dGhlIHNhbXBsZSBub25jZQ==", weirdString(r)))
		}
		fmt.Fprintf(&b, "Sec-WebSocket-Version: %s\r\n", oneOf(r, "13", "13", "8", weirdNumber(r)))
	}
	for n := r.IntN(5); n > 0; n-- {
		switch r.IntN(8) {
		case 0:
			fmt.Fprintf(&b, "Content-Length: %s\r\n", weirdNumber(r))
		case 1:
			b.WriteString("Transfer-Encoding: chunked\r\n")
		case 2:
			fmt.Fprintf(&b, "Range: bytes=%s-%s\r\n", weirdNumber(r), weirdNumber(r))
		case 3:
			fmt.Fprintf(&b, "X-Huge: %s\r\n", strings.Repeat("h", r.IntN(2<<20)))
		case 4:
			fmt.Fprintf(&b, "%s: %s\r\n", weirdString(r), weirdString(r))
		case 5:
			fmt.Fprintf(&b, "Origin: %s\r\nAccess-Control-Request-Method: %s\r\n", weirdString(r), weirdString(r))
		case 6:
			fmt.Fprintf(&b, "Cookie: %s\r\n", weirdString(r))
		case 7:
			fmt.Fprintf(&b, "Content-Type: %s\r\n", oneOf(r, "application/json", "application/x-www-form-urlencoded", "multipart/form-data; boundary=", "application/sdp"))
		}
	}
	b.WriteString("\r\n")
	if r.IntN(3) == 0 {
		b.Write(junk(r, r.IntN(2000)))
	}
	return []byte(b.String())
}

func chaosHTTPRequest(ctx context.Context, c *chaosRun, r *rand.Rand) error {
	conn, err := c.dial(ctx, c.cfg.HTTP)
	if err != nil {
		return err
	}
	var msg []byte
	for n := 1 + r.IntN(2); n > 0; n-- {
		msg = append(msg, maybeMutate(r, c.httpRequest(r, false))...)
	}
	return exchange(ctx, conn, msg, 300*time.Millisecond)
}

func chaosWebSocket(ctx context.Context, c *chaosRun, r *rand.Rand) error {
	conn, err := c.dial(ctx, c.cfg.HTTP)
	if err != nil {
		return err
	}
	var msg []byte
	if r.IntN(2) == 0 {
		// A sound upgrade to the legitimate stream, so the frames behind it
		// (sent at once, before the 101: the server reads them with the
		// request) reach the parser of a playing WebSocket.
		msg = fmt.Appendf(nil, "GET /%s.live.%s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
			c.cfg.Path, oneOf(r, "flv", "ts", "mp4"), c.cfg.HTTP)
	} else {
		msg = c.httpRequest(r, true)
		if r.IntN(3) == 0 {
			msg = mutate(r, msg)
		}
	}
	for n := r.IntN(6); n > 0; n-- {
		msg = append(msg, maybeMutate(r, wsFrame(r))...)
	}
	return exchange(ctx, conn, msg, 300*time.Millisecond)
}

// wsFrame is a client frame: opcode, mask and a length that may lie.
func wsFrame(r *rand.Rand) []byte {
	payload := junk(r, r.IntN(300))
	op := byte(oneOfInt(r, 1, 2, 8, 9, 10, 0, 3, 15))
	f := []byte{0x80 | op}
	mask := byte(0x80)
	if r.IntN(6) == 0 {
		mask = 0 // clients must mask (section 5.3)
	}
	switch n := len(payload); {
	case r.IntN(6) == 0:
		f = append(f, mask|127)
		f = binary.BigEndian.AppendUint64(f, r.Uint64())
	case n < 126:
		f = append(f, mask|byte(n))
	default:
		f = binary.BigEndian.AppendUint16(append(f, mask|126), uint16(n))
	}
	if mask != 0 {
		f = append(f, junk(r, 4)...)
	}
	return append(f, payload...)
}

func oneOfInt(r *rand.Rand, v ...int) int { return v[r.IntN(len(v))] }

// chaosAPICalls are the calls the campaign makes with the secret: none ends
// the legitimate stream or its readers, changes the config, restarts the
// server or leaves something running (proxies, pushers, recordings).
var chaosAPICalls = []string{"getApiList", "version", "getServerConfig", "getStatistic", "getThreadsLoad",
	"getWorkThreadsLoad", "getMediaList", "getMediaInfo", "isMediaOnline", "getMediaPlayerList", "getAllSession",
	"openRtpServer", "closeRtpServer", "listRtpServer", "getRtpInfo", "startSendRtp", "startSendRtpPassive",
	"stopSendRtp", "listRtpSender", "listStreamPusherProxy", "getProxyPusherInfo", "delStreamPusherProxy",
	"listStreamProxy", "getProxyInfo", "delStreamProxy", "isRecording", "stopRecord", "seekRecordStamp",
	"setRecordSpeed", "getMp4RecordFile", "close_stream"}

// chaosAPIOnlyWithoutSecret are calls that must refuse a caller without the
// secret; the campaign never sends them the right one.
var chaosAPIOnlyWithoutSecret = []string{"setServerConfig", "restartServer", "close_streams", "kick_session",
	"kick_sessions", "addStreamProxy", "addStreamPusherProxy", "startRecord", "deleteRecordDirectory"}

var chaosAPIParams = []string{"app", "stream", "vhost", "schema", "id", "key", "stream_id", "port", "tcp_mode",
	"ssrc", "url", "dst_url", "dst_port", "is_udp", "local_port", "src_port", "pt", "use_ps", "only_audio", "type",
	"period", "speed", "stamp", "customized_path", "max_second", "timeout_sec", "force", "name", "peer_ip",
	"enable_tcp", "sdp", "close_delay_ms", "auto_close", "retry_count", "rtp_type"}

func (c *chaosRun) apiRequest(r *rand.Rand) []byte {
	withSecret := r.IntN(4) != 0
	call := chaosAPICalls[r.IntN(len(chaosAPICalls))]
	switch r.IntN(10) {
	case 0:
		call, withSecret = chaosAPIOnlyWithoutSecret[r.IntN(len(chaosAPIOnlyWithoutSecret))], false
	case 1:
		call = oneOf(r, strings.ToUpper(call), weirdString(r), "", "../api/version")
	}
	q := map[string]string{}
	if withSecret {
		q["secret"] = c.cfg.Secret
	} else if r.IntN(2) == 0 {
		q["secret"] = weirdString(r)
	}
	for n := r.IntN(6); n > 0; n-- {
		q[chaosAPIParams[r.IntN(len(chaosAPIParams))]] = oneOf(r, weirdNumber(r), weirdString(r), "live", "chaos", "rtsp://127.0.0.1:1/x")
	}
	if q["app"]+"/"+q["stream"] == c.cfg.Path || q["stream"] == "" && call == "close_stream" {
		q["stream"] = "not_" + q["stream"] // never the legitimate stream
	}
	if id := q["stream_id"]; strings.HasPrefix(id, "chaos_rtp") {
		q["stream_id"] = "x" + id
	}
	if call == "openRtpServer" {
		q["stream_id"] = "chaos_api" + fmt.Sprint(r.IntN(chaosAPIRTPStreams)) // closed at the end
		if q["port"] != "0" {
			delete(q, "port")
		}
	}
	path := "/index/api/" + call
	var body, ctype string
	switch r.IntN(4) {
	case 0: // JSON body
		j, _ := json.Marshal(q)
		body, ctype = string(maybeMutate(r, j)), "application/json"
	case 1: // form body
		body, ctype = encodeQuery(q), "application/x-www-form-urlencoded"
	default:
		path += "?" + encodeQuery(q)
	}
	method := "GET"
	if body != "" {
		method = "POST"
	}
	return fmt.Appendf(nil, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		method, path, c.cfg.HTTP, ctype, len(body), body)
}

func encodeQuery(q map[string]string) string {
	v := url.Values{}
	for k, s := range q {
		v.Set(k, s)
	}
	return v.Encode()
}

func chaosAPI(ctx context.Context, c *chaosRun, r *rand.Rand) error {
	conn, err := c.dial(ctx, c.cfg.HTTP)
	if err != nil {
		return err
	}
	msg := c.apiRequest(r)
	if r.IntN(5) == 0 {
		msg = mutate(r, msg)
	}
	return exchange(ctx, conn, msg, 500*time.Millisecond)
}

// chaosOffer is a WebRTC offer in the shape browsers send, for damaging.
const chaosOffer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n" +
	"a=msid-semantic: WMS\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n" +
	"a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdefghijklmn\r\na=ice-options:trickle\r\n" +
	"a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n" +
	"a=setup:actpass\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\na=rtpmap:96 H264/90000\r\n" +
	"a=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=recvonly\r\na=rtcp-mux\r\n" +
	"a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdefghijklmn\r\n" +
	"a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n" +
	"a=setup:actpass\r\na=rtpmap:111 opus/48000/2\r\n"

func chaosWHIPWHEP(ctx context.Context, c *chaosRun, r *rand.Rand) error {
	conn, err := c.dial(ctx, c.cfg.HTTP)
	if err != nil {
		return err
	}
	app, stream, _ := cutPath(c.cfg.Path)
	path := "/index/api/whep?app=" + app + "&stream=" + stream
	switch r.IntN(5) {
	case 0:
		path = "/index/api/whip?app=" + app + "&stream=chaos_w" + fmt.Sprint(r.IntN(16))
	case 1:
		path = "/index/api/webrtc?type=" + oneOf(r, "play", "push", "echo", "") + "&app=" + app + "&stream=" + oneOf(r, stream+"_w", weirdString(r))
	case 2:
		path = "/index/api/" + oneOf(r, "whep/", "whip/") + url.PathEscape(weirdString(r))
	}
	offer := mutate(r, []byte(chaosOffer))
	if r.IntN(5) == 0 {
		offer = junk(r, r.IntN(3000))
	}
	method := oneOf(r, "POST", "POST", "POST", "DELETE", "PATCH", "OPTIONS")
	msg := fmt.Appendf(nil, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		method, path, c.cfg.HTTP, oneOf(r, "application/sdp", "application/trickle-ice-sdpfrag", "text/plain"), len(offer), offer)
	return exchange(ctx, conn, msg, 500*time.Millisecond)
}
