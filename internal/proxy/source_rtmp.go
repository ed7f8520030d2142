package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/berthmedia/berth/internal/flv/amf0"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/rtmp"
)

// msgCommandAMF0 is RTMP's AMF0 command message type (RTMP spec 7.1.1).
const msgCommandAMF0 = 20

// rtmpTarget splits rtmp://host[:port]/app/stream[?query] into the dial
// address, the app and tcUrl for connect, and the name to play.
func rtmpTarget(raw string) (addr, app, tcURL, name string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", "", "", err
	}
	addr = u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "1935")
	}
	app, name, ok := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if !ok || app == "" || name == "" {
		return "", "", "", "", fmt.Errorf("%w: %s has no app/stream path", ErrBadURL, Redact(raw))
	}
	if u.RawQuery != "" {
		name += "?" + u.RawQuery
	}
	return addr, app, "rtmp://" + u.Host + "/" + app, name, nil
}

// pullRTMP plays an RTMP source into a KindAU stream.
func (p *Proxy) pullRTMP(ctx context.Context) error {
	addr, app, tcURL, name, err := rtmpTarget(p.src)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, p.spec.Timeout)
	c, err := rtmp.Dial(dctx, addr, false)
	cancel()
	if err != nil {
		return fmt.Errorf("rtmp %s: connecting: %w", addr, err)
	}
	defer c.Close()
	nc := c.Conn()
	nc.SetDeadline(time.Now().Add(p.spec.Timeout))
	if err := c.Connect(app, tcURL); err != nil {
		return fmt.Errorf("rtmp connect to app %q: %w", app, err)
	}
	code, err := c.Play(name)
	if err != nil {
		return fmt.Errorf("rtmp play %q: %w", name, err)
	}
	if code != "NetStream.Play.Start" {
		return fmt.Errorf("rtmp play %q: the source answered %s", name, code)
	}
	nc.SetDeadline(time.Time{})
	var done <-chan struct{}
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	in := newFLVIn(p.out, func(tracks []*hub.Track) error {
		d, err := p.out.begin(hub.KindAU, tracks, nil)
		if err != nil {
			return err
		}
		done = d
		go func() {
			select {
			case <-d:
				nc.Close()
			case <-closed:
			}
		}()
		return nil
	})
	defer close(closed)
	for {
		nc.SetReadDeadline(time.Now().Add(p.spec.Timeout))
		m, err := c.ReadMessage()
		if err != nil {
			if done != nil && isClosed(done) {
				return errStreamClosed
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if m.Type == msgCommandAMF0 {
			if err := rtmpStatus(m.Body); err != nil {
				return err
			}
			continue
		}
		if err := in.tag(m.Type, m.Timestamp, m.Body); err != nil {
			return err
		}
	}
}

// rtmpStatus reads a command during play: an onStatus that says the
// stream stopped ends the session.
func rtmpStatus(body []byte) error {
	vals, err := amf0.Decode(body)
	if err != nil || len(vals) < 4 || vals[0] != "onStatus" {
		return nil
	}
	o, ok := vals[3].(amf0.Object)
	if !ok {
		return nil
	}
	switch code := o.String("code"); code {
	case "NetStream.Play.UnpublishNotify", "NetStream.Play.Stop", "NetStream.Play.StreamNotFound", "NetStream.Play.Failed":
		return errors.New("the source's stream ended (" + code + ")")
	}
	return nil
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
