package bench

import (
	"context"
	"encoding/binary"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/berthmedia/berth/internal/flv/amf0"
)

// RTMP inputs: damaged handshakes (C0/C1/C2), and after a sound handshake
// a damaged chunk stream (Adobe RTMP 1.0 section 5.3) carrying AMF0
// commands (connect, createStream, publish or play) and FLV media messages
// with odd chunk sizes, lengths, stream ids and types.

func chaosRTMPHandshake(ctx context.Context, c *chaosRun, r *rand.Rand) error {
	conn, err := c.dial(ctx, c.cfg.RTMP)
	if err != nil {
		return err
	}
	c0c1 := append([]byte{3}, make([]byte, 1536)...)
	copy(c0c1[9:], junk(r, 64))
	return exchange(ctx, conn, mutate(r, c0c1), 300*time.Millisecond)
}

func chaosRTMPChunks(ctx context.Context, c *chaosRun, r *rand.Rand) error {
	conn, err := c.dial(ctx, c.cfg.RTMP)
	if err != nil {
		return err
	}
	defer hangUp(conn)
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	c0c1 := append([]byte{3}, make([]byte, 1536)...)
	if _, err := conn.Write(c0c1); err != nil {
		return err
	}
	s := make([]byte, 1+1536+1536)
	if _, err := io.ReadFull(conn, s); err != nil {
		return err
	}
	if _, err := conn.Write(s[1 : 1+1536]); err != nil { // C2 echoes S1
		return err
	}

	var m rtmpMessages
	m.chunkSize = 128
	if r.IntN(3) == 0 {
		size := []uint32{1, 127, 4096, 65536, 0x7fffffff, 0xffffffff, 0}[r.IntN(7)]
		m.add(2, 1, 0, be32(size)) // Set Chunk Size
		if size >= 1 && size <= 0x7fffffff {
			m.chunkSize = int(size)
		}
	}
	app, stream, _ := cutPath(c.cfg.Path)
	m.add(3, 20, 0, amf0.Encode("connect", 1, amf0.Object{{Key: "app", Value: app}, {Key: "tcUrl", Value: "rtmp://" + c.cfg.RTMP + "/" + app}, {Key: "flashVer", Value: "FMLE/3.0"}}))
	m.add(3, 20, 0, amf0.Encode("createStream", 2, nil))
	name := "chaos_m" + strconv.Itoa(r.IntN(32))
	publish := r.IntN(2) == 0
	if publish {
		m.add(3, 20, 1, amf0.Encode("publish", 3, nil, name, "live"))
	} else {
		m.add(3, 20, 1, amf0.Encode("play", 3, nil, stream))
	}
	var tail rtmpMessages
	tail.chunkSize = m.chunkSize
	for n := r.IntN(10); n > 0; n-- {
		switch r.IntN(6) {
		case 0:
			tail.add(4, 9, 1, maybeMutate(r, synthAVCSequenceHeader()))
		case 1:
			tail.add(4, 9, 1, maybeMutate(r, append([]byte{0x17, 1, 0, 0, 0, 0, 0, 0, 5, 0x65}, junk(r, r.IntN(2000))...)))
		case 2:
			tail.add(5, 8, 1, maybeMutate(r, []byte{0xaf, 0, 0x12, 0x10}))
		case 3:
			tail.add(6, 18, 1, amf0.Encode("@setDataFrame", "onMetaData", amf0.Object{{Key: "width", Value: weirdNumber(r)}, {Key: "duration", Value: math.Inf(1)}}))
		case 4:
			tail.add(uint32(r.IntN(70000)), byte(r.IntN(256)), r.Uint32(), junk(r, r.IntN(300)))
		case 5:
			tail.add(3, 20, 0, amf0.Encode(weirdString(r), 9, nil, weirdString(r)))
		}
	}
	// The commands are damaged less often than the media, so that some
	// inputs reach a publishing or playing session with a broken tail.
	out := m.b
	if r.IntN(3) == 0 {
		out = mutate(r, out)
	}
	out = append(out, maybeMutate(r, tail.b)...)
	if _, err := conn.Write(out); err != nil {
		return err
	}
	conn.CloseWrite()
	return drain(conn, 200*time.Millisecond)
}

// cutPath splits app/stream.
func cutPath(p string) (app, stream string, ok bool) {
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			return p[:i], p[i+1:], true
		}
	}
	return "", p, false
}

// rtmpMessages writes messages as chunks: a type 0 header, then type 3
// continuation chunks every chunkSize bytes (section 5.3.1).
type rtmpMessages struct {
	b         []byte
	chunkSize int
}

func (m *rtmpMessages) add(csid uint32, typ byte, streamID uint32, payload []byte) {
	m.b = appendBasicHeader(m.b, 0, csid)
	var h [11]byte
	h[3], h[4], h[5] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
	h[6] = typ
	binary.LittleEndian.PutUint32(h[7:], streamID)
	m.b = append(m.b, h[:]...)
	for off := 0; off < len(payload); off += m.chunkSize {
		if off > 0 {
			m.b = appendBasicHeader(m.b, 3, csid)
		}
		m.b = append(m.b, payload[off:min(len(payload), off+m.chunkSize)]...)
	}
}

func appendBasicHeader(b []byte, fmt byte, csid uint32) []byte {
	switch {
	case csid >= 2 && csid < 64:
		return append(b, fmt<<6|byte(csid))
	case csid < 64+256:
		return append(b, fmt<<6, byte(csid-64))
	}
	return append(b, fmt<<6|1, byte((csid-64)&0xff), byte((csid-64)>>8))
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
