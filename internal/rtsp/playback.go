package rtsp

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
)

// Playback controls streams that play a recording back (internal/record's
// Playback): an RTSP reader's PLAY Range seeks, its Scale sets the speed,
// PAUSE holds the file (RFC 2326 §10.5, §10.6, §12.29, §12.34). The stream
// is shared, so a control acts on every reader of it, as in ZLMediaKit.
type Playback interface {
	// Seek moves to the last keyframe at or before at and returns its
	// time; the keyframe is in the ring when Seek returns.
	Seek(path string, at time.Duration) (time.Duration, error)
	SetSpeed(path string, speed float64) error
	Pause(path string, pause bool) error
	// Position is where the playback is in its file.
	Position(path string) (at, dur time.Duration, err error)
}

// errNotNPT: a Range the server does not seek by.
var errNotNPT = errors.New("only npt ranges are supported (Range: npt=3.5-)")

// parseNPTStart reads the start of a Range header's npt range (RFC 2326
// §3.6): "npt=3.5-", "npt=0:01:02.5-10". seek is false for "npt=now-" and
// a range with no start: the play goes on from where it is.
func parseNPTStart(v string) (at time.Duration, seek bool, err error) {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, ';'); i >= 0 { // ";time=" (§12.29)
		v = v[:i]
	}
	rest, ok := strings.CutPrefix(v, "npt=")
	if !ok {
		return 0, false, errNotNPT
	}
	start, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false, fmt.Errorf("range %q has no '-'", v)
	}
	start = strings.TrimSpace(start)
	if start == "" || start == "now" {
		return 0, false, nil
	}
	secs := 0.0
	parts := strings.Split(start, ":")
	if len(parts) > 3 {
		return 0, false, fmt.Errorf("npt time %q is not seconds or h:mm:ss", start)
	}
	for _, p := range parts {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || strings.ContainsAny(p, "eExXpP_") {
			return 0, false, fmt.Errorf("npt time %q is not seconds or h:mm:ss", start)
		}
		secs = secs*60 + f
	}
	if secs > 1e7 { // beyond any recording; also keeps the Duration from overflowing
		return 0, false, fmt.Errorf("npt time %q is out of range", start)
	}
	return time.Duration(secs * float64(time.Second)), true, nil
}

// parseScale reads a Scale header (RFC 2326 §12.34): a positive speed.
func parseScale(v string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || !(f > 0) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("scale %q is not a positive number", v)
	}
	return f, nil
}

// playControl applies a PLAY's Range and Scale to a playback stream before
// the play subscribes, and returns where the play starts in the file. A
// live stream ignores both (it plays from now); ok is false with the
// response to send when the header is wrong.
func (c *conn) playControl(req *base.Request) (start time.Duration, r response, ok bool) {
	pb := c.s.Playback
	if pb == nil {
		return 0, response{}, true
	}
	path := c.sess.path
	at, _, err := pb.Position(path)
	if err != nil {
		return 0, response{}, true // not a playback: a live stream
	}
	if sc := req.Header["Scale"]; len(sc) > 0 {
		speed, err := parseScale(sc[0])
		if err == nil {
			err = pb.SetSpeed(path, speed)
		}
		if err != nil {
			return 0, c.fail(req, base.StatusBadRequest, "PLAY with a Scale the playback cannot take; answered 400", "path", path, "err", err), false
		}
	}
	if rg := req.Header["Range"]; len(rg) > 0 {
		want, seek, err := parseNPTStart(rg[0])
		if err != nil {
			return 0, c.fail(req, base.StatusInvalidRange, "PLAY with a Range Berth cannot seek to; answered 457", "path", path, "err", err), false
		}
		// Clients send npt=0.000- with every first PLAY (ffmpeg does): a
		// start of 0 joins the shared stream where it is instead of
		// taking it back to the beginning for every reader.
		if seek && want > 0 {
			if at, err = pb.Seek(path, want); err != nil {
				return 0, c.fail(req, base.StatusInternalServerError, "seek of the playback failed", "path", path, "err", err), false
			}
			c.log.Info("playback seek", "path", path, "asked", want, "keyframe", at)
			return at, response{}, true
		}
	}
	c.pausePlayback(false) // a PLAY after PAUSE resumes
	return at, response{}, true
}

// pausePlayback holds or resumes the session's stream when it plays a
// recording.
func (c *conn) pausePlayback(pause bool) {
	if c.s.Playback != nil {
		_ = c.s.Playback.Pause(c.sess.path, pause) // a live stream: nothing to do
	}
}

// isPlayback reports whether the session's stream plays a recording.
func (c *conn) isPlayback() bool {
	if c.s.Playback == nil {
		return false
	}
	_, _, err := c.s.Playback.Position(c.sess.path)
	return err == nil
}
