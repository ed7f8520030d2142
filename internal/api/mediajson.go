package api

import (
	"time"

	"github.com/berthmedia/berth/internal/hub"
)

// MediaJSON is one entry of getMediaList for stream s read in schema:
// the body of the web hook on_stream_changed when a stream registers.
func MediaJSON(s *hub.Stream, schema string) map[string]any {
	app, stream := splitPath(s.Path)
	// A handler without sessions or samples: the hook's body is the stream's
	// registration, before any rate or session lookup would say more.
	return (&Handler{}).mediaItem(entry{s: s, schema: schema, app: app, stream: stream}, time.Now())
}
