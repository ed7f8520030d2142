package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/berthmedia/berth/internal/rtmp"
)

// FLV (Adobe FLV spec v10.1 annex E): a 9-byte header, then tags, each
// preceded by the previous tag's size: type (8 audio, 9 video, 18 script),
// 24-bit data size, 24+8-bit timestamp, 24-bit stream id, data.

const (
	flvTagAudio  = 8
	flvTagVideo  = 9
	flvTagScript = 18
)

// errNotFLV reports a body that does not start with an FLV header.
var errNotFLV = errors.New("the body is not FLV (no 'FLV' signature)")

// flvTagHeader is the 11-byte tag header.
type flvTagHeader struct {
	Type      uint8
	Size      int
	Timestamp uint32
}

func parseFLVTagHeader(b []byte) (flvTagHeader, bool) {
	if len(b) < 11 {
		return flvTagHeader{}, false
	}
	return flvTagHeader{
		Type:      b[0] & 0x1f, // the top bits are reserved / filter
		Size:      int(b[1])<<16 | int(b[2])<<8 | int(b[3]),
		Timestamp: uint32(b[4])<<16 | uint32(b[5])<<8 | uint32(b[6]) | uint32(b[7])<<24,
	}, true
}

// flvVideoKind classifies a video tag's data (or an RTMP video message's
// body): a coded frame or not (sequence headers, end of sequence), and
// whether the frame is a keyframe. Both the legacy AVC/HEVC form and
// Enhanced RTMP's (bit 7 set, packet type in the low nibble) are read.
func flvVideoKind(data []byte) (frame, key bool) {
	if len(data) < 1 {
		return false, false
	}
	frameType := (data[0] >> 4) & 0x07
	if frameType == 5 { // video info / command frame
		return false, false
	}
	if data[0]&0x80 != 0 { // Enhanced RTMP
		switch data[0] & 0x0f {
		case 1, 3: // CodedFrames, CodedFramesX
			return true, frameType == 1
		}
		return false, false
	}
	switch data[0] & 0x0f {
	case 7, 12: // AVC, HEVC: AVCPacketType 1 is a NALU
		if len(data) < 2 || data[1] != 1 {
			return false, false
		}
	}
	return true, frameType == 1
}

// flvReader reads tags from an FLV byte stream without allocating.
type flvReader struct {
	br      *bufio.Reader
	started bool
}

// next returns the next tag's header and up to the first 16 bytes of its
// data (enough to classify it); the rest is skipped. wire is the tag's
// bytes on the wire, including its previous-tag-size field.
func (r *flvReader) next() (h flvTagHeader, head []byte, wire int, err error) {
	if !r.started {
		b, err := r.br.Peek(9)
		if err != nil {
			return h, nil, 0, err
		}
		if string(b[:3]) != "FLV" {
			return h, nil, 0, errNotFLV
		}
		off := int(b[5])<<24 | int(b[6])<<16 | int(b[7])<<8 | int(b[8])
		if off < 9 || off > 1<<16 {
			return h, nil, 0, fmt.Errorf("FLV header size %d is out of range", off)
		}
		if _, err := r.br.Discard(off); err != nil {
			return h, nil, 0, err
		}
		r.started = true
	}
	b, err := r.br.Peek(4 + 11)
	if err != nil {
		return h, nil, 0, err
	}
	h, _ = parseFLVTagHeader(b[4:])
	r.br.Discard(15)
	n := min(h.Size, 16)
	head, err = r.br.Peek(n)
	if err != nil {
		return h, nil, 0, eofMid(err)
	}
	// head stays valid until the next read of br: classify before skipping.
	return h, head, 15 + h.Size, nil
}

func (r *flvReader) skip(h flvTagHeader) error {
	_, err := r.br.Discard(h.Size)
	return eofMid(err)
}

func eofMid(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (p *player) readFLV(ctx context.Context, st *readerStats, up func()) error {
	ff := newFirstFrames(p)
	body, err := p.openStream(ctx, ff.start) // HTTP, or a WebSocket (ws-flv)
	if err != nil {
		return err
	}
	defer body.Close()
	up()
	r := &flvReader{br: bufio.NewReaderSize(body, 32<<10)}
	for {
		h, head, wire, err := r.next()
		if err != nil {
			return fmt.Errorf("reading FLV from %s: %w", p.cfg.URL, err)
		}
		if h.Type == flvTagVideo {
			if frame, key := flvVideoKind(head); frame {
				st.frames.Add(1)
				ff.packet()
				if !ff.gotKey {
					ff.video(key)
				}
			}
		} else if h.Type == flvTagAudio {
			ff.packet()
		}
		if err := r.skip(h); err != nil {
			return fmt.Errorf("reading FLV from %s: %w", p.cfg.URL, err)
		}
		st.bytes.Add(uint64(wire))
		st.packets.Add(1)
	}
}

// flvClient has no overall timeout (a stream never ends) and its own
// connection pool sized for many readers of one host.
var flvClient = &http.Client{Transport: &http.Transport{
	MaxIdleConnsPerHost:   1024,
	ResponseHeaderTimeout: 10 * time.Second,
	DisableCompression:    true,
}}

// rtmpURL is an rtmp://host[:port]/app/stream[?query] URL taken apart for
// an RTMP client: the address to dial (port 1935 when none is given), the
// connect command's app and tcUrl, and the stream name to play or publish
// (with the query, which carries auth tokens).
type rtmpURL struct {
	host, app, tcURL, name string
}

func parseRTMPURL(raw string) (rtmpURL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return rtmpURL{}, fmt.Errorf("RTMP URL %q: %w", raw, err)
	}
	path := strings.TrimPrefix(u.Path, "/")
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		return rtmpURL{}, fmt.Errorf("RTMP URL %q: want rtmp://host[:port]/app/stream", raw)
	}
	r := rtmpURL{host: u.Host, app: path[:i], name: path[i+1:], tcURL: "rtmp://" + u.Host + "/" + path[:i]}
	if u.RawQuery != "" {
		r.name += "?" + u.RawQuery
	}
	if u.Port() == "" {
		r.host += ":1935"
	}
	return r, nil
}

// readRTMP plays an rtmp://host[:port]/app/stream URL with Berth's RTMP
// client (internal/rtmp).
func (p *player) readRTMP(ctx context.Context, st *readerStats, up func()) error {
	return p.readRTMPWith(ctx, st, up, nil)
}

// readRTMPWith is readRTMP that also hands every audio/video message to
// onMsg (nil for none); body is valid during the call.
func (p *player) readRTMPWith(ctx context.Context, st *readerStats, up func(), onMsg func(typ uint8, body []byte)) error {
	ru, err := parseRTMPURL(p.cfg.URL)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	ff := newFirstFrames(p)
	c, err := rtmp.Dial(dctx, ru.host, false)
	if err != nil {
		return fmt.Errorf("RTMP %s: %w", ru.host, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	c.Conn().SetDeadline(time.Now().Add(p.cfg.Timeout))
	if err := c.Connect(ru.app, ru.tcURL); err != nil {
		return fmt.Errorf("RTMP connect %s: %w", ru.tcURL, err)
	}
	ff.start()
	code, err := c.Play(ru.name)
	if err != nil {
		return fmt.Errorf("RTMP play %s: %w", ru.name, err)
	}
	if code != "NetStream.Play.Start" {
		return fmt.Errorf("RTMP play %s: server answered %s", ru.name, code)
	}
	up()
	c.Conn().SetDeadline(time.Time{})
	for {
		c.Conn().SetReadDeadline(time.Now().Add(p.cfg.Timeout))
		m, err := c.ReadMessage()
		if err != nil {
			return fmt.Errorf("RTMP reading %s: %w", p.cfg.URL, err)
		}
		switch m.Type {
		case flvTagVideo:
			if frame, key := flvVideoKind(m.Body); frame {
				st.frames.Add(1)
				ff.packet()
				if !ff.gotKey {
					ff.video(key)
				}
			}
		case flvTagAudio:
			ff.packet()
		default:
			continue
		}
		if onMsg != nil {
			onMsg(m.Type, m.Body)
		}
		st.bytes.Add(uint64(len(m.Body)))
		st.packets.Add(1)
	}
}
