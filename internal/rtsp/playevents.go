package rtsp

import (
	"fmt"
	"runtime/debug"
	"time"

	"github.com/berthmedia/berth/internal/fanout"
)

// The event-driven TCP player (see package fanout): its hub reader wakes
// its runner, and one of the server's sender goroutines writes the batch
// with one non-blocking writev. A healthy player holds no goroutine while
// it waits, and a frame for 400 players costs 400 writev calls from one
// or two goroutines instead of 400 goroutine wake-ups.

// eventState is what the event-driven player keeps between turns; only the
// goroutine that has the runner's turn touches it.
type eventState struct {
	w      *fanout.Writer
	runner *fanout.Runner
	held   int  // frames[:held] are the first packets of a video frame whose rest is coming
	over   bool // finish has been called
}

// startEvents makes p event-driven where its connection allows it.
func (p *player) startEvents() bool {
	w, ok := fanout.NewWriter(p.c.nc, len(playBatch{}.backing))
	if !ok {
		return false
	}
	p.ev.w = w
	p.ev.runner = fanout.NewRunner(&p.c.s.senders, p.serve, p.crashed)
	p.rd.SetReady(p.ev.runner.Wake)
	p.ev.runner.Start()
	return true
}

// serve writes what the reader has until it parks (true), or until the
// turn leaves the runner (false): the play ended, or a goroutine of p's
// own finishes a write the socket did not take.
func (p *player) serve() bool {
	ev := &p.ev
	if ev.over {
		return false
	}
	p.takeBatch()
	for {
		m, err := p.rd.TryRead(p.b.frames[ev.held:])
		n := ev.held + m
		if err == nil {
			if m == 0 {
				ev.held = n // parked; a part of a frame waits for its rest
				if n == 0 {
					p.releaseBatch() // a waiting player holds no batch
				}
				return true
			}
			if n < len(p.b.frames) && p.b.frames[n-1].MidFrame() {
				ev.held = n // the rest of the frame may be there already
				continue
			}
		}
		ev.held = 0
		if bufs := p.batch(n, time.Now()); len(bufs) > 0 {
			if !p.c.wmu.TryLock() { // a response is being written
				go p.finishWrite(bufs, err, false)
				return false
			}
			w, ok := ev.w.TryWrite(bufs)
			p.c.bytesOut.Add(uint64(w))
			if !ok {
				// wmu stays locked for the goroutine that writes the
				// rest: a response let in now would land inside the
				// half-written interleaved frame.
				go p.finishWrite(fanout.Rest(bufs, w), err, true)
				return false
			}
			p.c.wmu.Unlock()
			p.report = p.report[:0]
		}
		if err != nil {
			ev.over = true
			p.releaseBatch()
			go p.finish(err) // its goodbye write may block
			return false
		}
	}
}

// crashed ends a player whose turn panicked.
func (p *player) crashed(v any) {
	p.c.log.Error("player crashed; closed its connection, others are unaffected", "panic", v, "stack", string(debug.Stack()))
	if !p.ev.over {
		p.ev.over = true
		go p.finish(fmt.Errorf("internal error: %v", v))
	}
}

// finishWrite writes what the socket did not take, waiting for it up to
// writeTimeout, then serves p here until its reader parks. locked: the
// caller holds wmu for it (the rest of a write the socket took in part).
func (p *player) finishWrite(bufs [][]byte, readErr error, locked bool) {
	if !locked {
		p.c.wmu.Lock()
	}
	err := p.writeLocked(bufs, time.Now())
	p.c.wmu.Unlock()
	if err == nil {
		err = readErr
	}
	if err != nil {
		p.ev.over = true
		p.releaseBatch()
		p.finish(err)
		return
	}
	// Non-blocking writes set no deadline; one left set would fail them.
	p.c.wmu.Lock()
	p.c.nc.SetWriteDeadline(time.Time{})
	p.wdl = time.Time{}
	p.c.wmu.Unlock()
	p.ev.runner.Run()
}
