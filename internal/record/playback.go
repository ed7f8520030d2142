package record

import (
	"errors"
	"fmt"
	"log/slog"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/berthmedia/berth/internal/hub"
)

// Playback plays recordings back as live-like streams, as ZLMediaKit
// does: a reader of <appName>/<app>/<stream>/<YYYY-MM-DD>/<HH-MM-SS>.mp4
// (rtsp://host/record/live/cam/2026-12-04/12-00-00.mp4, the same path over
// RTMP, HTTP-FLV and HLS) finds no stream; Playback, a hub observer, opens
// the file under [record] filePath and publishes it at that path, its
// frames paced by their timestamps. The stream ends at the file's end (or
// loops, [record] fileRepeat) and stops after its last reader leaves
// ([general] streamNoneReaderDelayMS). Seek, speed and pause act on the
// stream, so on every reader of it (as in ZLMediaKit). See docs/record.md.
type Playback struct {
	Hub *hub.Hub
	Log *slog.Logger
	// Settings gives [record] filePath, appName and fileRepeat.
	Settings func() Settings
	// NoReaderDelay is how long a playback without readers goes on.
	NoReaderDelay func() time.Duration

	start   sync.Mutex            // one StreamNotFound opens and publishes at a time
	mu      sync.Mutex            // players, closed; never held across a hub call
	players map[string]*vodPlayer // by hub path
	closed  bool
	wg      sync.WaitGroup
}

// Errors of the playback controls.
var (
	ErrNotPlayback = errors.New("the stream is not the playback of a recording")
	ErrBadSpeed    = errors.New("speed must be between 0.1 and 20")
)

var _ hub.Observer = (*Playback)(nil)

func (p *Playback) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

// File maps a hub path to the recording it names, or "" when the path is
// not one: it must lie under appName, end in .mp4, and every element must
// be a plain name (no "..", no hidden file, no absolute path), so no path
// a reader sends names a file outside filePath.
func (set Settings) File(streamPath string) string {
	rel, ok := strings.CutPrefix(streamPath, set.AppName+"/")
	if !ok || set.AppName == "" || !strings.HasSuffix(rel, ".mp4") || path.Clean(rel) != rel {
		return ""
	}
	for _, el := range strings.Split(rel, "/") {
		if el == "" || el == "." || el == ".." || strings.HasPrefix(el, ".") || strings.ContainsAny(el, `\:`) {
			return ""
		}
	}
	if !filepath.IsLocal(filepath.FromSlash(rel)) {
		return ""
	}
	return filepath.Join(set.Root, set.AppName, filepath.FromSlash(rel))
}

// StreamNotFound opens the recording a reader asked for and publishes it,
// before SubscribeWait looks again, so the reader gets it without a wait.
// It runs on the reader's goroutine: indexing a file reads its fragment
// headers (milliseconds for minutes of media).
func (p *Playback) StreamNotFound(streamPath string, who hub.Origin) {
	set := p.Settings()
	file := set.File(streamPath)
	if file == "" {
		return
	}
	p.start.Lock()
	defer p.start.Unlock()
	if p.player(streamPath) != nil || p.Hub.Get(streamPath) != nil {
		return
	}
	m, err := openMedia(file)
	if err != nil {
		p.log().Warn("playback: cannot play the recording a reader asked for", "path", streamPath, "reader", who.String(),
			"err", err, "fix", "ask for a file getMp4RecordFile lists (a closed .mp4 under [record] filePath)")
		return
	}
	// Publish tells the observers (this one too): p.mu is not held.
	pub, err := p.Hub.Publish(streamPath, hub.Origin{Proto: "playback", Remote: "file", ID: file}, hub.KindAU, m.tracks, nil)
	if err != nil {
		m.Close()
		p.log().Warn("playback: cannot publish the recording", "path", streamPath, "err", err)
		return
	}
	v := newVodPlayer(p, streamPath, m, pub, set.FileRepeat)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		pub.Close()
		m.Close()
		return
	}
	if p.players == nil {
		p.players = map[string]*vodPlayer{}
	}
	p.players[streamPath] = v
	p.wg.Add(1)
	p.mu.Unlock()
	v.arm() // the reader that asked subscribes next and disarms it
	p.log().Info("playback started", "path", streamPath, "file", file, "duration", m.dur.Round(time.Millisecond),
		"tracks", len(m.tracks), "repeat", set.FileRepeat, "reader", who.String())
	go func() {
		defer p.wg.Done()
		v.run()
		p.mu.Lock()
		if p.players[streamPath] == v {
			delete(p.players, streamPath)
		}
		p.mu.Unlock()
	}()
}

func (p *Playback) player(streamPath string) *vodPlayer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.players[streamPath]
}

// StreamPublished arms the no-reader stop of a playback nobody reads yet
// (an RTSP DESCRIBE's reader is only a witness).
func (p *Playback) StreamPublished(s *hub.Stream) {
	if v := p.player(s.Path); v != nil && v.owns(s) && s.Readers() == 0 {
		v.arm()
	}
}

// StreamEnded is not needed: the player sees its stream end.
func (p *Playback) StreamEnded(*hub.Stream) {}

// ReaderAdded keeps a playback that was about to stop.
func (p *Playback) ReaderAdded(r *hub.Reader) {
	if v := p.player(r.Stream().Path); v != nil {
		v.disarm()
	}
}

// ReaderRemoved arms the stop after the last reader.
func (p *Playback) ReaderRemoved(r *hub.Reader) {
	s := r.Stream()
	if s.Readers() != 0 || s.Ended() {
		return
	}
	if v := p.player(s.Path); v != nil && v.owns(s) {
		v.arm()
	}
}

// Seek moves the playback of streamPath to the last keyframe at or before
// at (from the file's start) and returns that keyframe's time. When Seek
// returns, the keyframe is in the stream's ring, so a reader that
// subscribes now starts on it.
func (p *Playback) Seek(streamPath string, at time.Duration) (time.Duration, error) {
	v := p.player(streamPath)
	if v == nil {
		return 0, fmt.Errorf("%s: %w", streamPath, ErrNotPlayback)
	}
	return v.control(ctlSeek, at, 0)
}

// SetSpeed sets the pace of the playback of streamPath: 2 plays twice as
// fast. Timestamps are unchanged; frames come sooner.
func (p *Playback) SetSpeed(streamPath string, speed float64) error {
	if !(speed >= 0.1 && speed <= 20) {
		return fmt.Errorf("%w (got %v)", ErrBadSpeed, speed)
	}
	v := p.player(streamPath)
	if v == nil {
		return fmt.Errorf("%s: %w", streamPath, ErrNotPlayback)
	}
	_, err := v.control(ctlSpeed, 0, speed)
	return err
}

// Pause holds (true) or resumes (false) the playback of streamPath.
func (p *Playback) Pause(streamPath string, pause bool) error {
	v := p.player(streamPath)
	if v == nil {
		return fmt.Errorf("%s: %w", streamPath, ErrNotPlayback)
	}
	op := ctlResume
	if pause {
		op = ctlPause
	}
	_, err := v.control(op, 0, 0)
	return err
}

// Position returns where the playback of streamPath is in its file, and
// the file's length.
func (p *Playback) Position(streamPath string) (at, dur time.Duration, err error) {
	v := p.player(streamPath)
	if v == nil {
		return 0, 0, fmt.Errorf("%s: %w", streamPath, ErrNotPlayback)
	}
	at, err = v.control(ctlPosition, 0, 0)
	return at, v.m.dur, err
}

// Close stops every playback and waits for them.
func (p *Playback) Close() {
	p.mu.Lock()
	p.closed = true
	vs := make([]*vodPlayer, 0, len(p.players))
	for _, v := range p.players {
		vs = append(vs, v)
	}
	p.mu.Unlock()
	for _, v := range vs {
		v.stop("server shutting down")
	}
	p.wg.Wait()
}
