package flv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrNotFLV is returned by NewReader for a stream without the FLV signature.
var ErrNotFLV = errors.New("flv: not an FLV stream (no FLV signature)")

// MaxTagSize bounds a tag Reader accepts (the field allows 16 MB).
const MaxTagSize = 16 << 20

// Reader reads the tags of an FLV byte stream (HTTP-FLV, WS-FLV, files),
// for tests, probes and benchmarks.
type Reader struct {
	r          io.Reader
	hdr        [TagHeaderSize]byte
	Video      bool // header flags
	Audio      bool
	maxTagSize int
}

// NewReader reads the FLV header from r.
func NewReader(r io.Reader) (*Reader, error) {
	var h [13]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	if h[0] != 'F' || h[1] != 'L' || h[2] != 'V' {
		return nil, ErrNotFLV
	}
	off := binary.BigEndian.Uint32(h[5:9])
	if off < 9 || off > 1024 {
		return nil, fmt.Errorf("flv: header size %d out of range", off)
	}
	if off > 9 { // skip the header's extension and read PreviousTagSize0
		if _, err := io.CopyN(io.Discard, r, int64(off-9)); err != nil {
			return nil, err
		}
	}
	return &Reader{r: r, Video: h[4]&1 != 0, Audio: h[4]&4 != 0, maxTagSize: MaxTagSize}, nil
}

// ReadTag returns the next tag; Body is freshly allocated.
func (r *Reader) ReadTag() (Tag, error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		return Tag{}, err
	}
	size := int(r.hdr[1])<<16 | int(r.hdr[2])<<8 | int(r.hdr[3])
	if size > r.maxTagSize {
		return Tag{}, fmt.Errorf("flv: tag of %d bytes exceeds %d", size, r.maxTagSize)
	}
	t := Tag{Type: r.hdr[0] & 0x1f, TS: TagTimestamp(r.hdr[:])}
	if r.hdr[0]&0x20 != 0 {
		return Tag{}, errors.New("flv: encrypted tags are not supported")
	}
	body := make([]byte, size+TagTrailerSize)
	if _, err := io.ReadFull(r.r, body); err != nil {
		return Tag{}, err
	}
	if prev := binary.BigEndian.Uint32(body[size:]); prev != uint32(size+TagHeaderSize) {
		return Tag{}, fmt.Errorf("flv: PreviousTagSize %d after a tag of %d bytes", prev, size+TagHeaderSize)
	}
	t.Body = body[:size]
	return t, nil
}
