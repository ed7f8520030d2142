package rtspclient

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
)

// An RTSP/TCP connection carries RTSP messages and interleaved binary
// frames ('$', channel, 16-bit length, payload; RFC 2326 section 10.12) on
// one byte stream. The demuxer tells them apart and hands frame payloads out
// as slices of its read buffer, so reading a packet allocates nothing.

// msgKind is what the demuxer read next.
type msgKind int

const (
	msgFrame    msgKind = iota // an interleaved frame: channel and payload
	msgResponse                // an RTSP response
	msgRequest                 // an RTSP request from the server (rare: keep-alives, ANNOUNCE)
)

// frameHeaderSize is '$', channel and the 16-bit payload length.
const frameHeaderSize = 4

// errBadMagic reports a byte that starts neither a frame nor a message.
var errBadMagic = errors.New("stream is out of step: expected '$' or an RTSP message")

// parseFrameHeader reads an interleaved frame header. ok is false when b is
// not one (shorter than 4 bytes or not starting with '$').
func parseFrameHeader(b []byte) (channel uint8, size int, ok bool) {
	if len(b) < frameHeaderSize || b[0] != base.InterleavedFrameMagicByte {
		return 0, 0, false
	}
	return b[1], int(b[2])<<8 | int(b[3]), true
}

// demuxer reads one connection. Not safe for concurrent use.
type demuxer struct {
	br      *bufio.Reader
	scratch []byte // frames larger than br's buffer are copied here
	discard int    // bytes of the last frame still in br, dropped on the next call
}

func newDemuxer(r io.Reader, size int) *demuxer {
	return &demuxer{br: bufio.NewReaderSize(r, size)}
}

// next reads the next message. A frame's payload is valid until the next
// call. res/req are set for msgResponse/msgRequest.
func (d *demuxer) next() (kind msgKind, channel uint8, payload []byte, res *base.Response, req *base.Request, err error) {
	if d.discard > 0 {
		d.br.Discard(d.discard)
		d.discard = 0
	}
	b, err := d.br.Peek(frameHeaderSize)
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) { // cannot happen: buffers are >= 16 bytes
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, nil, nil, nil, err
	}
	if ch, n, ok := parseFrameHeader(b); ok {
		total := frameHeaderSize + n
		if total <= d.br.Size() {
			p, err := d.br.Peek(total)
			if err != nil {
				return 0, 0, nil, nil, nil, eofUnexpected(err)
			}
			d.discard = total
			return msgFrame, ch, p[frameHeaderSize:], nil, nil, nil
		}
		d.br.Discard(frameHeaderSize)
		if cap(d.scratch) < n {
			d.scratch = make([]byte, n)
		}
		if _, err := io.ReadFull(d.br, d.scratch[:n]); err != nil {
			return 0, 0, nil, nil, nil, eofUnexpected(err)
		}
		return msgFrame, ch, d.scratch[:n], nil, nil, nil
	}
	if string(b) == "RTSP" {
		res = &base.Response{}
		if err := res.Unmarshal(d.br); err != nil {
			return 0, 0, nil, nil, nil, fmt.Errorf("reading an RTSP response: %w", eofUnexpected(err))
		}
		return msgResponse, 0, nil, res, nil, nil
	}
	if b[0] < 'A' || b[0] > 'Z' {
		return 0, 0, nil, nil, nil, fmt.Errorf("%w (got byte 0x%02x)", errBadMagic, b[0])
	}
	req = &base.Request{}
	if err := req.Unmarshal(d.br); err != nil {
		return 0, 0, nil, nil, nil, fmt.Errorf("reading an RTSP request from the server: %w", eofUnexpected(err))
	}
	return msgRequest, 0, nil, nil, req, nil
}

// eofUnexpected turns an EOF in the middle of a message into
// io.ErrUnexpectedEOF, so a clean close (io.EOF between messages) stays
// distinguishable from a cut one.
func eofUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
