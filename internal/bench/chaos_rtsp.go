package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// RTSP inputs (RFC 2326): requests with damaged request lines, headers and
// bodies; and interleaved $-frames (section 10.12) with wrong channels and
// lengths, from a publisher on a path of the campaign's own, from a player
// of the legitimate stream, and from a connection with no session at all.

// chaosRTSPPath is a path of the campaign's, never the legitimate one.
func chaosRTSPPath(r *rand.Rand) string { return "chaos/r" + strconv.Itoa(r.IntN(32)) }

func rtspRequest(r *rand.Rand, c *chaosRun) []byte {
	method := oneOf(r, "OPTIONS", "DESCRIBE", "SETUP", "PLAY", "PAUSE", "TEARDOWN", "ANNOUNCE", "RECORD",
		"GET_PARAMETER", "SET_PARAMETER", "REDIRECT", "GET", "XYZZY", "", "DESCRIBE DESCRIBE")
	path := chaosRTSPPath(r)
	switch method {
	case "OPTIONS", "DESCRIBE", "SETUP", "PLAY", "GET_PARAMETER":
		if r.IntN(2) == 0 {
			path = c.cfg.Path // reading the legitimate stream is allowed
		}
	}
	switch r.IntN(8) {
	case 0:
		path = weirdString(r)
	case 1:
		path += "/trackID=" + weirdNumber(r)
	}
	u := "rtsp://" + c.cfg.RTSP + "/" + path
	if r.IntN(10) == 0 {
		u = oneOf(r, "*", "", "rtsp://", "rtsp://[::1", "http://x/y", strings.Repeat("a", 1+r.IntN(100000)))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s\r\n", method, u, oneOf(r, "RTSP/1.0", "RTSP/1.0", "RTSP/2.0", "HTTP/1.1", "RTSP/1.", ""))
	if r.IntN(8) != 0 {
		fmt.Fprintf(&b, "CSeq: %s\r\n", weirdNumber(r))
	}
	for n := r.IntN(5); n > 0; n-- {
		switch r.IntN(9) {
		case 0:
			fmt.Fprintf(&b, "Transport: %s\r\n", oneOf(r,
				"RTP/AVP/TCP;unicast;interleaved=0-1", "RTP/AVP/TCP;unicast;interleaved=254-255",
				"RTP/AVP/TCP;interleaved=-1", "RTP/AVP/TCP;interleaved=9999999999-1", "RTP/AVP;unicast;client_port=9-10",
				"RTP/AVP;multicast", "RTP/AVP;unicast;client_port=0-0", "RTP/AVP/UDP;mode=record;client_port=9", "junk;;;=", ""))
		case 1:
			fmt.Fprintf(&b, "Session: %s\r\n", weirdString(r))
		case 2:
			fmt.Fprintf(&b, "Content-Length: %s\r\n", weirdNumber(r))
		case 3:
			fmt.Fprintf(&b, "Authorization: %s\r\n", oneOf(r, "Basic "+weirdString(r), `Digest username="a", realm="`+weirdString(r)+`", nonce="x", uri="/", response="00"`, "Digest", "Bearer x"))
		case 4:
			fmt.Fprintf(&b, "Range: npt=%s-%s\r\n", weirdNumber(r), weirdNumber(r))
		case 5:
			fmt.Fprintf(&b, "User-Agent: %s\r\n", strings.Repeat("U", r.IntN(200000)))
		case 6:
			fmt.Fprintf(&b, "%s: %s\r\n", weirdString(r), weirdString(r))
		case 7:
			b.WriteString("Content-Type: application/sdp\r\n")
		case 8:
			fmt.Fprintf(&b, "Scale: %s\r\nSpeed: %s\r\n", weirdNumber(r), weirdNumber(r))
		}
	}
	body := ""
	if method == "ANNOUNCE" || method == "SET_PARAMETER" || r.IntN(6) == 0 {
		body = string(maybeMutate(r, []byte(synthSDP)))
		if r.IntN(2) == 0 {
			fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
		}
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return []byte(b.String())
}

func chaosRTSPRequest(ctx context.Context, c *chaosRun, r *rand.Rand) error {
	conn, err := c.dial(ctx, c.cfg.RTSP)
	if err != nil {
		return err
	}
	var msg []byte
	for n := 1 + r.IntN(3); n > 0; n-- {
		msg = append(msg, maybeMutate(r, rtspRequest(r, c))...)
	}
	return exchange(ctx, conn, msg, 300*time.Millisecond)
}

// interleaved is one $-frame: the header says channel and length, the
// payload may be shorter or longer than it says.
func interleaved(r *rand.Rand, channel byte, payload []byte) []byte {
	length := len(payload)
	switch r.IntN(6) {
	case 0:
		length = r.IntN(65536)
	case 1:
		channel = byte(r.IntN(256))
	}
	f := []byte{'$', channel, 0, 0}
	binary.BigEndian.PutUint16(f[2:], uint16(length))
	return append(f, payload...)
}

// rtpJunk is a synthetic RTP packet of the stream, often damaged.
func rtpJunk(r *rand.Rand) []byte {
	var pkt []byte
	s := newSynth(2e5, r.Uint32())
	s.seq, s.frame = uint16(r.Uint32()), r.IntN(synthGOP)
	s.nextFrame(func(p []byte) error {
		if pkt == nil || r.IntN(3) == 0 {
			pkt = append(pkt[:0], p...)
		}
		return nil
	})
	if r.IntN(5) == 0 {
		return junk(r, r.IntN(1500))
	}
	return maybeMutate(r, pkt)
}

func chaosRTSPInterleaved(ctx context.Context, c *chaosRun, r *rand.Rand) error {
	conn, err := c.dial(ctx, c.cfg.RTSP)
	if err != nil {
		return err
	}
	defer hangUp(conn)
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	base := "rtsp://" + c.cfg.RTSP + "/"
	cseq := 0
	req := func(method, url, extra, body string) (string, error) {
		cseq++
		msg := fmt.Sprintf("%s %s RTSP/1.0\r\nCSeq: %d\r\n%s", method, url, cseq, extra)
		if body != "" {
			msg += fmt.Sprintf("Content-Type: application/sdp\r\nContent-Length: %d\r\n", len(body))
		}
		if _, err := conn.Write([]byte(msg + "\r\n" + body)); err != nil {
			return "", err
		}
		return readReply(conn, 500*time.Millisecond)
	}
	mode := r.IntN(3)
	switch mode {
	case 0: // a publisher of a path of the campaign's
		url := base + chaosRTSPPath(r)
		if _, err := req("ANNOUNCE", url, "", synthSDP); err != nil {
			return err
		}
		reply, err := req("SETUP", url+"/trackID=0", "Transport: RTP/AVP/TCP;unicast;mode=record;interleaved=0-1\r\n", "")
		if err != nil {
			return err
		}
		if _, err := req("RECORD", url, "Session: "+headerValue(reply, "Session")+"\r\n", ""); err != nil {
			return err
		}
	case 1: // a player of the legitimate stream
		url := base + c.cfg.Path
		if _, err := req("DESCRIBE", url, "Accept: application/sdp\r\n", ""); err != nil {
			return err
		}
		reply, err := req("SETUP", url+"/trackID=0", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n", "")
		if err != nil {
			return err
		}
		if _, err := req("PLAY", url, "Session: "+headerValue(reply, "Session")+"\r\n", ""); err != nil {
			return err
		}
	}
	// mode 2: frames on a connection that has no session.
	var frames []byte
	for n := 1 + r.IntN(20); n > 0; n-- {
		switch r.IntN(8) {
		case 0:
			frames = append(frames, maybeMutate(r, rtspRequest(r, c))...) // a request between frames
		case 1:
			frames = append(frames, interleaved(r, 1, junk(r, r.IntN(200)))...) // RTCP channel
		default:
			frames = append(frames, interleaved(r, 0, rtpJunk(r))...)
		}
	}
	if _, err := conn.Write(maybeMutate(r, frames)); err != nil {
		return err
	}
	conn.CloseWrite()
	return drain(conn, 200*time.Millisecond)
}

// headerValue is a header of an RTSP/HTTP head ("" if missing), without
// parameters after ';'.
func headerValue(head, name string) string {
	for _, line := range strings.Split(head, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			v, _, _ = strings.Cut(v, ";")
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func headerInt(head, name string) int {
	n, _ := strconv.Atoi(headerValue(head, name))
	return n
}
