package record

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/berthmedia/berth/internal/hub"
)

// vodPlayer is one playback: a goroutine that writes a recording's samples
// into the hub when their time comes. Its timeline is the stream's: it
// never goes back (a seek, a loop, a pause go on from the last frame sent),
// so readers see a live stream whose content jumps, as with ZLMediaKit.
type vodPlayer struct {
	pb     *Playback
	path   string
	m      *vodMedia
	pub    *hub.Publisher
	repeat bool
	log    *slog.Logger

	ctl      chan vodControl
	quit     chan struct{}
	quitOnce sync.Once
	why      string // why quit closed; set before

	mu        sync.Mutex
	stopTimer *time.Timer
}

type ctlOp int

const (
	ctlSeek ctlOp = iota
	ctlSpeed
	ctlPause
	ctlResume
	ctlPosition
)

type vodControl struct {
	op    ctlOp
	at    time.Duration
	speed float64
	reply chan vodReply
}

type vodReply struct {
	at  time.Duration
	err error
}

// errPlaybackOver: the control came after the playback ended.
var errPlaybackOver = errors.New("the playback has ended")

// seekGap separates the last frame before a seek or loop from the first
// after it on the stream's timeline (every track's times must go forward).
const seekGap = 40 * time.Millisecond

func newVodPlayer(p *Playback, path string, m *vodMedia, pub *hub.Publisher, repeat bool) *vodPlayer {
	return &vodPlayer{pb: p, path: path, m: m, pub: pub, repeat: repeat, log: p.log().With("path", path),
		ctl: make(chan vodControl), quit: make(chan struct{})}
}

func (v *vodPlayer) owns(s *hub.Stream) bool { return v.pub.Stream() == s }

func (v *vodPlayer) stop(why string) {
	v.quitOnce.Do(func() {
		v.why = why
		close(v.quit)
	})
}

// control hands a request to the player's goroutine and waits for its
// answer (a seek is answered once its keyframe is in the ring).
func (v *vodPlayer) control(op ctlOp, at time.Duration, speed float64) (time.Duration, error) {
	c := vodControl{op: op, at: at, speed: speed, reply: make(chan vodReply, 1)}
	select {
	case v.ctl <- c:
	case <-v.quit:
		return 0, errPlaybackOver
	case <-v.pub.Done():
		return 0, errPlaybackOver
	}
	select {
	case r := <-c.reply:
		return r.at, r.err
	case <-v.quit:
		return 0, errPlaybackOver
	case <-v.pub.Done():
		return 0, errPlaybackOver
	}
}

// arm stops the playback after the no-reader delay unless a reader comes.
func (v *vodPlayer) arm() {
	delay := 10 * time.Second
	if v.pb.NoReaderDelay != nil {
		delay = v.pb.NoReaderDelay()
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.stopTimer != nil {
		v.stopTimer.Stop()
	}
	v.stopTimer = time.AfterFunc(delay, func() {
		if v.pub.Stream().Readers() > 0 {
			return
		}
		v.stop("no reader for " + delay.String())
	})
}

func (v *vodPlayer) disarm() {
	v.mu.Lock()
	if v.stopTimer != nil {
		v.stopTimer.Stop()
		v.stopTimer = nil
	}
	v.mu.Unlock()
}

// run writes the samples on time until the file ends (without repeat),
// the stream is closed, or stop.
//
// Pacing: sample i is due at wall0 + (dts_i - seg0) / speed, and goes out
// with the stream time out0 + (dts_i - seg0). A seek, a loop, a speed
// change and a pause each start a new segment (wall0, seg0, out0) from
// where the playback is, so nothing already sent moves.
func (v *vodPlayer) run() {
	defer v.disarm()
	defer v.m.Close()
	defer v.pub.Close()
	samples := v.m.samples
	speed := 1.0
	i := 0
	wall0, seg0, out0 := time.Now(), time.Duration(0), time.Duration(0)
	var lastOut time.Duration // the latest DTS sent on the stream
	sent := false
	paused := false
	var pendingSeek chan vodReply // answered once the seek's keyframe is written
	var seekAt time.Duration
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// position is where the playback is in the file now.
	position := func(now time.Time) time.Duration {
		if paused {
			return seg0
		}
		pos := seg0 + time.Duration(float64(now.Sub(wall0))*speed)
		if i < len(samples) && pos > samples[i].dts { // late: the next sample is not out yet
			pos = max(samples[i].dts, seg0)
		}
		return pos
	}
	rebase := func(now time.Time, pos time.Duration) {
		out0 += pos - seg0
		seg0, wall0 = pos, now
	}
	for {
		if i >= len(samples) {
			if pendingSeek != nil {
				pendingSeek <- vodReply{at: seekAt}
				pendingSeek = nil
			}
			if !v.repeat || len(samples) == 0 {
				v.log.Info("playback ended: the file's end", "duration", v.m.dur.Round(time.Millisecond))
				return
			}
			i, seg0, wall0, out0 = 0, 0, time.Now(), lastOut+seekGap
			continue
		}
		s := samples[i]
		wait := time.Duration(0)
		if paused {
			wait = time.Hour
		} else if d := time.Duration(float64(s.dts-seg0) / speed); d > 0 {
			wait = time.Until(wall0.Add(d))
		}
		if wait > 0 && pendingSeek == nil {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case c := <-v.ctl:
				if !timer.Stop() {
					select {
					case <-timer.C:
					default:
					}
				}
				now := time.Now()
				switch c.op {
				case ctlSeek:
					k := v.m.keyAt(c.at)
					i = k
					seekAt = samples[k].dts
					next := out0
					if sent {
						next = lastOut + seekGap
					}
					seg0, wall0, out0 = seekAt, now, next
					paused = false // a seek resumes, as an RTSP PLAY with Range after PAUSE does
					pendingSeek = c.reply
					v.log.Info("playback seek", "asked", c.at, "keyframe", seekAt)
				case ctlSpeed:
					rebase(now, position(now))
					speed = c.speed
					c.reply <- vodReply{at: seg0}
					v.log.Info("playback speed", "speed", speed)
				case ctlPause:
					if !paused {
						rebase(now, position(now))
						paused = true
					}
					c.reply <- vodReply{at: seg0}
				case ctlResume:
					if paused {
						paused = false
						wall0 = now
					}
					c.reply <- vodReply{at: seg0}
				case ctlPosition:
					c.reply <- vodReply{at: position(now)}
				}
				continue
			case <-v.quit:
				v.log.Info("playback stopped", "why", v.why)
				return
			case <-v.pub.Done():
				v.log.Info("playback stopped: its stream was closed")
				return
			}
		}
		if err := v.write(s, out0+s.dts-seg0); err != nil {
			v.log.Warn("playback ended: a sample cannot be read", "err", err,
				"fix", "the file is damaged; play another recording")
			if pendingSeek != nil {
				pendingSeek <- vodReply{err: err}
			}
			return
		}
		if d := out0 + s.dts - seg0; d > lastOut || !sent {
			lastOut = d
		}
		sent = true
		i++
		if pendingSeek != nil && (i >= len(samples) || samples[i].dts > seekAt) {
			pendingSeek <- vodReply{at: seekAt}
			pendingSeek = nil
		}
	}
}

// write reads sample s and writes it into the hub at stream time dts.
func (v *vodPlayer) write(s vodSample, dts time.Duration) error {
	b, err := s.s.GetPayload()
	if err != nil {
		return err
	}
	au, err := v.m.unpack[s.track](b)
	if err != nil {
		return err
	}
	v.pub.Write(&hub.Frame{Track: s.track, Key: s.key, AU: au, DTS: dts, PTS: dts + s.cts, Recv: time.Now()})
	return nil
}
