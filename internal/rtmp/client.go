package rtmp

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/berthmedia/berth/internal/flv/amf0"
)

// Client is a minimal RTMP client for tests, benchmarks and probes: it
// connects, then publishes or plays one stream.
type Client struct {
	nc   net.Conn
	br   *bufio.Reader
	cr   *ChunkReader
	wbuf []byte
	txid float64

	// Connect reply, for probes.
	Props, Info amf0.Object
}

// Dial connects and performs the handshake; digest asks for the complex one.
func Dial(ctx context.Context, addr string, digest bool) (*Client, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	c := &Client{nc: nc, br: bufio.NewReaderSize(nc, 64<<10)}
	c.cr = NewChunkReader(c.br)
	// Cancelling ctx ends the handshake at once, not at its deadline (a
	// pusher deleted while a silent server holds it).
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	if err := clientHandshake(struct {
		io.Reader
		io.Writer
	}{c.br, nc}, digest); err != nil {
		nc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return c, nil
}

// Conn is the client's socket.
func (c *Client) Conn() net.Conn { return c.nc }

// Close closes the socket.
func (c *Client) Close() error { return c.nc.Close() }

// WriteMessage sends one message with chunk size 128 (never changed).
func (c *Client) WriteMessage(csid uint32, typ uint8, msid, ts uint32, body []byte) error {
	c.wbuf = AppendMessage(c.wbuf[:0], csid, typ, msid, ts, body, 128)
	_, err := c.nc.Write(c.wbuf)
	return err
}

// ReadMessage returns the next message.
func (c *Client) ReadMessage() (*Message, error) { return c.cr.ReadMessage() }

func (c *Client) command(msid uint32, name string, args ...any) error {
	c.txid++
	vals := append([]any{name, c.txid}, args...)
	return c.WriteMessage(csidCommand, msgCommandAMF0, msid, 0, amf0.Encode(vals...))
}

// waitCommand reads until a command named one of names arrives.
func (c *Client) waitCommand(names ...string) ([]any, error) {
	for {
		m, err := c.ReadMessage()
		if err != nil {
			return nil, err
		}
		if m.Type != msgCommandAMF0 {
			continue
		}
		vals, err := amf0.Decode(m.Body)
		if err != nil || len(vals) == 0 {
			continue
		}
		for _, n := range names {
			if vals[0] == n {
				return vals, nil
			}
		}
	}
}

// Connect sends connect for app and waits for the reply.
func (c *Client) Connect(app, tcURL string) error {
	if err := c.command(0, "connect", amf0.Object{{Key: "app", Value: app}, {Key: "tcUrl", Value: tcURL}, {Key: "type", Value: "nonprivate"}}); err != nil {
		return err
	}
	vals, err := c.waitCommand("_result", "_error")
	if err != nil {
		return err
	}
	if vals[0] != "_result" {
		return fmt.Errorf("connect refused: %v", vals)
	}
	if len(vals) > 3 {
		c.Props, _ = vals[2].(amf0.Object)
		c.Info, _ = vals[3].(amf0.Object)
	}
	return nil
}

func (c *Client) createStream() error {
	if err := c.command(0, "createStream", amf0.Null{}); err != nil {
		return err
	}
	_, err := c.waitCommand("_result")
	return err
}

// status waits for an onStatus and returns its code.
func (c *Client) status() (string, error) {
	vals, err := c.waitCommand("onStatus")
	if err != nil {
		return "", err
	}
	if len(vals) > 3 {
		if o, ok := vals[3].(amf0.Object); ok {
			return o.String("code"), nil
		}
	}
	return "", fmt.Errorf("onStatus without info: %v", vals)
}

// Play plays name and returns the first onStatus code that is not Play.Reset.
func (c *Client) Play(name string) (string, error) {
	if err := c.createStream(); err != nil {
		return "", err
	}
	if err := c.command(streamID, "play", amf0.Null{}, name); err != nil {
		return "", err
	}
	for {
		code, err := c.status()
		if err != nil || code != "NetStream.Play.Reset" {
			return code, err
		}
	}
}

// Publish publishes name and returns the onStatus code.
func (c *Client) Publish(name string) (string, error) {
	if err := c.createStream(); err != nil {
		return "", err
	}
	if err := c.command(streamID, "publish", amf0.Null{}, name, "live"); err != nil {
		return "", err
	}
	return c.status()
}

// WaitStatus waits for the next onStatus, for publish errors that come late.
func (c *Client) WaitStatus(timeout time.Duration) (string, error) {
	c.nc.SetReadDeadline(time.Now().Add(timeout))
	defer c.nc.SetReadDeadline(time.Time{})
	return c.status()
}

// SendMedia sends an audio (8), video (9) or data (18) message on stream 1.
func (c *Client) SendMedia(typ uint8, ts uint32, body []byte) error {
	csid := uint32(csidVideo)
	switch typ {
	case msgAudio:
		csid = csidAudio
	case msgDataAMF0:
		csid = csidData
	}
	return c.WriteMessage(csid, typ, streamID, ts, body)
}

// SetChunkSizeRaw sends a Set Chunk Size with any value, for tests of bad peers.
func (c *Client) SetChunkSizeRaw(n uint32) error {
	return c.WriteMessage(csidControl, msgSetChunkSize, 0, 0, binary.BigEndian.AppendUint32(nil, n))
}
