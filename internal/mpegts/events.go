package mpegts

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/berthmedia/berth/internal/httpstream"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/muxring"
)

// startEvents serves a GET event-driven (httpstream.StartEvents: no
// goroutine per player; the muxer's chunks wake the handler's senders)
// where the connection allows; it reports false, having written nothing,
// when not. The player then owns cur and reg (nil for none) and closes them.
func (h *Handler) startEvents(w http.ResponseWriter, r *http.Request, cur *muxring.Cursor, reg *hub.Reader, first []byte, codecs string,
	timeout time.Duration, log *slog.Logger) bool {
	w.Header().Set("Content-Type", "video/mp2t")
	start := time.Now()
	return httpstream.StartEvents(w, r, &httpstream.Play{
		Src: cur.Bytes(readBatch), Pool: &h.senders, MaxBufs: readBatch, First: first, Timeout: timeout, Log: log,
		Wrote: func(n int) { reg.AddBytes(uint64(n)) },
		Clean: func(err error) bool { return errors.Is(err, hub.ErrEnded) },
		Started: func() {
			start = time.Now()
			log.Info("ts play started", "codecs", codecs)
		},
		Done: func(err error, sent uint64) {
			cur.Close()
			if reg != nil {
				reg.Close()
			}
			logEnd(log, err, start, sent, timeout)
		},
	})
}

// readBatch is how many chunks a player takes from the ring per write.
const readBatch = 64
