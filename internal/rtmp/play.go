package rtmp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthmedia/berth/internal/fanout"
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

	b      *playBatch   // frames and bufs' backing; nil while an event-driven player waits
	frames []*hub.Frame // b.frames
	bufs   net.Buffers  // starts on b.bufs
	wbufs  net.Buffers  // WriteTo consumes its receiver; this one lives on the heap once
	done   chan struct{}

	// Event-driven (see package fanout): set when the socket allows it.
	w      *fanout.Writer
	runner *fanout.Runner
	over   bool // end has been called
}

func startPlay(c *conn, path string, msid uint32) (*playSession, error) {
	r, err := c.s.Hub.SubscribeWait(context.Background(), path, hub.KindAU, c.origin(), c.s.StreamWait)
	if err != nil {
		return nil, err
	}
	m, err := flv.NewMuxer(r.Stream().Tracks)
	if err != nil {
		r.Close()
		return nil, err
	}
	p := &playSession{c: c, path: path, msid: msid, r: r, m: m, start: time.Now(), done: make(chan struct{})}
	c.userControl(ucStreamBegin, streamID)
	c.onStatus(msid, "status", "NetStream.Play.Reset", "Playing and resetting "+path+".")
	c.onStatus(msid, "status", "NetStream.Play.Start", "Started playing "+path+".")
	c.writeMessage(csidData, msgDataAMF0, msid, 0, amf0.Encode("|RtmpSampleAccess", true, true))
	c.log.Info("rtmp play started", "path", path, "video", m.Video.String(), "audio", m.Audio.String())
	if w, ok := fanout.NewWriter(c.nc, readBatch+8); ok {
		// A player that waits holds no goroutine; a frame for many players
		// is one writev each from the server's sender goroutines.
		p.w, p.runner = w, fanout.NewRunner(&c.s.senders, p.serve, p.crashed)
		r.SetReady(p.runner.Wake)
		p.runner.Start()
	} else {
		go p.run()
	}
	return p, nil
}

// playBatch is what one write of a player needs (2.3 KB). An event-driven
// player borrows one from batchPool for its turn only (and while a write
// is pending), so a waiting player holds none.
type playBatch struct {
	frames [readBatch]*hub.Frame
	bufs   [readBatch + 4][]byte
}

var batchPool = sync.Pool{New: func() any { return new(playBatch) }}

func (p *playSession) takeBatch() {
	if p.b == nil {
		p.b = batchPool.Get().(*playBatch)
		p.frames, p.bufs = p.b.frames[:], p.b.bufs[:0]
	}
}

// releaseBatch gives p's batch back, holding no frame from it.
func (p *playSession) releaseBatch() {
	if p.b != nil {
		clear(p.b.bufs[:])
		batchPool.Put(p.b)
		p.b, p.frames, p.bufs = nil, nil, nil
	}
}

func (p *playSession) sentFrames() uint64 { return p.nframes.Load() }

// stop detaches the reader; run then returns.
func (p *playSession) stop() {
	p.r.Close()
	<-p.done
}

// run is the player's goroutine where it cannot be event-driven.
func (p *playSession) run() {
	p.takeBatch()
	p.end(p.loop())
}

// end tells the player why the play ended and logs it.
func (p *playSession) end(err error) {
	defer close(p.done)
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
		if !p.batch(n) {
			continue
		}
		if err := p.write(); err != nil {
			return err
		}
	}
}

// serve is the event-driven player's turn: it writes what the reader has
// until it parks (true), or gives the turn away (false): the play ended, or
// a goroutine of its own finishes a write the socket did not take.
func (p *playSession) serve() bool {
	if p.over {
		return false
	}
	p.takeBatch()
	for {
		n, err := p.r.TryRead(p.frames)
		if err != nil {
			p.over = true
			p.releaseBatch()
			go p.end(err) // its goodbye writes may block
			return false
		}
		if n == 0 {
			p.releaseBatch() // a waiting player holds no batch
			return true
		}
		if !p.batch(n) {
			continue
		}
		c := p.c
		if !c.wmu.TryLock() { // a control message is being written
			go p.finishWrite(false)
			return false
		}
		w, ok := p.w.TryWrite(p.bufs)
		p.sent += uint64(w)
		c.bytesOut.Add(uint64(w))
		if !ok {
			// wmu stays locked for the goroutine that writes the rest:
			// a control message let in now would land inside a
			// half-written chunk.
			p.bufs = fanout.Rest(p.bufs, w)
			go p.finishWrite(true)
			return false
		}
		c.wmu.Unlock()
	}
}

// crashed ends a player whose turn panicked.
func (p *playSession) crashed(v any) {
	p.c.log.Error("rtmp player crashed; closed its connection, others are unaffected", "panic", v, "stack", string(debug.Stack()))
	if !p.over {
		p.over = true
		go p.end(fmt.Errorf("internal error: %v", v))
	}
}

// finishWrite writes the rest of p.bufs, waiting for the socket up to the
// write timeout, then serves the player here until its reader parks.
// locked: the caller holds wmu for it (the rest of a write the socket
// took in part).
func (p *playSession) finishWrite(locked bool) {
	if !locked {
		p.c.wmu.Lock()
	}
	err := p.writeLocked()
	p.c.wmu.Unlock()
	if err != nil {
		p.over = true
		p.releaseBatch()
		p.end(err)
		return
	}
	// Non-blocking writes set no deadline; one left set would fail them.
	p.c.wmu.Lock()
	p.c.nc.SetWriteDeadline(time.Time{})
	p.c.wmu.Unlock()
	p.runner.Run()
}

// batch turns frames[:n] into p.bufs: the chunks each frame carries, built
// once per frame for every player, and the sequence headers and metadata
// a player needs before its first frame. It reports whether there is
// anything to write.
func (p *playSession) batch(n int) bool {
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
	return len(p.bufs) > 0
}

func (p *playSession) write() error {
	p.c.wmu.Lock()
	defer p.c.wmu.Unlock()
	return p.writeLocked()
}

// writeLocked is write for a caller that holds wmu.
func (p *playSession) writeLocked() error {
	c := p.c
	c.nc.SetWriteDeadline(time.Now().Add(c.s.writeTimeout()))
	p.wbufs = p.bufs
	n, err := p.wbufs.WriteTo(c.nc)
	if err == nil {
		err = p.w.Flush() // over TLS: what the socket did not take of a sealed batch
	}
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
