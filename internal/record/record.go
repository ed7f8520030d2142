// Package record writes streams to disk as fragmented MP4 files in
// ZLMediaKit's layout, <root>/<appName>/<app>/<stream>/<YYYY-MM-DD>/<HH-MM-SS>.mp4,
// lists and deletes them for the API, finalises what a crash left, and
// serves the files on the HTTP port. A recording is one more reader of the
// stream's shared fMP4 muxer (internal/fmp4): the fragments HTTP-fMP4 sends
// are written to the file as they are, with their decode times moved so
// each file starts at 0. See docs/record.md.
package record

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/muxring"
)

// Errors of Start.
var (
	ErrRecording = errors.New("the stream is already being recorded")
	ErrClosed    = errors.New("recording is shutting down")
	ErrNoHLS     = errors.New("HLS recording needs the MPEG-TS muxers of the HTTP port")
)

// DefaultSyncEvery is how often a recording's file is fsynced: a power cut
// loses at most this much media; a kill -9 loses only the fragment being
// written (every fragment is written whole, at once).
const DefaultSyncEvery = time.Second

// Settings are the server-wide recording settings; a reload swaps them and
// they apply to the next file.
type Settings struct {
	Root       string        // [record] filePath
	AppName    string        // [record] appName
	FileSecond time.Duration // [record] fileSecond
	MaxDays    int           // [record] maxDays: days of recordings kept (Retain); 0 keeps all
	Segment    time.Duration // [hls] segDur: an HLS recording's least segment length
	Window     *Window       // [hls] segKeep=0: an HLS recording keeps a rolling window (hls_window.go); nil keeps every segment
	FastStart  bool          // [record] fastStart: rewrite each closed MP4 file as progressive MP4 (faststart.go)
	FileRepeat bool          // [record] fileRepeat: a playback loops its file (playback.go)
}

// Options are one recording's own settings (startRecord's customized_path
// and max_second, on_publish's mp4_save_path and mp4_max_second); zero
// values take the Settings'.
type Options struct {
	Root       string
	FileSecond time.Duration
	Segment    time.Duration // an HLS recording's least segment length ([hls] segDur); 0 means DefaultSegment
}

// Manager runs the MP4 recordings, one per stream path at most. Set its
// fields before the first Start.
type Manager struct {
	// Open returns a cursor on the stream's shared fMP4 muxer
	// ((*fmp4.Muxers).Open).
	Open func(*hub.Stream) (*muxring.Cursor, error)
	// OpenTS returns a cursor on the stream's shared MPEG-TS muxer
	// ((*mpegts.Muxers).Open), for HLS recordings; nil refuses them.
	OpenTS func(*hub.Stream) (*muxring.Cursor, error)
	// OnSegment is told of every closed HLS segment (on_record_ts).
	OnSegment func(File)
	Log       *slog.Logger
	// OnFile is told of every closed file (on_record_mp4); it must not block.
	OnFile func(File)
	// SyncEvery is the fsync period; 0 means DefaultSyncEvery.
	SyncEvery time.Duration

	settings atomic.Pointer[Settings]
	mu       sync.Mutex
	recs     map[string]*recording
	closed   bool
	wg       sync.WaitGroup
	stop     chan struct{} // closed by Close: ends the retention loop
	rewrite  sync.Mutex    // one fastStart rewrite at a time: they are disk-bound
}

type recording struct {
	hls    bool // an HLS recording (hls.go), else MP4
	stream *hub.Stream
	opts   Options
	cancel context.CancelFunc
}

// SetSettings sets the server-wide settings (at start and on reload).
func (m *Manager) SetSettings(s Settings) {
	if s.AppName == "" {
		s.AppName = "record"
	}
	if s.FileSecond <= 0 {
		s.FileSecond = time.Hour
	}
	m.settings.Store(&s)
}

// Settings returns the server-wide settings.
func (m *Manager) Settings() Settings {
	if s := m.settings.Load(); s != nil {
		return *s
	}
	return Settings{Root: "./www", AppName: "record", FileSecond: time.Hour}
}

func (m *Manager) log() *slog.Logger {
	if m.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.Log
}

// Start records s until Stop, the stream's end, or a write error. It
// returns at once; the files are made by a goroutine of the recording.
func (m *Manager) Start(s *hub.Stream, o Options) error { return m.start(s, o, false) }

// recKey is a recording's key in the map: one MP4 and one HLS recording
// per path at most.
func recKey(path string, hls bool) string {
	if hls {
		return "hls:" + path
	}
	return "mp4:" + path
}

func (m *Manager) start(s *hub.Stream, o Options, hls bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if m.recs == nil {
		m.recs = map[string]*recording{}
	}
	if hls && m.OpenTS == nil {
		return ErrNoHLS
	}
	key := recKey(s.Path, hls)
	if r := m.recs[key]; r != nil && !r.stream.Ended() {
		return ErrRecording
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &recording{hls: hls, stream: s, opts: o, cancel: cancel}
	m.recs[key] = r
	m.wg.Add(1)
	go m.run(ctx, r)
	return nil
}

// Stop ends the recording of path (its file is closed and reported);
// false when there is none.
func (m *Manager) Stop(path string) bool { return m.stopRec(path, false) }

func (m *Manager) stopRec(path string, hls bool) bool {
	m.mu.Lock()
	r := m.recs[recKey(path, hls)]
	delete(m.recs, recKey(path, hls))
	m.mu.Unlock()
	if r == nil {
		return false
	}
	r.cancel()
	return true
}

// Recording reports whether path is being recorded.
func (m *Manager) Recording(path string) bool { return m.recording(path, false) }

func (m *Manager) recording(path string, hls bool) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.recs[recKey(path, hls)]
	return r != nil && !r.stream.Ended()
}

// Close stops every recording, waits (up to ctx) for their files to be
// closed, and refuses new ones.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	if !m.closed && m.stop != nil {
		close(m.stop)
	}
	m.closed = true
	for p, r := range m.recs {
		r.cancel()
		delete(m.recs, p)
	}
	m.mu.Unlock()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StartRetention applies [record] maxDays now and every RetainEvery until
// Close, on a goroutine of its own (removing a day of files takes time).
func (m *Manager) StartRetention() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.stop != nil {
		return
	}
	m.stop = make(chan struct{})
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(RetainEvery)
		defer t.Stop()
		for {
			s := m.Settings()
			Retain(s.Root, s.AppName, s.MaxDays, time.Now(), m.log())
			select {
			case <-t.C:
			case <-m.stop:
				return
			}
		}
	}()
}

func (m *Manager) forget(r *recording) {
	m.mu.Lock()
	if key := recKey(r.stream.Path, r.hls); m.recs[key] == r {
		delete(m.recs, key)
	}
	m.mu.Unlock()
}

// run is one recording's goroutine. A recording that fell a whole ring of
// fragments behind (the disk was slower than the stream for seconds) closes
// its file and goes on from the newest keyframe in a new one, so the stream
// never waits for the disk; a write error stops it.
func (m *Manager) run(ctx context.Context, r *recording) {
	defer m.wg.Done()
	defer r.cancel()
	defer m.forget(r)
	what := "MP4"
	follow := m.follow
	if r.hls {
		what, follow = "HLS", m.followHLS
	}
	log := m.log().With("path", r.stream.Path)
	log.Info(what + " recording started")
	for {
		err := follow(ctx, r, log)
		switch {
		case errors.Is(err, muxring.ErrSlowReader):
			log.Warn(what + " recording fell behind the stream (the disk is slower than the stream); its file is closed and a new one starts at the next keyframe")
			continue
		case err == nil, errors.Is(err, context.Canceled):
			log.Info(what + " recording stopped")
		case errors.Is(err, hub.ErrEnded), errors.Is(err, muxring.ErrStopped), errors.Is(err, hub.ErrReaderClosed):
			log.Info(what + " recording ended with its stream")
		default:
			var we *writeError
			if errors.As(err, &we) {
				log.Error(what+" recording stopped: "+err.Error(), "fix",
					"free disk space or make [record] filePath a writable directory, then startRecord again; the stream and its players go on")
			} else { // the stream cannot be muxed (no track the format carries)
				log.Warn(what+" recording stopped: the stream cannot be recorded: "+err.Error(), "fix",
					"record a stream with H.264, H.265 or AV1 video or AAC or Opus audio")
			}
		}
		return
	}
}

// follow reads one cursor of the stream's fMP4 muxer into files until it
// fails, and returns why.
func (m *Manager) follow(ctx context.Context, r *recording, log *slog.Logger) error {
	cur, err := m.Open(r.stream)
	if err != nil {
		return err
	}
	defer cur.Close()
	init, _, err := cur.Ready(ctx)
	if err != nil {
		return err
	}
	var w *fileWriter
	closeFile := func() error {
		if w == nil {
			return nil
		}
		f, err := w.close()
		w = nil
		if err != nil {
			return &writeError{path: f.Path, err: err}
		}
		log.Info("MP4 recording file closed", "file", f.Path, "seconds", f.Duration.Seconds(), "bytes", f.Size)
		if m.Settings().FastStart {
			// Off the recording's goroutine: rewriting an hour of media takes
			// seconds, and the cursor must keep up with the stream.
			m.wg.Add(1)
			go m.fastStart(f, log)
			return nil
		}
		if m.OnFile != nil {
			m.OnFile(f)
		}
		return nil
	}
	defer closeFile()
	chunks := make([]*muxring.Chunk, 0, 64)
	app, stream := splitPath(r.stream.Path)
	for {
		chunks, err = cur.Next(ctx, chunks[:0])
		for i, ch := range chunks {
			chunks[i] = nil
			set := m.Settings()
			fileLen := set.FileSecond
			if r.opts.FileSecond > 0 {
				fileLen = r.opts.FileSecond
			}
			if w != nil && ch.Key && (w.info.Duration >= fileLen || ch.Discontinuity) {
				if err := closeFile(); err != nil {
					return err
				}
			}
			if w == nil {
				if !ch.Key {
					continue
				}
				root := set.Root
				if r.opts.Root != "" {
					root = r.opts.Root
				}
				w, err = createFile(root, set.AppName, app, stream, time.Now(), init, m.syncEvery())
				if err != nil {
					return &writeError{path: streamDir(root, set.AppName, app, stream), err: err}
				}
			}
			if err := w.write(ch); err != nil {
				werr := &writeError{path: w.hidden, err: err}
				closeFile()
				return werr
			}
		}
		if err != nil {
			return err
		}
	}
}

// fastStart rewrites a closed file as progressive MP4, then reports it; a
// rewrite that fails leaves the fragmented file, which plays, and says why.
func (m *Manager) fastStart(f File, log *slog.Logger) {
	defer m.wg.Done()
	m.rewrite.Lock()
	size, err := progressive(f.Path)
	m.rewrite.Unlock()
	if err != nil {
		log.Warn("fastStart: the file stays fragmented MP4 (it plays as it is)", "file", f.Path, "err", err)
	} else {
		log.Info("fastStart: file rewritten as progressive MP4", "file", f.Path, "bytes", size)
		f.Size = size
	}
	if m.OnFile != nil {
		m.OnFile(f)
	}
}

func (m *Manager) syncEvery() time.Duration {
	if m.SyncEvery > 0 {
		return m.SyncEvery
	}
	return DefaultSyncEvery
}

// writeError names the file or directory a recording could not write.
type writeError struct {
	path string
	err  error
}

func (e *writeError) Error() string {
	cause := e.err
	var pe *fs.PathError
	if errors.As(cause, &pe) { // the os error names the path again
		cause = pe.Err
	}
	return "cannot write " + e.path + ": " + cause.Error()
}
func (e *writeError) Unwrap() error { return e.err }

// splitPath splits "app/stream" at its last slash (an app may hold slashes).
func splitPath(p string) (app, stream string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], path.Base(p[i:])
}
