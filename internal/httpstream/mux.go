package httpstream

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/berthmedia/berth/internal/fanout"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/muxring"
)

// muxBatch is how many chunks a player of a shared muxer takes per write.
const muxBatch = 64

// MuxPlay is an event-driven player of a shared muxer's chunks (HTTP-TS,
// HTTP-fMP4): the cursor it reads and the counted hub registration it
// stands for (nil for none), both its own to close once it started.
type MuxPlay struct {
	Cur     *muxring.Cursor
	Reg     *hub.Reader
	Pool    *fanout.Pool
	First   []byte // the format's header (fMP4's init segment); nil for none
	Timeout time.Duration
	Log     *slog.Logger
	// Started logs the play's start; Ended its end, with why and the bytes
	// sent (after the cursor and the registration are closed).
	Started func()
	Ended   func(err error, sent uint64)
	// WebSocket, PerMessage and Poller are Play's: serve the upgrade as a
	// WebSocket (a message per buffer with PerMessage), its page's frames
	// waited for by Poller.
	WebSocket, PerMessage bool
	Poller                *fanout.Poller
}

// StartMux serves p event-driven (StartEvents) where the connection
// allows; it reports false, having written nothing, when not. The stream's
// end finishes the body cleanly.
func StartMux(w http.ResponseWriter, r *http.Request, p MuxPlay) bool {
	var wrote func(int)
	if p.Reg != nil {
		wrote = func(n int) { p.Reg.AddBytes(uint64(n)) }
	}
	return StartEvents(w, r, &Play{
		Src: p.Cur.Bytes(muxBatch), Pool: p.Pool, MaxBufs: muxBatch, First: p.First, Timeout: p.Timeout, Log: p.Log,
		Wrote:   wrote,
		Clean:   func(err error) bool { return errors.Is(err, hub.ErrEnded) },
		Started: p.Started, WebSocket: p.WebSocket, PerMessage: p.PerMessage, Poller: p.Poller,
		Done: func(err error, sent uint64) {
			p.Cur.Close()
			if p.Reg != nil {
				p.Reg.Close()
			}
			p.Ended(err, sent)
		},
	})
}
