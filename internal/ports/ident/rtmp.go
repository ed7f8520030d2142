package ident

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// RTMP message types used here (RTMP spec 1.0, sections 5.4 and 7.1).
const (
	rtmpSetChunkSize = 1
	rtmpAMF0Command  = 20
)

// RTMPResult is what an RTMP server said to connect (and, if asked, play).
type RTMPResult struct {
	Identity
	Connect    string // "_result" or "_error"
	ConnectMsg string // the info object's code/description on _error
	PlayCode   string // onStatus code after play: "NetStream.Play.Start", "NetStream.Play.StreamNotFound"
	PlayDesc   string
}

// RTMPConn is a minimal RTMP client connection: handshake, connect,
// createStream, play. It reads only the messages it needs.
type RTMPConn struct {
	conn     net.Conn
	br       *bufio.Reader
	inChunk  int
	chunks   map[uint32]*chunkState
	streamID uint32
}

type chunkState struct {
	typ      byte
	length   int
	streamID uint32
	ts       uint32
	buf      []byte
}

// ErrNotRTMP means the peer did not answer the RTMP handshake as RTMP.
var ErrNotRTMP = errors.New("not an RTMP server")

// RTMPHandshake does the plain (unsigned) handshake on conn.
func RTMPHandshake(conn net.Conn) (*RTMPConn, error) {
	c0c1 := make([]byte, 1+1536)
	c0c1[0] = 3
	rand.Read(c0c1[9:])
	if _, err := conn.Write(c0c1); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 8192)
	s0s1 := make([]byte, 1+1536)
	n, err := io.ReadFull(br, s0s1)
	if n == 0 && err != nil {
		if isTimeout(err) || errors.Is(err, io.EOF) {
			return nil, ErrNoAnswer
		}
		return nil, err
	}
	if s0s1[0] != 3 {
		// Some other protocol: an HTTP server answers 400, for example.
		return nil, fmt.Errorf("%w: its first bytes were %s", ErrNotRTMP, quoteHead(s0s1[:n]))
	}
	if err != nil {
		return nil, fmt.Errorf("RTMP handshake cut short after %d bytes: %w", n, err)
	}
	if _, err := conn.Write(s0s1[1:]); err != nil { // C2 echoes S1
		return nil, err
	}
	s2 := make([]byte, 1536)
	if _, err := io.ReadFull(br, s2); err != nil {
		return nil, fmt.Errorf("RTMP handshake: no S2: %w", err)
	}
	return &RTMPConn{conn: conn, br: br, inChunk: 128, chunks: map[uint32]*chunkState{}}, nil
}

// writeCommand sends an AMF0 command on chunk stream csid, split into
// 128-byte chunks (the default size; we never change ours).
func (c *RTMPConn) writeCommand(csid byte, streamID uint32, vals ...any) error {
	var payload []byte
	for _, v := range vals {
		payload = amfAppend(payload, v)
	}
	msg := []byte{csid & 0x3f, 0, 0, 0}
	msg = append(msg, byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload)), rtmpAMF0Command)
	msg = binary.LittleEndian.AppendUint32(msg, streamID)
	for i := 0; i < len(payload); i += 128 {
		if i > 0 {
			msg = append(msg, 0xC0|csid&0x3f)
		}
		msg = append(msg, payload[i:min(i+128, len(payload))]...)
	}
	_, err := c.conn.Write(msg)
	return err
}

// readMessage returns the next complete message.
func (c *RTMPConn) readMessage() (typ byte, streamID uint32, payload []byte, err error) {
	for {
		h, err := c.br.ReadByte()
		if err != nil {
			return 0, 0, nil, err
		}
		fmtType := h >> 6
		csid := uint32(h & 0x3f)
		switch csid {
		case 0:
			b, err := c.br.ReadByte()
			if err != nil {
				return 0, 0, nil, err
			}
			csid = 64 + uint32(b)
		case 1:
			var b [2]byte
			if _, err := io.ReadFull(c.br, b[:]); err != nil {
				return 0, 0, nil, err
			}
			csid = 64 + uint32(b[0]) + 256*uint32(b[1])
		}
		st := c.chunks[csid]
		if st == nil {
			if fmtType != 0 || len(c.chunks) > 64 {
				return 0, 0, nil, errors.New("RTMP: chunk stream starts without a full header")
			}
			st = &chunkState{}
			c.chunks[csid] = st
		}
		hl := [4]int{11, 7, 3, 0}[fmtType]
		var mh [11]byte
		if _, err := io.ReadFull(c.br, mh[:hl]); err != nil {
			return 0, 0, nil, err
		}
		if hl >= 3 {
			st.ts = uint32(mh[0])<<16 | uint32(mh[1])<<8 | uint32(mh[2])
		}
		if hl >= 7 {
			st.length = int(mh[3])<<16 | int(mh[4])<<8 | int(mh[5])
			st.typ = mh[6]
		}
		if hl == 11 {
			st.streamID = binary.LittleEndian.Uint32(mh[7:])
		}
		if st.ts == 0xFFFFFF {
			var ext [4]byte
			if _, err := io.ReadFull(c.br, ext[:]); err != nil {
				return 0, 0, nil, err
			}
		}
		if fmtType != 3 {
			st.buf = nil // a full or partial header starts a new message
		}
		if st.length > 1<<20 {
			return 0, 0, nil, fmt.Errorf("RTMP: message of %d bytes is too large for a probe", st.length)
		}
		n := min(c.inChunk, st.length-len(st.buf))
		if n < 0 {
			return 0, 0, nil, errors.New("RTMP: chunk past its message's end")
		}
		chunk := make([]byte, n)
		if _, err := io.ReadFull(c.br, chunk); err != nil {
			return 0, 0, nil, err
		}
		st.buf = append(st.buf, chunk...)
		if len(st.buf) < st.length {
			continue
		}
		payload := st.buf
		st.buf = nil
		if st.typ == rtmpSetChunkSize && len(payload) >= 4 {
			size := int(binary.BigEndian.Uint32(payload) & 0x7fffffff)
			if size < 1 || size > 1<<24 {
				return 0, 0, nil, fmt.Errorf("RTMP: chunk size %d out of range", size)
			}
			c.inChunk = size
		}
		return st.typ, st.streamID, payload, nil
	}
}

// readCommand returns the next AMF0 command's values, skipping other messages.
func (c *RTMPConn) readCommand() ([]any, error) {
	for i := 0; i < 64; i++ {
		typ, _, p, err := c.readMessage()
		if err != nil {
			return nil, err
		}
		if typ != rtmpAMF0Command {
			continue
		}
		vals, err := amfDecodeAll(p)
		if len(vals) == 0 {
			return nil, fmt.Errorf("RTMP command does not parse: %w", err)
		}
		return vals, nil
	}
	return nil, errors.New("RTMP: no command among the first 64 messages")
}

// Connect sends connect(app) and reads the reply; res gets fmsVer and the
// berth_instance token when a Berth answered.
func (c *RTMPConn) Connect(tcURL, app string, res *RTMPResult) error {
	err := c.writeCommand(3, 0, "connect", 1, amfObject{
		{"app", app}, {"flashVer", "LNX 9,0,124,2"}, {"tcUrl", tcURL}, {"fpad", false},
		{"capabilities", 15}, {"audioCodecs", 4071}, {"videoCodecs", 252}, {"videoFunction", 1},
	})
	if err != nil {
		return err
	}
	for {
		vals, err := c.readCommand()
		if err != nil {
			return err
		}
		name, _ := vals[0].(string)
		if name != "_result" && name != "_error" {
			continue // onBWDone and the like
		}
		res.Protocol = "RTMP"
		res.Connect = name
		if len(vals) > 2 {
			if props, ok := vals[2].(map[string]any); ok {
				res.Server, _ = props["fmsVer"].(string)
			}
		}
		if len(vals) > 3 {
			if info, ok := vals[3].(map[string]any); ok {
				res.Instance, _ = info["berth_instance"].(string)
				code, _ := info["code"].(string)
				desc, _ := info["description"].(string)
				res.ConnectMsg = code
				if desc != "" {
					res.ConnectMsg += ": " + desc
				}
			}
		}
		res.Status = "connect " + name
		if res.ConnectMsg != "" {
			res.Status += " (" + res.ConnectMsg + ")"
		}
		return nil
	}
}

// Play sends createStream and play(stream) and reads onStatus codes until
// one says whether the stream plays.
func (c *RTMPConn) Play(stream string, res *RTMPResult) error {
	if err := c.writeCommand(3, 0, "createStream", 2, nil); err != nil {
		return err
	}
	for c.streamID == 0 {
		vals, err := c.readCommand()
		if err != nil {
			return err
		}
		if name, _ := vals[0].(string); name == "_error" {
			return errors.New("RTMP: createStream refused")
		} else if name == "_result" && len(vals) > 3 {
			id, _ := vals[3].(float64)
			c.streamID = uint32(id)
			if c.streamID == 0 {
				c.streamID = 1
			}
		}
	}
	if err := c.writeCommand(8, c.streamID, "play", 0, nil, stream, -2000); err != nil {
		return err
	}
	for {
		vals, err := c.readCommand()
		if err != nil {
			return err
		}
		if name, _ := vals[0].(string); name != "onStatus" || len(vals) < 4 {
			continue
		}
		info, _ := vals[3].(map[string]any)
		code, _ := info["code"].(string)
		desc, _ := info["description"].(string)
		if code == "NetStream.Play.Reset" {
			continue
		}
		res.PlayCode, res.PlayDesc = code, desc
		return nil
	}
}

// RTMPIdentify dials addr, handshakes and connects to app: the self-probe's
// RTMP check. tcURL is rtmp://addr/app.
func RTMPIdentify(ctx context.Context, addr, app string) (*RTMPResult, error) {
	conn, err := dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
	}
	c, err := RTMPHandshake(conn)
	if err != nil {
		return nil, err
	}
	res := &RTMPResult{}
	if err := c.Connect("rtmp://"+addr+"/"+app, app, res); err != nil {
		return nil, err
	}
	return res, nil
}
