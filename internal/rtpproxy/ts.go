package rtpproxy

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	mtscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
)

// tsDemuxer runs mediacommon's MPEG-TS reader over the payloads of one RTP
// stream. That reader pulls from an io.Reader, so it runs in its own
// goroutine fed by a queue; the socket goroutine never waits for it.
type tsDemuxer struct {
	ch     chan []byte
	cur    []byte
	once   sync.Once
	done   chan struct{} // closed when the demuxer goroutine has returned
	dead   atomic.Bool   // the demuxer gave up; feeding is pointless
	drops  atomic.Uint64 // payloads dropped because the queue was full
	errors atomic.Uint64 // non-fatal decode errors
}

// tsQueue is how many RTP payloads (7 TS packets each from ffmpeg) may wait
// for the demuxer: about 1.3 MB.
const tsQueue = 1024

func newTSDemuxer() *tsDemuxer {
	return &tsDemuxer{ch: make(chan []byte, tsQueue), done: make(chan struct{})}
}

// feed queues a copy of p; it reports false when the queue is full and p
// was dropped.
func (t *tsDemuxer) feed(p []byte) bool {
	if t.dead.Load() {
		return true
	}
	select {
	case t.ch <- clone(p):
		return true
	default:
		t.drops.Add(1)
		return false
	}
}

// close ends the input; the demuxer goroutine drains the queue and returns.
func (t *tsDemuxer) close() { t.once.Do(func() { close(t.ch) }) }

// Read implements io.Reader for the MPEG-TS reader.
func (t *tsDemuxer) Read(p []byte) (int, error) {
	for len(t.cur) == 0 {
		c, ok := <-t.ch
		if !ok {
			return 0, io.EOF
		}
		t.cur = c
	}
	n := copy(p, t.cur)
	t.cur = t.cur[n:]
	return n, nil
}

// run demuxes until the input ends, then unpublishes. A panic in the
// demuxer ends this stream only.
func (t *tsDemuxer) run(b *builder, log *slog.Logger) {
	defer close(t.done)
	defer b.close()
	defer func() {
		if r := recover(); r != nil {
			t.dead.Store(true)
			log.Error("MPEG-TS demuxer failed on malformed input; the stream ends", "path", b.path, "panic", fmt.Sprint(r))
			for range t.ch { // drain so feeders never see a full queue of a dead demuxer
			}
		}
	}()
	r := &mpegts.Reader{R: t}
	if err := r.Initialize(); err != nil {
		t.dead.Store(true)
		if err != io.EOF {
			log.Warn("MPEG-TS over RTP: no usable program table; the stream is dropped", "path", b.path, "err", err)
		}
		for range t.ch {
		}
		return
	}
	r.OnDecodeError(func(error) { t.errors.Add(1) })
	for _, tr := range r.Tracks() {
		id := int(tr.PID)
		switch c := tr.Codec.(type) {
		case *mtscodecs.H264:
			e := b.stream(id, esH264)
			r.OnDataH264(tr, func(pts, dts int64, au [][]byte) error {
				b.video(e, pts, dts, au)
				return nil
			})
		case *mtscodecs.H265:
			e := b.stream(id, esH265)
			r.OnDataH265(tr, func(pts, dts int64, au [][]byte) error {
				b.video(e, pts, dts, au)
				return nil
			})
		case *mtscodecs.MPEG4Audio:
			e := b.stream(id, esAAC)
			conf := c.Config
			e.aac = &conf
			rate := int64(conf.SampleRate)
			if rate <= 0 {
				rate = 48000
			}
			r.OnDataMPEG4Audio(tr, func(pts int64, aus [][]byte) error {
				for i, au := range aus {
					b.audio(e, pts+int64(i)*1024*clockHz/rate, au)
				}
				return nil
			})
		case *mtscodecs.Opus:
			e := b.stream(id, esOpus)
			e.channels = c.ChannelCount
			if c.Desc != nil && c.Desc.ExplicitChannelCount > 0 {
				e.channels = c.Desc.ExplicitChannelCount
			}
			if e.channels <= 0 {
				e.channels = 2
			}
			r.OnDataOpus(tr, func(pts int64, pkts [][]byte) error {
				for _, p := range pkts {
					b.audio(e, pts, p)
					pts += opus.PacketDuration2(p) * clockHz / 48000
				}
				return nil
			})
		default:
			b.logUnsupported(id, fmt.Sprintf("MPEG-TS codec %T", c))
		}
	}
	b.declared = true
	for {
		if err := r.Read(); err != nil {
			return
		}
	}
}
