package rtmp

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/fanout"
	"github.com/berthmedia/berth/internal/flv/amf0"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/ports"
	"github.com/berthmedia/berth/internal/sessions"
)

// Chunk stream ids Berth sends on. They are the same for every connection,
// so one frame's chunks serve every reader.
const (
	csidControl = 2
	csidCommand = 3
	csidAudio   = 4
	csidData    = 5
	csidVideo   = 6

	// streamID is the only message stream Berth creates: createStream always
	// answers 1, so media chunks carry it for every reader.
	streamID = 1

	// outChunkSize is Berth's send chunk size, announced at connect. Large
	// chunks mean few headers; 60000 is what ZLMediaKit and SRS use.
	outChunkSize = 60000
	windowAck    = 2500000
)

var connIDs atomic.Uint64

type conn struct {
	s      *Server
	nc     net.Conn
	log    logging.Attrs // remote and conn on every line, formatted only when one is written
	remote string
	id     string
	// lifeLevel is the level of the accepted/closed lines: debug for
	// Berth's own self-probe, info for clients.
	lifeLevel slog.Level

	br  *bufio.Reader // nil while a player waits on the poller (park)
	cr  *ChunkReader
	cnt countingReader // what br reads from

	// parking holds a playing connection on the server's poller while it
	// waits for its next message (Server.park); resume, the poller's ready
	// function, serves the connection again on a new goroutine.
	parking fanout.Parking
	resume  func()

	wmu      sync.Mutex
	wbuf     []byte
	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64

	peerWindow uint32
	ackedAt    uint64

	app    string
	params string // the publish/play name's query, credentials removed (hub.Origin.Params)
	query  url.Values

	pub  *publishSession
	play *playSession

	closeOnce sync.Once
}

type countingReader struct {
	r io.Reader
	n *atomic.Uint64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(uint64(n))
	return n, err
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, remote: nc.RemoteAddr().String(), id: strconv.FormatUint(connIDs.Add(1), 10)}
	c.log = logging.WithAttrs(s.log(), slog.String("remote", c.remote), slog.String("conn", c.id))
	if ports.IsSelfProbe(nc) {
		c.lifeLevel = slog.LevelDebug
	}
	// Most connections are players, which send a few commands and
	// acknowledgements: 4 KB each. A publisher's reader grows to 64 KB.
	c.cnt = countingReader{nc, &c.bytesIn}
	c.br = bufio.NewReaderSize(c.cnt, 4<<10)
	c.cr = NewChunkReader(c.br)
	c.resume = func() { go s.run(c, true) }
	c.cr.SetMaxMessage(s.maxMessage()) // [rtmp] max_message_bytes (limits.go)
	return c
}

func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.parking.Stop() // a parked player resumes and meets the close
		c.nc.Close()
	})
}

// playerBuffers hold the 4 KB read buffers of players between messages.
var playerBuffers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}

// releaseBuffer gives a waiting player's empty read buffer back: it sends
// a message every few seconds at most, and 400 of them would hold 1.6 MB.
// A buffer grown for a publisher (Grow) is kept.
func (c *conn) releaseBuffer() {
	if c.br == nil || c.br.Buffered() > 0 || !c.cr.reads(c.br) {
		return
	}
	c.br.Reset(nil)
	playerBuffers.Put(c.br)
	c.br = nil
	c.cr.r = nil
}

// takeBuffer gives c a read buffer again after a wait.
func (c *conn) takeBuffer() {
	if c.br == nil {
		c.br = playerBuffers.Get().(*bufio.Reader)
		c.br.Reset(c.cnt)
		c.cr.r = c.br
	}
}

func (c *conn) origin() hub.Origin {
	return hub.Origin{Proto: "rtmp", Remote: c.remote, ID: c.id, Params: c.params, Conn: sessions.IDOf(c.nc)}
}

func localPort(a net.Addr) int {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.Port
	}
	return 0
}

// serve serves c until it ends, or until a player has nothing left to read
// (moved: the server parks it, and serve runs again, resumed, on the next
// message).
func (c *conn) serve(resumed bool) (moved bool) {
	var err error
	if !resumed {
		c.log.Log(context.Background(), c.lifeLevel, "rtmp connection accepted", "local_port", localPort(c.nc.LocalAddr()))
		err = c.handshake()
	}
	if err == nil {
		c.takeBuffer()
		err = c.readMessages()
		if errors.Is(err, errMoved) {
			c.releaseBuffer()
			return true
		}
	}
	c.parking.Stop() // closed before it was watched: the watch is still registered
	c.close()
	if c.pub != nil {
		c.pub.end()
	}
	if c.play != nil {
		c.play.stop()
	}
	switch {
	case err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed):
		c.log.Log(context.Background(), c.lifeLevel, "rtmp connection closed", "bytes_in", c.bytesIn.Load(), "bytes_out", c.bytesOut.Load())
	case c.logLimit(err): // a limit against abuse, logged rate-limited (limits.go)
	default:
		c.closedByError(err)
	}
	return false
}

// errMoved ends readMessages where a waiting player goes on the poller.
var errMoved = errors.New("rtmp: the connection waits on the poller")

func (c *conn) handshake() error {
	c.nc.SetDeadline(time.Now().Add(c.s.handshakeTimeout())) // [rtmp] handshakeSecond: a slow handshake ends here
	complexHS, err := serverHandshake(struct {
		io.Reader
		io.Writer
	}{c.br, c.nc})
	if err != nil {
		return fmt.Errorf("%w: %w", errHandshake, err)
	}
	c.nc.SetWriteDeadline(time.Time{})
	c.log.Trace("rtmp handshake done", "digest", complexHS)
	return nil
}

// readMessages reads and handles messages until the connection ends, or
// returns errMoved where an event-driven player has read all it was sent:
// it waits for its next message on the server's poller, not on a goroutine.
func (c *conn) readMessages() error {
	for {
		if c.play == nil {
			c.nc.SetReadDeadline(time.Now().Add(c.s.readTimeout()))
		} else {
			// A player may send nothing for long; its writes time out instead.
			c.nc.SetReadDeadline(time.Time{})
		}
		m, err := c.cr.ReadMessage()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("nothing received for %s ([rtmp] keepAliveSecond); closing an idle connection (a publisher whose link died, or a client that never began)", c.s.readTimeout())
			}
			return err
		}
		if err := c.handle(m); err != nil {
			return err
		}
		if c.peerWindow > 0 {
			if in := c.bytesIn.Load(); in-c.ackedAt >= uint64(c.peerWindow) {
				c.ackedAt = in
				c.writeMessage(csidControl, msgAck, 0, 0, binary.BigEndian.AppendUint32(nil, uint32(in)))
			}
		}
		if c.play != nil && c.play.runner != nil && c.br.Buffered() == 0 && c.s.parks() {
			return errMoved
		}
	}
}

func (c *conn) handle(m *Message) error {
	switch m.Type {
	case msgSetChunkSize, msgAbort, msgAck, msgSetPeerBandwidth:
		if m.Type == msgAbort && len(m.Body) >= 4 {
			// Dropping a half-received message needs no action: the
			// next header on that chunk stream starts a new one.
		}
		return nil
	case msgWindowAckSize:
		if len(m.Body) >= 4 {
			c.peerWindow = binary.BigEndian.Uint32(m.Body)
		}
		return nil
	case msgUserControl:
		if len(m.Body) >= 6 && binary.BigEndian.Uint16(m.Body) == ucPingRequest {
			body := append([]byte{0, ucPingResponse}, m.Body[2:6]...)
			return c.writeMessage(csidControl, msgUserControl, 0, 0, body)
		}
		return nil
	case msgCommandAMF3:
		if len(m.Body) < 1 {
			return nil
		}
		return c.command(m, m.Body[1:])
	case msgCommandAMF0:
		return c.command(m, m.Body)
	case msgDataAMF0, msgDataAMF3:
		body := m.Body
		if m.Type == msgDataAMF3 && len(body) > 0 {
			body = body[1:]
		}
		if c.pub != nil {
			return c.pub.onData(body)
		}
		return nil
	case msgAudio:
		if c.pub != nil {
			return c.pub.onAudio(m)
		}
		return nil
	case msgVideo:
		if c.pub != nil {
			return c.pub.onVideo(m)
		}
		return nil
	}
	return nil
}

// writeMessage sends one message; callers on several goroutines share the
// socket under wmu.
func (c *conn) writeMessage(csid uint32, typ uint8, msid, ts uint32, body []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = AppendMessage(c.wbuf[:0], csid, typ, msid, ts, body, outChunkSize)
	c.nc.SetWriteDeadline(time.Now().Add(c.s.writeTimeout()))
	n, err := c.nc.Write(c.wbuf)
	c.bytesOut.Add(uint64(n))
	if cap(c.wbuf) > 64<<10 {
		c.wbuf = nil
	}
	return err
}

func (c *conn) writeCommand(msid uint32, values ...any) error {
	return c.writeMessage(csidCommand, msgCommandAMF0, msid, 0, amf0.Encode(values...))
}

func (c *conn) onStatus(msid uint32, level, code, desc string) error {
	return c.writeMessage(csidData, msgCommandAMF0, msid, 0, amf0.Encode("onStatus", 0.0, amf0.Null{},
		amf0.Object{{Key: "level", Value: level}, {Key: "code", Value: code}, {Key: "description", Value: desc}}))
}

func (c *conn) userControl(event uint16, arg uint32) error {
	b := binary.BigEndian.AppendUint16(nil, event)
	return c.writeMessage(csidControl, msgUserControl, 0, 0, binary.BigEndian.AppendUint32(b, arg))
}

// ErrBadCommand is a command Berth cannot make sense of.
var ErrBadCommand = errors.New("rtmp: malformed command")

func (c *conn) command(m *Message, body []byte) error {
	vals, err := amf0.Decode(body)
	if err != nil {
		return fmt.Errorf("%w: AMF0: %w", ErrBadCommand, err)
	}
	if len(vals) < 1 {
		return fmt.Errorf("%w: empty", ErrBadCommand)
	}
	name, ok := vals[0].(string)
	if !ok {
		return fmt.Errorf("%w: the first value is not a command name", ErrBadCommand)
	}
	var txid float64
	if len(vals) > 1 {
		txid, _ = vals[1].(float64)
	}
	var args []any
	if len(vals) > 3 {
		args = vals[3:]
	}
	if c.log.Enabled(context.Background(), logging.LevelTrace) {
		c.log.Trace("rtmp command", "name", name, "txid", txid, "values", fmt.Sprint(vals[min(2, len(vals)):]))
	}
	switch name {
	case "connect":
		var obj amf0.Object
		if len(vals) > 2 {
			obj, _ = vals[2].(amf0.Object)
		}
		return c.onConnect(txid, obj)
	case "createStream":
		return c.writeCommand(0, "_result", txid, amf0.Null{}, float64(streamID))
	case "releaseStream", "FCPublish", "FCUnpublish", "getStreamLength", "FCSubscribe":
		if name == "FCUnpublish" && c.pub != nil {
			c.pub.end()
		}
		if txid != 0 {
			return c.writeCommand(0, "_result", txid, amf0.Null{}, amf0.Undefined{})
		}
		return nil
	case "publish":
		return c.onPublish(m.StreamID, args)
	case "play":
		return c.onPlay(m.StreamID, args)
	case "deleteStream", "closeStream":
		if c.pub != nil {
			c.pub.end()
		}
		if c.play != nil {
			c.play.stop()
		}
		return nil
	}
	return nil
}

func (c *conn) onConnect(txid float64, obj amf0.Object) error {
	app := obj.String("app")
	app, q, _ := strings.Cut(app, "?")
	c.app = strings.Trim(app, "/")
	c.query, _ = url.ParseQuery(q)
	if tc := obj.String("tcUrl"); tc != "" {
		if u, err := url.Parse(tc); err == nil {
			for k, v := range u.Query() {
				if _, ok := c.query[k]; !ok {
					c.query[k] = v
				}
			}
		}
	}
	if err := c.writeMessage(csidControl, msgWindowAckSize, 0, 0, binary.BigEndian.AppendUint32(nil, windowAck)); err != nil {
		return err
	}
	if err := c.writeMessage(csidControl, msgSetPeerBandwidth, 0, 0, append(binary.BigEndian.AppendUint32(nil, windowAck), 2)); err != nil {
		return err
	}
	if err := c.writeMessage(csidControl, msgSetChunkSize, 0, 0, binary.BigEndian.AppendUint32(nil, outChunkSize)); err != nil {
		return err
	}
	props := amf0.Object{
		{Key: "fmsVer", Value: "Berth/" + c.s.Version},
		{Key: "capabilities", Value: 31.0},
		{Key: "mode", Value: 1.0},
	}
	info := amf0.Object{
		{Key: "level", Value: "status"},
		{Key: "code", Value: "NetConnection.Connect.Success"},
		{Key: "description", Value: "Connection succeeded."},
		{Key: "objectEncoding", Value: 0.0},
		{Key: "berth_instance", Value: c.s.Instance},
	}
	// Enhanced RTMP: a client that lists FourCCs learns which ones we take.
	if _, ok := obj.Get("fourCcList").([]any); ok {
		info = append(info, amf0.Property{Key: "fourCcList", Value: []any{"avc1", "hvc1", "Opus"}})
	}
	return c.writeCommand(0, "_result", txid, props, info)
}

// streamPath maps a publish/play name to the hub path app/name, and merges
// its query (credentials) with the connect URL's.
func (c *conn) streamPath(args []any) (path string, q url.Values, err error) {
	if len(args) < 1 {
		return "", nil, errors.New("no stream name")
	}
	name, _ := args[0].(string)
	name, rawq, _ := strings.Cut(name, "?")
	name = strings.Trim(name, "/")
	// "mp4:" names the file type of a play name (Adobe's convention; ffmpeg
	// adds it to a URL ending in .mp4): rtmp://host/record/app/s/day/f.mp4
	// plays the recording's path like RTSP and HTTP-FLV.
	name = strings.TrimPrefix(name, "mp4:")
	if name == "" {
		return "", nil, errors.New("empty stream name; use rtmp://host/app/stream")
	}
	q, _ = url.ParseQuery(rawq)
	c.params = auth.CleanParams(rawq)
	for k, v := range c.query {
		if _, ok := q[k]; !ok {
			q[k] = v
		}
	}
	if c.app == "" {
		return name, q, nil
	}
	return c.app + "/" + name, q, nil
}

func (c *conn) allowed(a auth.Action, q url.Values) bool {
	return c.s.Auth.Allow(a, q.Get("user"), q.Get("pass"))
}

// gate asks the auth Gate (the web hook on_publish / on_play); a refusal
// is logged with the reason the gate gave.
func (c *conn) gate(a auth.Action, path string, q url.Values) error {
	app, stream := path, ""
	if i := strings.IndexByte(path, '/'); i >= 0 {
		app, stream = path[:i], path[i+1:]
	}
	err := c.s.Auth.Authorize(context.Background(), auth.Request{Action: a, Proto: "rtmp", App: app, Stream: stream,
		Params: c.params, Remote: c.remote, ID: c.id, User: q.Get("user")})
	if err != nil {
		c.log.Warn("rtmp "+a.String()+" refused by the web hook", "path", path, "reason", err.Error())
	}
	return err
}

func (c *conn) onPublish(msid uint32, args []any) error {
	if c.pub != nil || c.play != nil {
		return c.onStatus(msid, "error", "NetStream.Publish.BadName", "this connection already publishes or plays")
	}
	path, q, err := c.streamPath(args)
	if err != nil {
		c.onStatus(msid, "error", "NetStream.Publish.BadName", err.Error())
		return fmt.Errorf("publish refused: %w", err)
	}
	if !c.allowed(auth.Publish, q) {
		c.log.Warn("rtmp publish refused: bad or missing credentials", "path", path, "user", q.Get("user"),
			"fix", "add ?user=NAME&pass=PASSWORD of an [auth] publish user to the stream URL")
		c.onStatus(msid, "error", "NetStream.Publish.Unauthorized", "publish needs ?user=NAME&pass=PASSWORD of a publish user")
		return nil
	}
	if err := c.gate(auth.Publish, path, q); err != nil {
		c.onStatus(msid, "error", "NetStream.Publish.Unauthorized", err.Error())
		return fmt.Errorf("publish %s refused by the web hook: %w", path, err)
	}
	if err := c.s.Hub.CheckPublish(path); err != nil {
		c.log.Warn("rtmp publish refused: "+err.Error(), "path", path, "publisher", c.origin().String(),
			"fix", "stop the other publisher, publish to another stream name, or set [general] allow_takeover=1")
		c.onStatus(msid, "error", "NetStream.Publish.BadName", err.Error())
		return fmt.Errorf("publish %s refused: %w", path, err)
	}
	c.pub = newPublishSession(c, path, msid)
	c.cr.Grow(publishReadBuffer)
	c.log.Info("rtmp publish started", "path", path)
	return c.onStatus(msid, "status", "NetStream.Publish.Start", path+" is now published.")
}

func (c *conn) onPlay(msid uint32, args []any) error {
	if c.pub != nil || c.play != nil {
		return c.onStatus(msid, "error", "NetStream.Play.Failed", "this connection already publishes or plays")
	}
	path, q, err := c.streamPath(args)
	if err != nil {
		c.onStatus(msid, "error", "NetStream.Play.StreamNotFound", err.Error())
		return fmt.Errorf("play refused: %w", err)
	}
	if !c.allowed(auth.Play, q) {
		c.log.Warn("rtmp play refused: bad or missing credentials", "path", path, "user", q.Get("user"),
			"fix", "add ?user=NAME&pass=PASSWORD of an [auth] play user to the stream URL")
		return c.onStatus(msid, "error", "NetStream.Play.Unauthorized", "play needs ?user=NAME&pass=PASSWORD of a play user")
	}
	if err := c.gate(auth.Play, path, q); err != nil {
		c.onStatus(msid, "error", "NetStream.Play.Unauthorized", err.Error())
		return fmt.Errorf("play %s refused by the web hook: %w", path, err)
	}
	p, err := startPlay(c, path, msid)
	if err != nil {
		c.log.Info("rtmp play refused", "path", path, "err", err)
		code := "NetStream.Play.Failed"
		if errors.Is(err, hub.ErrNotFound) {
			code = "NetStream.Play.StreamNotFound"
		}
		c.onStatus(msid, "error", code, err.Error())
		return nil
	}
	c.play = p
	return nil
}
