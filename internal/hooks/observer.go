package hooks

import (
	"time"

	"github.com/berthmedia/berth/internal/api"
	"github.com/berthmedia/berth/internal/hub"
)

// servedSchemas are the schemas every Berth stream can be read in today,
// the ones on_stream_changed reports (an HTTP-FLV player reads the rtmp
// schema, as in ZLMediaKit).
var servedSchemas = []string{"rtsp", "rtmp"}

// Observer returns the hub.Observer that turns hub events into hooks:
// on_stream_changed, on_stream_none_reader, on_stream_not_found and
// on_flow_report. Its methods only build a body and queue it; they never
// wait for the network.
func (c *Client) Observer() hub.Observer { return (*observer)(c) }

type observer Client

func (o *observer) c() *Client { return (*Client)(o) }

func (o *observer) StreamPublished(s *hub.Stream) {
	c := o.c()
	app, stream := splitPath(s.Path)
	if v, ok := c.streams.LoadAndDelete(pendingKey(app, stream)); ok {
		c.streams.Store(s, v)
	}
	st := c.settings()
	if st.url("on_stream_changed") != "" {
		for _, schema := range servedSchemas {
			if len(st.schemas) > 0 && !st.schemas[schema] {
				continue
			}
			body := api.MediaJSON(s, schema)
			body["regist"] = true
			c.Notify("on_stream_changed", body, nil)
		}
	}
	o.armNoneReader(s)
}

func (o *observer) StreamEnded(s *hub.Stream) {
	c := o.c()
	if t, ok := c.timers.LoadAndDelete(s); ok {
		t.(*time.Timer).Stop()
	}
	c.streams.Delete(s)
	app, stream := splitPath(s.Path)
	st := c.settings()
	if st.url("on_stream_changed") != "" {
		for _, schema := range servedSchemas {
			if len(st.schemas) > 0 && !st.schemas[schema] {
				continue
			}
			body := map[string]any{"schema": schema, "vhost": DefaultVhost, "app": app, "stream": stream,
				"params": s.Origin.Params, "regist": false}
			c.Notify("on_stream_changed", body, nil)
		}
	}
	o.flowReport(s.Origin, app, stream, s.BytesIn.Load(), s.Since, false)
}

func (o *observer) ReaderAdded(r *hub.Reader) {
	if t, ok := o.c().timers.LoadAndDelete(r.Stream()); ok {
		t.(*time.Timer).Stop()
	}
}

func (o *observer) ReaderRemoved(r *hub.Reader) {
	s := r.Stream()
	app, stream := splitPath(s.Path)
	o.flowReport(r.Who(), app, stream, r.Bytes(), r.Since(), true)
	if s.Readers() == 0 && !s.Ended() {
		o.armNoneReader(s)
	}
}

func (o *observer) StreamNotFound(path string, who hub.Origin) {
	app, stream := splitPath(path)
	body := withPeer(mediaBody(who.Proto, app, stream, who.Params), who.Remote, who.ID)
	o.c().Notify("on_stream_not_found", body, nil)
}

// flowReport sends on_flow_report for a session that ended, when it moved
// at least flowThreshold KB (ZLMediaKit's rule).
func (o *observer) flowReport(who hub.Origin, app, stream string, bytes uint64, since time.Time, player bool) {
	c := o.c()
	st := c.settings()
	if st.url("on_flow_report") == "" || bytes < st.flowThreshold {
		return
	}
	body := withPeer(mediaBody(who.Proto, app, stream, who.Params), who.Remote, who.ID)
	body["totalBytes"], body["duration"], body["player"] = bytes, int64(time.Since(since).Seconds()), player
	c.Notify("on_flow_report", body, nil)
}

// armNoneReader starts the wait of streamNoneReaderDelayMS after which a
// stream that still has no player fires on_stream_none_reader; a reply
// with close true closes it. A stream published with on_publish's
// auto_close is closed then without asking.
func (o *observer) armNoneReader(s *hub.Stream) {
	c := o.c()
	st := c.settings()
	opts, _ := c.PublishOptions(s)
	autoClose := opts.AutoClose != nil && *opts.AutoClose
	if st.url("on_stream_none_reader") == "" && !autoClose {
		return
	}
	t := time.AfterFunc(st.noneReaderDelay, func() { o.noneReader(s) })
	if old, loaded := c.timers.Swap(s, t); loaded {
		old.(*time.Timer).Stop()
	}
	if s.Ended() { // it ended while the timer was being set
		if t, ok := c.timers.LoadAndDelete(s); ok {
			t.(*time.Timer).Stop()
		}
	}
}

func (o *observer) noneReader(s *hub.Stream) {
	c := o.c()
	c.timers.Delete(s)
	if s.Ended() || s.Readers() > 0 {
		return
	}
	if opts, _ := c.PublishOptions(s); opts.AutoClose != nil && *opts.AutoClose {
		c.Log.Info("stream closed: no player for streamNoneReaderDelayMS and on_publish set auto_close", "path", s.Path)
		s.Close()
		return
	}
	app, stream := splitPath(s.Path)
	schema, _ := schemaOf(s.Origin.Proto)
	body := map[string]any{"schema": schema, "vhost": DefaultVhost, "app": app, "stream": stream, "params": s.Origin.Params}
	c.Notify("on_stream_none_reader", body, func(r Reply) {
		if closeIt, _ := r.Bool("close"); closeIt && !s.Ended() && s.Readers() == 0 {
			c.Log.Info("stream closed: on_stream_none_reader replied close", "path", s.Path)
			s.Close()
		}
	})
}

// PublishOptions returns the switches on_publish answered for the stream
// (ok false when on_publish was not asked).
func (c *Client) PublishOptions(s *hub.Stream) (PublishOptions, bool) {
	v, ok := c.streams.Load(s)
	if !ok {
		return PublishOptions{}, false
	}
	return v.(PublishOptions), true
}
