package server

import (
	"fmt"
	"time"

	"github.com/berthmedia/berth/internal/cluster"
	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/hub"
)

// newEdge makes the static edge of [cluster] origin_url before the hub,
// whose last observer it is (after the proxies' on-demand pulls and the
// playback of recordings, which answer a missing path first): a reader of a stream this node does not have
// starts a pull from the origins. It exists with origin_url empty too
// (then it does nothing), so a reload can turn it on. A template that
// cannot work refuses the start.
func (s *Server) newEdge(cfg *config.Config) (*cluster.Edge, error) {
	set, err := edgeSettings(cfg)
	if err != nil {
		return nil, fmt.Errorf("[cluster] %w; correct it or empty origin_url", err)
	}
	e := &cluster.Edge{Log: s.Log.With("component", "edge")}
	e.SetSettings(set)
	s.OnReload([]string{"cluster.origin_url", "cluster.timeout_sec", "cluster.retry_count"}, func(c *config.Config) {
		set, err := edgeSettings(c)
		if err != nil {
			s.Log.Error("reload: [cluster] origin_url not applied; the running origins stay", "err", err,
				"fix", "correct origin_url and reload again")
			return
		}
		e.SetSettings(set) // pulls started from now on; readers' wait is taken at start (streamWait)
	})
	return e, nil
}

func edgeSettings(cfg *config.Config) (cluster.Settings, error) {
	origins, err := cluster.ParseTemplates(cfg.Origin.URLs)
	if err != nil {
		return cluster.Settings{}, err
	}
	return cluster.Settings{Origins: origins, RetryCount: cfg.Origin.RetryCount,
		Timeout: seconds(cfg.Origin.TimeoutSec)}, nil
}

// edgeWait is how long a reader of a missing stream waits on an edge:
// [cluster] timeout_sec, the time the origins have to answer; 0 when
// origin_url is empty.
func (s *Server) edgeWait() time.Duration {
	if s.edge == nil || !s.edge.Enabled() {
		return 0
	}
	return seconds(s.Config.Origin.TimeoutSec)
}

// hookObserver is the web hooks' observer, without on_stream_not_found
// while this node is an edge: the origins answer a missing stream then,
// as in ZLMediaKit, where origin_url turns that hook off.
func (s *Server) hookObserver() hub.Observer {
	return edgeHooks{Observer: s.hooks.Observer(), s: s}
}

type edgeHooks struct {
	hub.Observer
	s *Server
}

func (h edgeHooks) StreamNotFound(path string, who hub.Origin) {
	if h.s.edge != nil && h.s.edge.Enabled() {
		return
	}
	h.Observer.StreamNotFound(path, who)
}
