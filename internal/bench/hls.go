package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
)

// An HLS reader is one viewer that behaves like a player (RFC 8216bis):
// its own cookie jar and keep-alive connections; it follows a
// multivariant playlist to the first variant and the audio rendition
// that variant names, as hls.js and Safari do, each media playlist on its
// own connection; it fetches the init segment (EXT-X-MAP) once, then each
// new segment or part once, never a file twice.
//
//   - A playlist without parts (HLS-TS, or fMP4 without LL-HLS) is
//     reloaded every target duration / 2 (RFC 8216bis §6.3.4 allows
//     that much when it has not changed); the viewer starts three
//     segments from the end (§6.3.3) and fetches whole segments.
//   - An LL-HLS playlist (EXT-X-PART-INF, CAN-BLOCK-RELOAD=YES) is asked
//     for the next part with a blocking reload, _HLS_msn=M&_HLS_part=P
//     (§6.2.5.2), as low-latency players do; the viewer starts at the
//     newest independent part and fetches parts, not segments. Preload
//     hints are not followed (an optional speed-up for players).

// hlsViewer is one reader of an HLS URL.
type hlsViewer struct {
	p      *player
	st     *readerStats
	ff     *firstFrames
	client *http.Client
}

// hlsPos is a position in a media playlist: segment msn, part index.
type hlsPos struct{ msn, part int }

func (a hlsPos) before(b hlsPos) bool { return a.msn < b.msn || a.msn == b.msn && a.part < b.part }

func (p *player) readHLS(ctx context.Context, st *readerStats, up func()) error {
	tr := &http.Transport{
		MaxIdleConnsPerHost:   2, // a video and an audio playlist, each with its own connection
		ResponseHeaderTimeout: p.cfg.Timeout,
		DisableCompression:    true,
	}
	defer tr.CloseIdleConnections()
	jar, _ := cookiejar.New(nil)
	v := &hlsViewer{p: p, st: st, ff: newFirstFrames(p), client: &http.Client{Transport: tr, Jar: jar}}
	pl, err := v.playlist(ctx, p.cfg.URL)
	if err != nil {
		return err
	}
	switch pl := pl.(type) {
	case *playlist.Media:
		up()
		return v.follow(ctx, p.cfg.URL, pl)
	case *playlist.Multivariant:
		uris, err := mediaPlaylists(p.cfg.URL, pl)
		if err != nil {
			return err
		}
		up()
		return v.followAll(ctx, uris)
	}
	return fmt.Errorf("%s: not an HLS playlist", p.cfg.URL)
}

// mediaPlaylists picks the first variant of a multivariant playlist and
// the audio rendition it names (the default one, else the first).
func mediaPlaylists(base string, mv *playlist.Multivariant) ([]string, error) {
	if len(mv.Variants) == 0 {
		return nil, fmt.Errorf("%s: the multivariant playlist lists no variant", base)
	}
	va := mv.Variants[0]
	uris := []string{resolveRef(base, va.URI)}
	var audio *playlist.MultivariantRendition
	for _, r := range mv.Renditions {
		if r.Type == playlist.MultivariantRenditionTypeAudio && r.GroupID == va.Audio && va.Audio != "" && r.URI != nil {
			if audio == nil || r.Default && !audio.Default {
				audio = r
			}
		}
	}
	if audio != nil {
		uris = append(uris, resolveRef(base, *audio.URI))
	}
	return uris, nil
}

func resolveRef(base, ref string) string {
	b, err := url.Parse(base)
	if err != nil {
		return ref
	}
	r, err := url.Parse(ref)
	if err != nil {
		return ref
	}
	return b.ResolveReference(r).String()
}

// followAll follows several media playlists at once; the first to fail
// stops the others.
func (v *hlsViewer) followAll(ctx context.Context, uris []string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, u := range uris {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := v.mediaPlaylist(ctx, u)
			if err == nil {
				err = v.follow(ctx, u, m)
			}
			once.Do(func() { first = err })
			cancel()
		}()
	}
	wg.Wait()
	return first
}

// get fetches u into out (a whole playlist) or through sc (a segment).
func (v *hlsViewer) get(ctx context.Context, u string, out *bytes.Buffer, sc scanner, buf []byte) error {
	ctx, cancel := context.WithTimeout(ctx, v.p.cfg.Timeout)
	defer cancel()
	name := withoutQuery(u) // errors are counted by their text: no session tokens in it
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("HLS URL %q: %w", name, err)
	}
	res, err := v.client.Do(req)
	if err != nil {
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err // it repeats the whole URL
		}
		return fmt.Errorf("GET %s: %w", name, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", name, res.Status)
	}
	if out != nil {
		n, err := out.ReadFrom(res.Body)
		v.st.bytes.Add(uint64(n))
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		return nil
	}
	for {
		n, err := res.Body.Read(buf)
		if n > 0 {
			v.st.bytes.Add(uint64(n))
			c, serr := sc.scan(buf[:n])
			c.report(v.st, v.ff)
			if serr != nil {
				return fmt.Errorf("%s: %w", name, serr)
			}
		}
		if err == io.EOF {
			if sc.partial() {
				return fmt.Errorf("%s: the file ends inside a TS packet or MP4 box", name)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
	}
}

func (v *hlsViewer) playlist(ctx context.Context, u string) (playlist.Playlist, error) {
	var b bytes.Buffer
	if err := v.get(ctx, u, &b, nil, nil); err != nil {
		return nil, err
	}
	pl, err := playlist.Unmarshal(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("playlist %s: %w", withoutQuery(u), err)
	}
	return pl, nil
}

var errNotMedia = errors.New("not a media playlist")

func (v *hlsViewer) mediaPlaylist(ctx context.Context, u string) (*playlist.Media, error) {
	pl, err := v.playlist(ctx, u)
	if err != nil {
		return nil, err
	}
	m, ok := pl.(*playlist.Media)
	if !ok {
		return nil, fmt.Errorf("playlist %s: %w", withoutQuery(u), errNotMedia)
	}
	return m, nil
}

func withoutQuery(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

// withBlockingReload adds _HLS_msn and _HLS_part to a playlist URL.
func withBlockingReload(u string, at hlsPos) string {
	pu, err := url.Parse(u)
	if err != nil {
		return u
	}
	q := pu.Query()
	q.Set("_HLS_msn", strconv.Itoa(at.msn))
	q.Set("_HLS_part", strconv.Itoa(at.part))
	pu.RawQuery = q.Encode()
	return pu.String()
}

// follow reads one media playlist until ctx ends or something fails.
func (v *hlsViewer) follow(ctx context.Context, u string, m *playlist.Media) error {
	buf := make([]byte, 32<<10) // what a segment is read through, reused
	var sc scanner = &tsScanner{}
	if m.Map != nil {
		fs := &fmp4Scanner{}
		if err := v.get(ctx, resolveRef(u, m.Map.URI), nil, fs, buf); err != nil {
			return fmt.Errorf("init segment: %w", err)
		}
		sc = fs
	}
	ll := m.PartInf != nil && m.ServerControl != nil && m.ServerControl.CanBlockReload
	next := hlsStart(m, ll)
	target := time.Duration(max(m.TargetDuration, 1)) * time.Second
	stallAfter := max(10*time.Second, 3*target)
	lastNew := time.Now()
	for {
		if m.Endlist {
			return fmt.Errorf("playlist %s ended (EXT-X-ENDLIST): the stream stopped", withoutQuery(u))
		}
		got, err := v.fetchNew(ctx, u, m, &next, ll, sc, buf)
		if err != nil {
			return err
		}
		if got {
			lastNew = time.Now()
		} else if d := time.Since(lastNew); d > stallAfter {
			return fmt.Errorf("playlist %s listed nothing new for %s (media sequence %d, %d segments)", withoutQuery(u), d.Round(time.Second), m.MediaSequence, len(m.Segments))
		}
		reload, wait := u, target/2
		if ll {
			// A blocking reload waits at the server; one that came back
			// with nothing new (a server that does not block after all)
			// waits half a part here, so the viewer never spins.
			reload, wait = withBlockingReload(u, next), 0
			if !got {
				wait = max(m.PartInf.PartTarget/2, 50*time.Millisecond)
			}
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
		if m, err = v.mediaPlaylist(ctx, reload); err != nil {
			return err
		}
	}
}

// hlsStart is where a viewer starts: three segments from the end, or in
// LL-HLS the newest independent part.
func hlsStart(m *playlist.Media, ll bool) hlsPos {
	start := hlsPos{msn: m.MediaSequence + max(0, len(m.Segments)-3)}
	if !ll {
		return start
	}
	found := false
	eachPart(m, func(at hlsPos, p *playlist.MediaPart) {
		if p.Independent {
			start, found = at, true
		}
	})
	if !found && len(m.Segments) > 0 { // no independent part listed: the newest segment whole
		start = hlsPos{msn: m.MediaSequence + len(m.Segments) - 1}
	}
	return start
}

// eachPart calls fn for every part the playlist lists, in order.
func eachPart(m *playlist.Media, fn func(hlsPos, *playlist.MediaPart)) {
	for i, s := range m.Segments {
		for j, p := range s.Parts {
			fn(hlsPos{m.MediaSequence + i, j}, p)
		}
	}
	for j, p := range m.Parts {
		fn(hlsPos{m.MediaSequence + len(m.Segments), j}, p)
	}
}

// fetchNew fetches what m lists at or after next (parts in LL-HLS,
// segments otherwise) and moves next past it.
func (v *hlsViewer) fetchNew(ctx context.Context, u string, m *playlist.Media, next *hlsPos, ll bool, sc scanner, buf []byte) (got bool, err error) {
	err = fetchPlan(m, next, ll, func(ref string) error {
		got = true
		return v.get(ctx, resolveRef(u, ref), nil, sc, buf)
	})
	return got, err
}

// fetchPlan calls fetch for each file m lists at or after next, in
// order, and moves next past it.
func fetchPlan(m *playlist.Media, next *hlsPos, ll bool, fetch func(ref string) error) error {
	for i, s := range m.Segments {
		msn := m.MediaSequence + i
		if msn < next.msn || s.Gap {
			continue
		}
		if !ll || len(s.Parts) == 0 {
			// Whole segments; in LL-HLS one whose parts are gone
			// (the viewer fell behind), unless some were read.
			if next.part == 0 || next.msn < msn {
				if err := fetch(s.URI); err != nil {
					return err
				}
			}
			*next = hlsPos{msn: msn + 1}
			continue
		}
		for j, p := range s.Parts {
			if at := (hlsPos{msn, j}); !at.before(*next) && !p.Gap {
				if err := fetch(p.URI); err != nil {
					return err
				}
			}
		}
		*next = hlsPos{msn: msn + 1} // the segment is complete: its parts are all listed
	}
	if !ll {
		return nil
	}
	msn := m.MediaSequence + len(m.Segments)
	for j, p := range m.Parts {
		at := hlsPos{msn, j}
		if at.before(*next) {
			continue
		}
		if !p.Gap {
			if err := fetch(p.URI); err != nil {
				return err
			}
		}
		*next = hlsPos{msn, j + 1}
	}
	return nil
}
