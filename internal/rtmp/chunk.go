// Package rtmp is Berth's RTMP server (Adobe RTMP specification 1.0 with
// the enhanced-RTMP extensions): handshake, chunk stream, AMF0 commands,
// publish into the hub and play from it. Media message bodies are FLV tag
// bodies (package flv); a frame's chunks are built once and shared by every
// RTMP reader.
package rtmp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Message type ids (RTMP spec 5.4, 7.1).
const (
	msgSetChunkSize     = 1
	msgAbort            = 2
	msgAck              = 3
	msgUserControl      = 4
	msgWindowAckSize    = 5
	msgSetPeerBandwidth = 6
	msgAudio            = 8
	msgVideo            = 9
	msgDataAMF3         = 15
	msgCommandAMF3      = 17
	msgDataAMF0         = 18
	msgCommandAMF0      = 20
)

// User control event types (RTMP spec 7.1.7).
const (
	ucStreamBegin     = 0
	ucStreamEOF       = 1
	ucSetBufferLength = 3
	ucPingRequest     = 6
	ucPingResponse    = 7
)

// Limits on what a peer may make us hold.
const (
	// MaxChunkSize is the largest chunk size the spec allows (31 bits are
	// allowed on the wire, but a message is at most 24 bits long).
	MaxChunkSize = 0xFFFFFF
	// DefaultMaxMessage bounds one message: a 4K keyframe is well below it.
	DefaultMaxMessage = 8 << 20
)

// Errors of the chunk reader; each closes only the connection that caused it.
var (
	ErrChunkSize       = errors.New("rtmp: invalid chunk size (must be 1..16777215)")
	ErrMessageTooLarge = errors.New("rtmp: message larger than the server accepts")
	ErrNoPrevHeader    = errors.New("rtmp: chunk continues a chunk stream that has no header yet")
	ErrTooMuchPartial  = errors.New("rtmp: too many unfinished messages across chunk streams")
)

// Message is one reassembled RTMP message. Body is owned by the receiver:
// the reader allocates a new one per message, so frames may slice into it.
type Message struct {
	CSID      uint32
	Type      uint8
	StreamID  uint32
	Timestamp uint32
	Body      []byte
}

type chunkStream struct {
	timestamp uint32
	delta     uint32
	length    uint32
	typ       uint8
	streamID  uint32
	extended  bool // the last header used an extended timestamp
	started   bool // a header has been seen
	body      []byte
	need      uint32 // bytes left of the message being assembled
}

// ChunkReader reassembles messages from chunks (RTMP spec 5.3).
type ChunkReader struct {
	r          *bufio.Reader
	chunkSize  uint32
	maxMessage uint32
	streams    map[uint32]*chunkStream
	partial    int
	hdr        [16]byte
}

// NewChunkReader reads chunks from r with the initial chunk size of 128.
func NewChunkReader(r *bufio.Reader) *ChunkReader {
	return &ChunkReader{r: r, chunkSize: 128, maxMessage: DefaultMaxMessage, streams: map[uint32]*chunkStream{}}
}

// publishReadBuffer is a publisher's read buffer: a 4 Mb/s stream then
// takes a read system call per 64 KB instead of per 4 KB.
const publishReadBuffer = 64 << 10

// Grow puts a read buffer of size bytes in front of the current one. The
// bytes the current one holds are read first; after that the new one's
// fills mostly go past it straight to the connection (a bufio.Reader reads
// directly into a destination at least as large as its own buffer).
func (c *ChunkReader) Grow(size int) {
	if c.r.Size() < size {
		c.r = bufio.NewReaderSize(c.r, size)
	}
}

// reads reports whether c reads straight from br (not from a buffer Grow
// put in front of it).
func (c *ChunkReader) reads(br *bufio.Reader) bool { return c.r == br }

// SetChunkSize applies a peer's Set Chunk Size.
func (c *ChunkReader) SetChunkSize(n uint32) error {
	if n == 0 || n > MaxChunkSize {
		return fmt.Errorf("%w: peer asked for %d", ErrChunkSize, n)
	}
	c.chunkSize = n
	return nil
}

// SetMaxMessage bounds the size of one message.
func (c *ChunkReader) SetMaxMessage(n uint32) { c.maxMessage = n }

// ReadMessage returns the next complete message. A Set Chunk Size message is
// applied before it is returned.
func (c *ChunkReader) ReadMessage() (*Message, error) {
	for {
		m, err := c.readChunk()
		if err != nil {
			return nil, err
		}
		if m == nil {
			continue
		}
		if m.Type == msgSetChunkSize && m.StreamID == 0 {
			if len(m.Body) < 4 {
				return nil, fmt.Errorf("%w: Set Chunk Size of %d bytes", ErrChunkSize, len(m.Body))
			}
			// The top bit must be 0 (RTMP spec 5.4.1); 2^31 is refused with it.
			if err := c.SetChunkSize(binary.BigEndian.Uint32(m.Body)); err != nil {
				return nil, err
			}
		}
		return m, nil
	}
}

func (c *ChunkReader) readChunk() (*Message, error) {
	b0, err := c.r.ReadByte()
	if err != nil {
		return nil, err
	}
	fmtType := b0 >> 6
	csid := uint32(b0 & 0x3f)
	switch csid {
	case 0:
		b, err := c.r.ReadByte()
		if err != nil {
			return nil, err
		}
		csid = 64 + uint32(b)
	case 1:
		if _, err := io.ReadFull(c.r, c.hdr[:2]); err != nil {
			return nil, err
		}
		csid = 64 + uint32(c.hdr[0]) + uint32(c.hdr[1])<<8
	}
	cs := c.streams[csid]
	if cs == nil {
		if len(c.streams) >= 1024 {
			return nil, fmt.Errorf("rtmp: more than 1024 chunk streams")
		}
		cs = &chunkStream{}
		c.streams[csid] = cs
	}
	if fmtType != 0 && !cs.started {
		return nil, fmt.Errorf("%w (csid %d, fmt %d)", ErrNoPrevHeader, csid, fmtType)
	}
	hlen := [4]int{11, 7, 3, 0}[fmtType]
	if hlen > 0 {
		if _, err := io.ReadFull(c.r, c.hdr[:hlen]); err != nil {
			return nil, err
		}
	}
	h := c.hdr[:hlen]
	newMessage := cs.need == 0
	if !newMessage && fmtType != 3 {
		// A new header in the middle of a message: the peer aborted it.
		c.partial -= len(cs.body)
		cs.body, cs.need, newMessage = nil, 0, true
	}
	var ts uint32
	if fmtType <= 2 {
		ts = uint32(h[0])<<16 | uint32(h[1])<<8 | uint32(h[2])
		cs.extended = ts == 0xFFFFFF
	}
	if fmtType <= 1 {
		cs.length = uint32(h[3])<<16 | uint32(h[4])<<8 | uint32(h[5])
		cs.typ = h[6]
	}
	if fmtType == 0 {
		cs.streamID = binary.LittleEndian.Uint32(h[7:11])
	}
	if cs.extended {
		if _, err := io.ReadFull(c.r, c.hdr[:4]); err != nil {
			return nil, err
		}
		if fmtType <= 2 {
			ts = binary.BigEndian.Uint32(c.hdr[:4])
		}
	}
	cs.started = true
	if newMessage {
		switch fmtType {
		case 0:
			cs.timestamp, cs.delta = ts, ts
		case 1, 2:
			cs.timestamp += ts
			cs.delta = ts
		case 3:
			cs.timestamp += cs.delta
		}
		if cs.length > c.maxMessage {
			return nil, fmt.Errorf("%w: %d bytes announced on chunk stream %d (limit %d)", ErrMessageTooLarge, cs.length, csid, c.maxMessage)
		}
		cs.need = cs.length
		// Grow with the data that arrives instead of trusting the announced length.
		cs.body = make([]byte, 0, min(cs.length, 64<<10))
		if cs.length == 0 {
			return c.finish(csid, cs), nil
		}
	}
	n := min(cs.need, c.chunkSize)
	// The bytes of unfinished messages held over all chunk streams are
	// bounded, so interleaving many chunk streams cannot exhaust memory:
	// twice the largest message ([rtmp] max_message_bytes).
	if c.partial+int(n) > 2*int(c.maxMessage) {
		return nil, ErrTooMuchPartial
	}
	start := len(cs.body)
	cs.body = append(cs.body, make([]byte, n)...)
	if _, err := io.ReadFull(c.r, cs.body[start:]); err != nil {
		return nil, err
	}
	cs.need -= n
	c.partial += int(n)
	if cs.need > 0 {
		return nil, nil
	}
	c.partial -= len(cs.body)
	return c.finish(csid, cs), nil
}

func (c *ChunkReader) finish(csid uint32, cs *chunkStream) *Message {
	m := &Message{CSID: csid, Type: cs.typ, StreamID: cs.streamID, Timestamp: cs.timestamp, Body: cs.body}
	cs.body = nil
	return m
}

// AppendMessage appends msg as chunks of chunkSize: a type 0 header with the
// absolute timestamp, then type 3 continuation headers. Always using type 0
// makes the bytes independent of what this connection sent before, which is
// what lets every reader share them.
func AppendMessage(dst []byte, csid uint32, typ uint8, streamID, ts uint32, body []byte, chunkSize int) []byte {
	ext := ts >= 0xFFFFFF
	dst = appendBasicHeader(dst, 0, csid)
	t := ts
	if ext {
		t = 0xFFFFFF
	}
	l := len(body)
	dst = append(dst, byte(t>>16), byte(t>>8), byte(t), byte(l>>16), byte(l>>8), byte(l), typ)
	dst = binary.LittleEndian.AppendUint32(dst, streamID)
	if ext {
		dst = binary.BigEndian.AppendUint32(dst, ts)
	}
	for {
		n := min(len(body), chunkSize)
		dst = append(dst, body[:n]...)
		body = body[n:]
		if len(body) == 0 {
			return dst
		}
		dst = appendBasicHeader(dst, 3, csid)
		if ext {
			dst = binary.BigEndian.AppendUint32(dst, ts)
		}
	}
}

// MessageSize is the length of AppendMessage's output.
func MessageSize(csid uint32, ts uint32, bodyLen, chunkSize int) int {
	bh := basicHeaderSize(csid)
	ext := 0
	if ts >= 0xFFFFFF {
		ext = 4
	}
	n := bh + 11 + ext + bodyLen
	if bodyLen > chunkSize {
		n += ((bodyLen - 1) / chunkSize) * (bh + ext)
	}
	return n
}

func basicHeaderSize(csid uint32) int {
	switch {
	case csid < 64:
		return 1
	case csid < 320:
		return 2
	}
	return 3
}

func appendBasicHeader(dst []byte, fmtType byte, csid uint32) []byte {
	switch {
	case csid < 64:
		return append(dst, fmtType<<6|byte(csid))
	case csid < 320:
		return append(dst, fmtType<<6, byte(csid-64))
	}
	return append(dst, fmtType<<6|1, byte(csid-64), byte((csid-64)>>8))
}
