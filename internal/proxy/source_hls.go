package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
)

// pullHLS reads an HLS source (MPEG-TS or fMP4 segments, gohlslib's
// client) into a KindAU stream: H.264, H.265 and AAC tracks; others are
// left out with a line naming them.
func (p *Proxy) pullHLS(ctx context.Context) error {
	log := p.m.log().With("key", p.key)
	type beginning struct {
		done <-chan struct{}
		err  error
	}
	began := make(chan beginning, 1)
	c := &gohlslib.Client{
		URI: p.src,
		// Two segments back: gohlslib fetches the next segment as soon as
		// it hands one on, so it needs one in reserve (from the newest it
		// fails at once); its default, 3, delays the start by a segment.
		StartDistance:             hlsReserve,
		HTTPClient:                &http.Client{Timeout: p.spec.Timeout},
		OnDownloadPrimaryPlaylist: func(string) {},
		OnDownloadStreamPlaylist:  func(string) {},
		OnDownloadSegment:         func(string) {},
		OnDownloadPart:            func(string) {},
		OnDecodeError:             func(err error) { log.Debug("pull: HLS decode error", "err", err) },
	}
	c.OnTracks = func(in []*gohlslib.Track) error {
		var tracks []*hub.Track
		for _, t := range in {
			i := len(tracks)
			rate := int64(t.ClockRate)
			dur := func(ts int64) time.Duration { return hub.TicksToDuration(ts, rate) }
			switch cd := t.Codec.(type) {
			case *codecs.H264:
				tracks = append(tracks, codec.H264Track(cd.SPS, cd.PPS))
				c.OnDataH26x(t, func(pts, dts int64, au [][]byte) {
					p.out.writeAU(i, &hub.Frame{Key: h264.IsRandomAccess(au), AU: au, PTS: dur(pts), DTS: dur(dts)}, time.Now())
				})
			case *codecs.H265:
				tracks = append(tracks, codec.H265Track(cd.VPS, cd.SPS, cd.PPS))
				c.OnDataH26x(t, func(pts, dts int64, au [][]byte) {
					p.out.writeAU(i, &hub.Frame{Key: h265.IsRandomAccess(au), AU: au, PTS: dur(pts), DTS: dur(dts)}, time.Now())
				})
			case *codecs.MPEG4Audio:
				conf := cd.Config
				tracks = append(tracks, codec.AACTrackConfig(&conf))
				sr := int64(conf.SampleRate)
				c.OnDataMPEG4Audio(t, func(pts int64, aus [][]byte) {
					now := time.Now()
					for k, au := range aus {
						at := pts
						if sr > 0 { // each AU is 1024 samples further (ISO 14496-3)
							at += int64(k) * mpeg4audio.SamplesPerAccessUnit * rate / sr
						}
						p.out.writeAU(i, &hub.Frame{AU: [][]byte{au}, PTS: dur(at), DTS: dur(at)}, now)
					}
				})
			default:
				log.Warn("pull: an HLS track's codec is not carried; left out", "codec", fmt.Sprintf("%T", t.Codec))
			}
		}
		d, err := p.out.begin(hub.KindAU, tracks, nil)
		began <- beginning{d, err}
		return err
	}
	if err := p.waitSegments(ctx, c.HTTPClient); err != nil {
		return err
	}
	if err := c.Start(); err != nil {
		return err
	}
	defer c.Close()
	waitErr := make(chan error, 1)
	go func() { waitErr <- c.Wait2() }()
	// gohlslib may wait forever on a playlist that stops growing: a session
	// that brings no media for Timeout has failed.
	tick := time.NewTicker(p.spec.Timeout / 2)
	defer tick.Stop()
	last, lastAt := p.out.bytes.Load(), time.Now()
	var done <-chan struct{} // the stream's, once the tracks are known
	for {
		select {
		case now := <-tick.C:
			if n := p.out.bytes.Load(); n != last {
				last, lastAt = n, now
			} else if now.Sub(lastAt) >= p.spec.Timeout {
				return fmt.Errorf("no media from the HLS source for %s (the playlist stopped growing, or its segments are not playable)", p.spec.Timeout)
			}
		case err := <-waitErr:
			return err
		case b := <-began:
			if b.err != nil {
				return b.err
			}
			done = b.done
		case <-done:
			return errStreamClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// hlsReserve is how many segments a live playlist must list before
// gohlslib starts (its StartDistance): with fewer it fails without ending.
const hlsReserve = 2

// waitSegments polls a live media playlist until it lists hlsReserve
// segments (a source that has just started lists one), for at most the
// timeout. A multivariant or ended playlist passes at once.
func (p *Proxy) waitSegments(ctx context.Context, client *http.Client) error {
	deadline := time.Now().Add(p.spec.Timeout)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.src, nil)
		if err != nil {
			return err
		}
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		res.Body.Close()
		if err != nil {
			return err
		}
		if res.StatusCode != http.StatusOK {
			return &httpStatusError{Code: res.StatusCode, URL: Redact(p.src)}
		}
		pl, err := playlist.Unmarshal(body)
		if err != nil {
			return fmt.Errorf("the HLS playlist does not parse: %w", err)
		}
		m, ok := pl.(*playlist.Media)
		if !ok || m.Endlist || len(m.Segments) >= hlsReserve {
			return nil
		}
		wait := time.Duration(max(m.TargetDuration, 1)) * time.Second / 2
		if time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("the HLS playlist lists %d segment(s) after %s; Berth starts %d back from the newest", len(m.Segments), p.spec.Timeout, hlsReserve)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
