package bench

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"strconv"
	"time"
)

// RTP-proxy, SRT and WebRTC inputs: RTP datagrams carrying damaged MPEG-TS,
// MPEG-PS or raw payloads to the shared port and to openRtpServer ports
// (and the same as RFC 4571 frames over TCP), SRT handshakes (the SRT
// draft, section 3.2.1) with odd versions, types, cookies and stream ids,
// and STUN/DTLS junk to WebRTC's ICE sockets.

// chooseTargets lists the inputs for the listeners the config names.
func (c *chaosRun) chooseTargets() []chaosTarget {
	var t []chaosTarget
	add := func(addr, name string, f chaosInput) {
		if addr != "" {
			t = append(t, chaosTarget{name, f})
		}
	}
	add(c.cfg.RTSP, "rtsp-request", chaosRTSPRequest)
	add(c.cfg.RTSP, "rtsp-interleaved", chaosRTSPInterleaved)
	add(c.cfg.RTMP, "rtmp-handshake", chaosRTMPHandshake)
	add(c.cfg.RTMP, "rtmp-chunks", chaosRTMPChunks)
	add(c.cfg.HTTP, "http-request", chaosHTTPRequest)
	add(c.cfg.HTTP, "websocket", chaosWebSocket)
	add(c.cfg.HTTP, "api", chaosAPI)
	add(c.cfg.HTTP, "whip-whep", chaosWHIPWHEP)
	add(c.cfg.RTPUDP, "rtp-udp", chaosRTPUDP)
	add(c.cfg.RTP, "rtp-tcp", chaosRTPTCP)
	add(c.cfg.SRT, "srt", chaosSRT)
	add(c.cfg.RTC, "rtc-udp", chaosRTCUDP)
	add(c.cfg.RTCTCP, "rtc-tcp", chaosRTCTCP)
	return append(t, c.tlsTargets()...)
}

// chaosSSRCs bounds the streams junk can open on the shared RTP port: each
// new SSRC there is a stream until it times out.
const chaosSSRCs = 8

// rtpProxyPacket is an RTP packet whose payload is MPEG-TS, MPEG-PS or raw
// bytes, damaged or not.
func rtpProxyPacket(r *rand.Rand) []byte {
	h := make([]byte, 12)
	h[0] = 0x80
	h[1] = byte(oneOfInt(r, 33, 96, 97, 98, 0, 127))
	binary.BigEndian.PutUint16(h[2:], uint16(r.Uint32()))
	binary.BigEndian.PutUint32(h[4:], r.Uint32())
	binary.BigEndian.PutUint32(h[8:], 0xc4a05000+uint32(r.IntN(chaosSSRCs)))
	var payload []byte
	switch r.IntN(4) {
	case 0: // MPEG-TS: 188-byte packets, sync byte first
		for n := 1 + r.IntN(7); n > 0; n-- {
			p := make([]byte, 188)
			p[0], p[1], p[2], p[3] = 0x47, byte(r.IntN(0x20)), byte(r.Uint32()), 0x10|byte(r.IntN(16))
			if r.IntN(2) == 0 {
				copy(p[4:], []byte{0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5})
			}
			payload = append(payload, p...)
		}
	case 1: // MPEG-PS: a pack header, a system header or PES
		payload = append([]byte{0, 0, 1, byte(oneOfInt(r, 0xba, 0xbb, 0xbc, 0xe0, 0xc0))}, junk(r, r.IntN(1400))...)
		if r.IntN(2) == 0 {
			payload = append(payload, 0, 0, 1, 0xe0, byte(r.IntN(256)), byte(r.IntN(256)), 0x80, 0xc0, 10)
		}
	case 2:
		payload = rtpJunk(r)
	default:
		payload = junk(r, r.IntN(1400))
	}
	return maybeMutate(r, append(h, payload...))
}

// rtpTarget is the shared port or one of the campaign's openRtpServer
// ports; a shared address of "-" means those ports only ("" when there
// are none).
func (c *chaosRun) rtpTarget(r *rand.Rand, shared string) string {
	if len(c.rtpPorts) > 0 && (r.IntN(2) == 0 || shared == "-") {
		return net.JoinHostPort(c.rtpHost, strconv.Itoa(c.rtpPorts[r.IntN(len(c.rtpPorts))]))
	}
	if shared == "-" {
		return ""
	}
	return shared
}

// sendDatagrams sends each datagram from one fresh socket and reads any
// answer for up to d.
func sendDatagrams(ctx context.Context, addr string, d time.Duration, dgrams ...[]byte) error {
	conn, err := (&net.Dialer{}).DialContext(ctx, "udp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, g := range dgrams {
		conn.Write(g) // a refused datagram (ICMP) is no error of the server's
	}
	if d > 0 {
		conn.SetReadDeadline(time.Now().Add(d))
		conn.Read(make([]byte, 2048))
	}
	return nil
}

func chaosRTPUDP(ctx context.Context, c *chaosRun, r *rand.Rand) error {
	var g [][]byte
	for n := 1 + r.IntN(8); n > 0; n-- {
		g = append(g, rtpProxyPacket(r))
	}
	addr := c.rtpTarget(r, c.cfg.RTPUDP)
	if addr == "" {
		return nil
	}
	return sendDatagrams(ctx, addr, 0, g...)
}

func chaosRTPTCP(ctx context.Context, c *chaosRun, r *rand.Rand) error {
	conn, err := dial(ctx, c.rtpTarget(r, c.cfg.RTP))
	if err != nil {
		return err
	}
	var msg []byte
	for n := 1 + r.IntN(8); n > 0; n-- {
		p := rtpProxyPacket(r)
		length := len(p)
		if r.IntN(6) == 0 {
			length = r.IntN(65536)
		}
		msg = append(binary.BigEndian.AppendUint16(msg, uint16(length)), p...)
	}
	return exchange(ctx, conn, maybeMutate(r, msg), 100*time.Millisecond)
}

// srtHandshake is an SRT control packet of type handshake: the 16-byte
// header, the 48-byte handshake and, for a conclusion, a stream id
// extension.
func srtHandshake(r *rand.Rand, conclusion bool, cookie uint32, streamID string) []byte {
	b := make([]byte, 16+48)
	b[0] = 0x80 // control, type 0 = handshake
	binary.BigEndian.PutUint32(b[8:], uint32(time.Now().UnixMicro()))
	hs := b[16:]
	// An induction is HSv4 with the UDT stream type 2; a conclusion is HSv5
	// with the HSREQ and CONFIG (stream id) extension flags.
	version, ext, typ := uint32(4), uint16(2), uint32(1)
	if conclusion {
		version, ext, typ = 5, 1|4, 0xffffffff
	}
	binary.BigEndian.PutUint32(hs[0:], version)
	binary.BigEndian.PutUint16(hs[6:], ext)
	binary.BigEndian.PutUint32(hs[8:], r.Uint32()&0x7fffffff) // initial sequence number
	binary.BigEndian.PutUint32(hs[12:], 1500)                 // MTU
	binary.BigEndian.PutUint32(hs[16:], 8192)                 // flow window
	binary.BigEndian.PutUint32(hs[20:], typ)
	binary.BigEndian.PutUint32(hs[24:], r.Uint32()|1) // socket id
	binary.BigEndian.PutUint32(hs[28:], cookie)
	copy(hs[32:], net.IPv4(127, 0, 0, 1).To4())
	if !conclusion {
		return b
	}
	// HSREQ: SRT version 1.4, flags, latencies (section 3.2.1.1).
	b = binary.BigEndian.AppendUint16(b, 1)
	b = binary.BigEndian.AppendUint16(b, 3)
	b = binary.BigEndian.AppendUint32(b, 0x010400)
	b = binary.BigEndian.AppendUint32(b, 0xbf)
	b = binary.BigEndian.AppendUint32(b, 120<<16|120)
	// Stream id (section 3.2.1.3): 4-byte words, each little-endian.
	sid := []byte(streamID)
	for len(sid)%4 != 0 {
		sid = append(sid, 0)
	}
	b = binary.BigEndian.AppendUint16(b, 5)
	b = binary.BigEndian.AppendUint16(b, uint16(len(sid)/4))
	for i := 0; i < len(sid); i += 4 {
		b = append(b, sid[i+3], sid[i+2], sid[i+1], sid[i])
	}
	return b
}

func chaosSRT(ctx context.Context, c *chaosRun, r *rand.Rand) error {
	conn, err := (&net.Dialer{}).DialContext(ctx, "udp", c.cfg.SRT)
	if err != nil {
		return err
	}
	defer conn.Close()
	if r.IntN(3) == 0 { // junk, or a damaged induction
		conn.Write(mutate(r, srtHandshake(r, false, 0, "")))
		return nil
	}
	conn.Write(srtHandshake(r, false, 0, ""))
	conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	reply := make([]byte, 1500)
	n, err := conn.Read(reply)
	if err != nil || n < 16+32 {
		return nil
	}
	cookie := binary.BigEndian.Uint32(reply[16+28:])
	app, stream, _ := cutPath(c.cfg.Path)
	sid := oneOf(r, "#!::r="+app+"/chaos_s"+strconv.Itoa(r.IntN(8))+",m=publish", "#!::r="+app+"/"+stream+",m=request",
		"#!::r=,m=", "#!::"+weirdString(r), weirdString(r), app+"/"+stream)
	conn.Write(maybeMutate(r, srtHandshake(r, true, cookie, sid)))
	conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	conn.Read(reply)
	// A few data packets after the handshake, then silence: the server's
	// peer idle timeout must end what this opened.
	for n := r.IntN(4); n > 0; n-- {
		conn.Write(append([]byte{0, 0, 0, byte(n), 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, junk(r, 188)...))
	}
	return nil
}

// stunBinding is a STUN binding request (RFC 8489 section 5) with a
// USERNAME that may or may not name a session.
func stunBinding(r *rand.Rand) []byte {
	user := oneOf(r, "abcd:efgh", weirdString(r), "")
	if len(user) > 500 {
		user = user[:500]
	}
	attr := binary.BigEndian.AppendUint16(nil, 0x0006)
	attr = binary.BigEndian.AppendUint16(attr, uint16(len(user)))
	attr = append(attr, user...)
	for len(attr)%4 != 0 {
		attr = append(attr, 0)
	}
	b := binary.BigEndian.AppendUint16(nil, 0x0001)
	b = binary.BigEndian.AppendUint16(b, uint16(len(attr)))
	b = binary.BigEndian.AppendUint32(b, 0x2112A442)
	b = append(b, junk(r, 12)...)
	return append(b, attr...)
}

func rtcJunk(r *rand.Rand) []byte {
	switch r.IntN(4) {
	case 0:
		return append([]byte{0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 100, 1}, junk(r, r.IntN(200))...) // DTLS ClientHello-ish
	case 1:
		return rtpJunk(r)
	}
	return maybeMutate(r, stunBinding(r))
}

func chaosRTCUDP(ctx context.Context, c *chaosRun, r *rand.Rand) error {
	var g [][]byte
	for n := 1 + r.IntN(4); n > 0; n-- {
		g = append(g, rtcJunk(r))
	}
	return sendDatagrams(ctx, c.cfg.RTC, 0, g...)
}

func chaosRTCTCP(ctx context.Context, c *chaosRun, r *rand.Rand) error {
	conn, err := dial(ctx, c.cfg.RTCTCP)
	if err != nil {
		return err
	}
	var msg []byte
	for n := 1 + r.IntN(4); n > 0; n-- {
		p := rtcJunk(r)
		msg = append(binary.BigEndian.AppendUint16(msg, uint16(len(p))), p...) // RFC 4571 framing (ICE-TCP, RFC 6544)
	}
	return exchange(ctx, conn, maybeMutate(r, msg), 100*time.Millisecond)
}
