package api

import (
	"time"

	"github.com/berthmedia/berth/internal/hub"
)

// MediaJSON is one entry of getMediaList for stream s read in schema:
// the body of the web hook on_stream_changed when a stream registers.
func MediaJSON(s *hub.Stream, schema string) map[string]any {
	app, stream := splitPath(s.Path)
	m := mediaItem(s, app, stream, time.Now())
	m["schema"] = schema
	return m
}
