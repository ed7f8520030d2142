package srt

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/tsdemux"
)

// tsPublisher turns MPEG-TS read from an SRT connection into a hub stream:
// internal/tsdemux demuxes it (shared with the proxy's srt:// source), and
// this publishes its tracks and writes its frames. One goroutine runs it.
type tsPublisher struct {
	hub    *hub.Hub
	log    *slog.Logger
	path   string
	origin hub.Origin

	pub *hub.Publisher

	onPublished func(*hub.Publisher) // the server watches the stream's end
}

// errEnded stops the demux loop when the hub ended the stream (takeover,
// shutdown).
var errEnded = fmt.Errorf("the stream was ended by the server")

// run demuxes r until it fails or ends, then unpublishes.
func (p *tsPublisher) run(r io.Reader) error {
	defer p.close()
	d := &tsdemux.Demuxer{Log: p.log.With("path", p.path), Begin: p.publish, Write: p.write}
	return d.Run(r)
}

func (p *tsPublisher) publish(tracks []*hub.Track, names []string) error {
	pub, err := p.hub.Publish(p.path, p.origin, hub.KindAU, tracks, nil)
	if err != nil {
		p.log.Warn("SRT publish refused by the hub", "path", p.path, "err", err)
		return err
	}
	p.pub = pub
	if p.onPublished != nil {
		p.onPublished(pub)
	}
	p.log.Info("srt publish started", "path", p.path, "tracks", names)
	return nil
}

func (p *tsPublisher) write(f *hub.Frame) error {
	select {
	case <-p.pub.Done():
		return errEnded
	default:
	}
	p.pub.Write(f)
	return nil
}

func (p *tsPublisher) close() {
	if p.pub != nil {
		p.pub.Close()
		p.pub = nil
	}
}
