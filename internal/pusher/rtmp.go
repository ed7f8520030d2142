package pusher

import (
	"context"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/berthmedia/berth/internal/flv"
	"github.com/berthmedia/berth/internal/flv/amf0"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/rtmp"
)

// rtmpTarget publishes to an RTMP server: connect to the URL's app,
// publish its stream name, then onMetaData, the sequence headers and the
// frames of the hub's access-unit view as FLV tag bodies (H.265 and Opus
// as enhanced RTMP, as Berth's RTMP players get them). The FLV tags are
// the ones cached on each frame for every RTMP and HTTP-FLV player.
type rtmpTarget struct {
	c       *rtmp.Client
	m       *flv.Muxer
	timeout time.Duration
	addr    string
	base    int64      // the first frame's timestamp: the push starts at 0; -1 until then
	writeDL time.Time  // last write deadline set, refreshed once a second
	wmu     sync.Mutex // the media writes and the read loop's ping answers share the connection

	done    chan struct{} // closed by the read loop when the connection fails
	errOnce sync.Once
	errv    error
}

// setDataFrame makes onMetaData a command to keep and pass on to players,
// as ffmpeg and OBS publish it.
var setDataFrame = amf0.Encode("@setDataFrame")

func dialRTMP(ctx context.Context, spec Spec, st *hub.Stream) (*rtmpTarget, error) {
	u, err := url.Parse(spec.DstURL)
	if err != nil {
		return nil, err
	}
	app, name, err := splitRTMP(u)
	if err != nil {
		return nil, err
	}
	m, err := flv.NewMuxer(st.Tracks)
	if err != nil {
		return nil, err
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "1935")
	}
	hctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	c, err := rtmp.Dial(hctx, host, false) // the handshake and commands below run under hctx's deadline
	if err != nil {
		return nil, err
	}
	// A delete during the handshake hangs up at once rather than after the timeout.
	stop := context.AfterFunc(hctx, func() { c.Close() })
	defer stop()
	if err := c.Connect(app, "rtmp://"+u.Host+"/"+app); err != nil {
		c.Close()
		return nil, err
	}
	status, err := c.PublishStatus(name)
	if err != nil {
		c.Close()
		return nil, err
	}
	if status.Code != "NetStream.Publish.Start" {
		c.Close()
		return nil, &RefusedError{Proto: "rtmp", Step: "publish", Reason: status.Code + ": " + status.Description}
	}
	if err := c.SetPublishChunkSize(); err != nil {
		c.Close()
		return nil, err
	}
	c.Conn().SetDeadline(time.Time{})
	t := &rtmpTarget{c: c, m: m, timeout: spec.Timeout, addr: c.Conn().RemoteAddr().String(), base: -1, done: make(chan struct{})}
	go t.readLoop()
	return t, nil
}

// readLoop reads what the server sends while we publish: acknowledgements,
// pings, and an onStatus error when it refuses the stream late (Berth's
// RTMP server checks the path again once the tracks are known).
func (t *rtmpTarget) readLoop() {
	for {
		msg, err := t.c.ReadMessage()
		if err != nil {
			t.fail(err)
			return
		}
		t.wmu.Lock()
		_, err = t.c.AnswerPing(msg)
		t.wmu.Unlock()
		if err != nil {
			t.fail(err)
			return
		}
		if st, err := rtmp.ParseStatus(msg); err == nil && st.Level == "error" {
			t.fail(&RefusedError{Proto: "rtmp", Step: "publish", Reason: st.Code + ": " + st.Description})
			t.c.Close()
		}
	}
}

func (t *rtmpTarget) fail(err error) {
	t.errOnce.Do(func() {
		t.errv = err
		close(t.done)
	})
}

func (t *rtmpTarget) kind() hub.Kind          { return hub.KindAU }
func (t *rtmpTarget) failed() <-chan struct{} { return t.done }
func (t *rtmpTarget) remote() string          { return t.addr }
func (t *rtmpTarget) abort()                  { t.c.Close() }

func (t *rtmpTarget) err() error {
	select {
	case <-t.done:
		return t.errv
	default:
		return nil
	}
}

// close hangs up; the read loop then ends on the closed connection.
func (t *rtmpTarget) close() {
	t.c.Close()
	<-t.done
}

func (t *rtmpTarget) write(frames []*hub.Frame) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if now := time.Now(); t.writeDL.Sub(now) < t.timeout-time.Second {
		t.writeDL = now.Add(t.timeout)
		t.c.Conn().SetWriteDeadline(t.writeDL)
	}
	for _, f := range frames {
		if t.m.Codec(f) == flv.TagNone {
			continue
		}
		tags, ok := t.m.Start(f) // held back until the video's parameter sets are known
		if !ok {
			continue
		}
		for _, tag := range tags {
			body := tag.Body
			if tag.Type == flv.TagScript {
				body = append(append([]byte(nil), setDataFrame...), body...)
			}
			if err := t.c.SendMediaChunked(tag.Type, 0, body); err != nil {
				return err
			}
		}
		tag := t.m.FrameTag(f)
		ts := int64(flv.TagTimestamp(tag))
		if t.base < 0 {
			t.base = ts
		}
		if err := t.c.SendMediaChunked(tag[0], uint32(max(ts-t.base, 0)), flv.TagBody(tag)); err != nil {
			return err
		}
	}
	return nil
}
