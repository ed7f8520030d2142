package rtmp

import (
	"encoding/binary"
	"errors"

	"github.com/berthmedia/berth/internal/flv/amf0"
)

// Message types a publishing client sends with SendMedia.
const (
	MsgAudio    = msgAudio
	MsgVideo    = msgVideo
	MsgDataAMF0 = msgDataAMF0
)

// Status is an onStatus a server sent: its level ("status" or "error"),
// code (NetStream.Publish.Start) and the server's description, which says
// why a publish was refused in the server's own words.
type Status struct {
	Level, Code, Description string
}

// ErrNotStatus is what ParseStatus returns for a message that is no onStatus.
var ErrNotStatus = errors.New("not an onStatus command")

// ParseStatus reads an onStatus command message (type 20), as a publisher
// that keeps reading after Publish sees a late refusal.
func ParseStatus(m *Message) (Status, error) {
	if m == nil || m.Type != msgCommandAMF0 {
		return Status{}, ErrNotStatus
	}
	vals, err := amf0.Decode(m.Body)
	if err != nil || len(vals) == 0 || vals[0] != "onStatus" {
		return Status{}, ErrNotStatus
	}
	return statusOf(vals), nil
}

func statusOf(vals []any) Status {
	var st Status
	if len(vals) > 3 {
		if o, ok := vals[3].(amf0.Object); ok {
			st.Level, st.Code, st.Description = o.String("level"), o.String("code"), o.String("description")
		}
	}
	return st
}

// PublishStatus is Publish returning the whole onStatus, description
// included ("stream live/s is already published by ..."), so a pusher can
// say in its log why a target refused it.
func (c *Client) PublishStatus(name string) (Status, error) {
	if err := c.createStream(); err != nil {
		return Status{}, err
	}
	if err := c.command(streamID, "publish", amf0.Null{}, name, "live"); err != nil {
		return Status{}, err
	}
	vals, err := c.waitCommand("onStatus")
	if err != nil {
		return Status{}, err
	}
	return statusOf(vals), nil
}

// AnswerPing answers m with a ping response when it is a ping request
// (User Control event 6, RTMP 1.0 section 7.1.7): servers such as
// nginx-rtmp ping their clients and may drop one that never answers. It
// writes on the client's connection, so the caller keeps it from running
// at the same time as its other writes.
func (c *Client) AnswerPing(m *Message) (answered bool, err error) {
	if m == nil || m.Type != msgUserControl || len(m.Body) < 6 || binary.BigEndian.Uint16(m.Body) != ucPingRequest {
		return false, nil
	}
	return true, c.WriteMessage(csidControl, msgUserControl, 0, 0, append([]byte{0, ucPingResponse}, m.Body[2:6]...))
}

// PublishChunkSize is the chunk size a publishing client announces and
// writes media with, as ffmpeg and OBS do: a 1.4 kB audio frame or a video
// frame is then one chunk header per 4 kB instead of per 128 bytes.
const PublishChunkSize = 4096

// SetPublishChunkSize tells the server that this client's chunks are
// PublishChunkSize bytes from now on; SendMediaChunked then writes them so.
func (c *Client) SetPublishChunkSize() error {
	return c.WriteMessage(csidControl, msgSetChunkSize, 0, 0, binary.BigEndian.AppendUint32(nil, PublishChunkSize))
}

// SendMediaChunked is SendMedia in chunks of PublishChunkSize, after
// SetPublishChunkSize.
func (c *Client) SendMediaChunked(typ uint8, ts uint32, body []byte) error {
	csid := uint32(csidVideo)
	switch typ {
	case msgAudio:
		csid = csidAudio
	case msgDataAMF0:
		csid = csidData
	}
	c.wbuf = AppendMessage(c.wbuf[:0], csid, typ, streamID, ts, body, PublishChunkSize)
	_, err := c.nc.Write(c.wbuf)
	return err
}
