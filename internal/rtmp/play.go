package rtmp

import (
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/berthmedia/berth/internal/flv"
	"github.com/berthmedia/berth/internal/flv/amf0"
	"github.com/berthmedia/berth/internal/hub"
)

// encRTMP caches a frame's RTMP chunks (type 0 header with the stream's
// absolute timestamp, fixed chunk stream and message stream ids, chunk size
// outChunkSize), derived from its cached FLV tag.
var encRTMP = hub.RegisterEncoding()

// chunkBuilders, one per tag codec, are made once here so Encoded gets a
// plain function value on the fan-out path.
var chunkBuilders [flv.NumTagCodecs]func(*hub.Frame) []byte

func init() {
	for c := range chunkBuilders {
		build := flv.TagBuilders[c]
		if build == nil {
			continue
		}
		chunkBuilders[c] = func(f *hub.Frame) []byte { return chunksOfTag(f.Encoded(flv.EncTag, build)) }
	}
}

func chunksOfTag(tag []byte) []byte {
	typ := tag[0]
	ts := flv.TagTimestamp(tag)
	body := flv.TagBody(tag)
	csid := uint32(csidVideo)
	if typ == flv.TagAudio {
		csid = csidAudio
	}
	out := make([]byte, 0, MessageSize(csid, ts, len(body), outChunkSize))
	return AppendMessage(out, csid, typ, streamID, ts, body, outChunkSize)
}

// readBatch is how many frames a reader takes from the ring per write.
const readBatch = 64

type playSession struct {
	c     *conn
	path  string
	msid  uint32
	r     *hub.Reader
	m     *flv.Muxer
	start time.Time
	sent  uint64
	// frames counts frames written, for benchmarks.
	nframes atomic.Uint64

	frames []*hub.Frame
	bufs   net.Buffers
	wbufs  net.Buffers // WriteTo consumes its receiver; this one lives on the heap once
	done   chan struct{}
}

func startPlay(c *conn, path string, msid uint32) (*playSession, error) {
	r, err := c.s.Hub.Subscribe(path, hub.KindAU, c.origin())
	if err != nil {
		return nil, err
	}
	m, err := flv.NewMuxer(r.Stream().Tracks)
	if err != nil {
		r.Close()
		return nil, err
	}
	p := &playSession{c: c, path: path, msid: msid, r: r, m: m, start: time.Now(),
		frames: make([]*hub.Frame, readBatch), bufs: make(net.Buffers, 0, readBatch+4), done: make(chan struct{})}
	c.userControl(ucStreamBegin, streamID)
	c.onStatus(msid, "status", "NetStream.Play.Reset", "Playing and resetting "+path+".")
	c.onStatus(msid, "status", "NetStream.Play.Start", "Started playing "+path+".")
	c.writeMessage(csidData, msgDataAMF0, msid, 0, amf0.Encode("|RtmpSampleAccess", true, true))
	c.log.Info("rtmp play started", "path", path, "video", m.Video.String(), "audio", m.Audio.String())
	go p.run()
	return p, nil
}

func (p *playSession) sentFrames() uint64 { return p.nframes.Load() }

// stop detaches the reader; run then returns.
func (p *playSession) stop() {
	p.r.Close()
	<-p.done
}

func (p *playSession) run() {
	defer close(p.done)
	err := p.loop()
	p.r.Close()
	switch {
	case errors.Is(err, hub.ErrEnded):
		// Tell the player the stream is over, then hang up so it exits.
		p.c.onStatus(p.msid, "status", "NetStream.Play.UnpublishNotify", p.path+" is now unpublished.")
		p.c.userControl(ucStreamEOF, streamID)
		p.c.close()
	case errors.Is(err, hub.ErrReaderClosed):
	default:
		p.c.log.Warn("rtmp play stopped: "+err.Error(), "path", p.path)
		p.c.close()
	}
	p.c.log.Info("rtmp play ended", "path", p.path, "duration", time.Since(p.start).Round(time.Millisecond),
		"bytes_out", p.sent, "skips", p.r.Skips)
}

func (p *playSession) loop() error {
	for {
		n, err := p.r.Read(p.frames)
		if err != nil {
			return err
		}
		p.bufs = p.bufs[:0]
		for i, f := range p.frames[:n] {
			p.frames[i] = nil
			c := p.m.Codec(f)
			if c == flv.TagNone {
				continue
			}
			tags, ok := p.m.Start(f)
			if !ok {
				continue
			}
			for _, t := range tags {
				csid, typ := uint32(csidVideo), uint8(t.Type)
				switch t.Type {
				case flv.TagAudio:
					csid = csidAudio
				case flv.TagScript:
					csid, typ = csidData, msgDataAMF0
				}
				p.bufs = append(p.bufs, AppendMessage(nil, csid, typ, streamID, t.TS, t.Body, outChunkSize))
			}
			p.bufs = append(p.bufs, f.Encoded(encRTMP, chunkBuilders[c]))
			p.nframes.Add(1)
		}
		if len(p.bufs) == 0 {
			continue
		}
		if err := p.write(); err != nil {
			return err
		}
	}
}

func (p *playSession) write() error {
	c := p.c
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(c.s.writeTimeout()))
	p.wbufs = p.bufs
	n, err := p.wbufs.WriteTo(c.nc)
	p.sent += uint64(n)
	c.bytesOut.Add(uint64(n))
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return errors.New("the player accepted nothing for " + c.s.writeTimeout().String() + "; dropped it")
		}
		return err
	}
	return nil
}
