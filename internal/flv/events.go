package flv

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/berthmedia/berth/internal/httpstream"
	"github.com/berthmedia/berth/internal/hub"
)

// readBatch is how many frames a player takes from the ring per write.
const readBatch = 64

// startEvents serves an HTTP-FLV GET, or a WS-FLV upgrade, event-driven
// (httpstream.StartEvents: no goroutine per player) where the connection
// allows; it reports false, having written nothing, when not.
func (h *Handler) startEvents(w http.ResponseWriter, r *http.Request, rd *hub.Reader, m *Muxer, ws bool, log *slog.Logger) bool {
	if !ws {
		w.Header().Set("Content-Type", "video/x-flv")
	}
	start := time.Now()
	return httpstream.StartEvents(w, r, &httpstream.Play{
		Src: &tagSource{rd: rd, m: m}, Pool: &h.Players.Get().Senders, MaxBufs: readBatch + 8,
		WebSocket: ws, Poller: &h.Players.Get().Poller, // a batch per message: flv.js takes the byte stream in any split
		First: Header(m.VideoTrack >= 0, m.AudioTrack >= 0), Timeout: h.writeTimeout(), Log: log,
		Clean: isEnded,
		Started: func() {
			start = time.Now()
			log.Info("flv play started", "video", m.Video.String(), "audio", m.Audio.String())
		},
		Done: func(err error, sent uint64) {
			rd.Close()
			h.untrack(rd)
			h.logEnd(log, err, start, sent)
		},
	})
}

// tagSource is an event-driven player's FLV tags: the frames of its own
// hub reader, muxed for it.
type tagSource struct {
	rd *hub.Reader
	m  *Muxer
}

// framePool lends Next its frame pointers for a call, so a waiting player
// holds none (issue 14: memory per viewer).
var framePool = sync.Pool{New: func() any { return new([readBatch]*hub.Frame) }}

func (s *tagSource) SetReady(ready func()) { s.rd.SetReady(ready) }

// Next appends the tags of the frames waiting; frames the player does not
// carry (or before its first keyframe) are skipped, so it reads on until
// it has a tag or the ring is empty.
func (s *tagSource) Next(bufs [][]byte) ([][]byte, error) {
	frames := framePool.Get().(*[readBatch]*hub.Frame)
	defer framePool.Put(frames) // appendTags leaves it cleared
	for {
		n, err := s.rd.TryRead(frames[:])
		if err != nil || n == 0 {
			return bufs, err
		}
		before := len(bufs)
		bufs = s.m.appendTags(bufs, frames[:n])
		if len(bufs) > before {
			return bufs, nil
		}
	}
}

// appendTags appends the tags of frames for this player (the sequence
// headers before its first keyframe) to bufs, clearing frames.
func (m *Muxer) appendTags(bufs [][]byte, frames []*hub.Frame) [][]byte {
	for i, f := range frames {
		frames[i] = nil
		if !m.Carries(f) {
			continue
		}
		tags, ok := m.Start(f)
		if !ok {
			continue
		}
		for _, t := range tags {
			bufs = append(bufs, AppendTag(nil, t.Type, t.TS, t.Body))
		}
		bufs = append(bufs, m.FrameTag(f))
	}
	return bufs
}
