package proxy

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
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
	var done <-chan struct{}
	began := make(chan error, 1)
	c := &gohlslib.Client{
		URI:                       p.spec.URL,
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
		began <- err
		if err != nil {
			return err
		}
		done = d
		return nil
	}
	if err := c.Start(); err != nil {
		return err
	}
	defer c.Close()
	waitErr := make(chan error, 1)
	go func() { waitErr <- c.Wait2() }()
	for {
		select {
		case err := <-waitErr:
			return err
		case err := <-began:
			if err != nil {
				return err
			}
			began = nil
		case <-doneOrNil(&done, began):
			return errStreamClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// doneOrNil is the stream's Done channel once OnTracks set it (it is set
// before began is answered, and read only after).
func doneOrNil(done *<-chan struct{}, began chan error) <-chan struct{} {
	if began != nil {
		return nil
	}
	return *done
}
