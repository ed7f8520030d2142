package cluster

import (
	"context"
	"strings"
	"time"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/proxy"
)

// edgeParam marks an edge's pull on the origin (rtsp://a/live/cam?berth_edge=b):
// the origin never starts a pull of its own for such a reader, so even a
// stale registry entry cannot make two nodes pull from each other.
const edgeParam = "berth_edge"

// edge is one stream this node pulls from its origin node for its readers.
type edge struct {
	path     string
	url      string
	node     string // the origin's node_id
	instance string // the origin's instance: a restarted origin is a new one
	started  time.Time
}

// EdgeInfo is an edge pull as status shows it.
type EdgeInfo struct {
	Path    string    `json:"path"`
	Origin  string    `json:"origin_node_id"`
	URL     string    `json:"url"`
	State   string    `json:"state"` // the pull's: connecting, live, retrying...
	Started time.Time `json:"started"`
}

// isEdge reports whether s is this node's pull of another node's stream.
func (n *Node) isEdge(s *hub.Stream) bool {
	if s.Origin.Proto != "pull" {
		return false
	}
	n.mu.Lock()
	e := n.edges[s.Path]
	n.mu.Unlock()
	return e != nil && proxy.Redact(e.url) == s.Origin.ID
}

// StreamNotFound looks a missing path up in the registry and, if another
// node originates it, starts one pull from there; the reader that asked
// waits maxStreamWaitMS for it as for any on-demand pull. The lookup runs
// on its own goroutine under lookupTimeout: the hub never waits for Redis.
func (n *Node) StreamNotFound(path string, who hub.Origin) {
	if n.closed.Load() || n.Pulls == nil || strings.Contains(who.Params, edgeParam+"=") {
		return
	}
	if _, ok := n.Pulls.Get(proxy.Key(path)); ok {
		return // a configured pull (or this node's edge) serves it
	}
	n.mu.Lock()
	if n.edges[path] != nil {
		n.mu.Unlock()
		return
	}
	n.edges[path] = &edge{path: path} // a placeholder while it resolves: one lookup per path
	n.mu.Unlock()
	go n.resolve(path)
}

func (n *Node) resolve(path string) {
	if n.health.isDown() { // the heartbeat says when Redis is back
		n.dropPlaceholder(path)
		return
	}
	rec, err := n.lookupWhileWaited(path)
	if err != nil && !n.closed.Load() { // a look-up cut by shutdown is no outage
		n.stats.errors.Add(1)
		n.health.failed("looking up "+path+" for a reader", err)
	} else if err == nil {
		n.health.ok()
	}
	if err != nil || rec == nil || rec.Instance == n.instance || rec.PullURL() == "" {
		if err == nil && rec == nil {
			n.log().Debug("cluster: a reader asked for a path no node has", "path", path)
		}
		n.dropPlaceholder(path)
		return
	}
	n.startEdge(path, rec)
}

// dropPlaceholder ends StreamNotFound's claim on path when no pull follows,
// so the next reader looks it up again.
func (n *Node) dropPlaceholder(path string) {
	n.mu.Lock()
	if e := n.edges[path]; e != nil && e.url == "" {
		delete(n.edges, path)
	}
	n.mu.Unlock()
}

// lookupWhileWaited looks path up; while no node has it, again every
// retryLookup until the reader's wait (Wait) is over, so a publisher moving
// to another node (it is refused there until the old entry expires) is
// found by readers already waiting, not only by the next ones.
func (n *Node) lookupWhileWaited(path string) (*StreamRecord, error) {
	deadline := time.Now().Add(n.Wait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
		rec, err := lookup(ctx, n.rdb, path)
		cancel()
		if err != nil || rec != nil || time.Now().Add(retryLookup).After(deadline) {
			return rec, err
		}
		if h := n.Hub; h != nil && h.Get(path) != nil {
			return nil, nil // published here meanwhile
		}
		select {
		case <-n.quit: // shutting down: no pull is started any more
			return nil, nil
		case <-time.After(retryLookup):
		}
	}
}

// retryLookup spaces the lookups of a path no node has yet.
const retryLookup = 500 * time.Millisecond

// startEdge adds the pull of path from rec's node. AutoClose: the proxy
// manager removes it streamNoneReaderDelayMS after its last reader.
func (n *Node) startEdge(path string, rec *StreamRecord) {
	url := n.edgeURL(rec)
	e := &edge{path: path, url: url, node: rec.Node, instance: rec.Instance, started: time.Now()}
	if n.closed.Load() {
		return // shutting down: the proxy manager closes next
	}
	n.mu.Lock()
	n.edges[path] = e // before Add, so the pull's StreamPublished finds it
	n.mu.Unlock()
	_, err := n.Pulls.Add(proxy.Spec{Path: path, URL: url, RetryCount: -1, Transport: proxy.TCP,
		Timeout: 5 * time.Second, AutoClose: true})
	if err != nil {
		n.mu.Lock()
		if n.edges[path] == e {
			delete(n.edges, path)
		}
		n.mu.Unlock()
		n.log().Warn("cluster: could not start the pull of a stream from its origin node", "path", path,
			"node_id", rec.Node, "url", url, "err", err)
		return
	}
	n.stats.edgesStarted.Add(1)
	n.log().Info("cluster: pulling a stream from its origin node for this node's readers", "path", path,
		"node_id", rec.Node, "url", url)
}

// edgeURL is where this node pulls rec's stream from, marked as its edge.
func (n *Node) edgeURL(rec *StreamRecord) string {
	return rec.PullURL() + "?" + edgeParam + "=" + n.ID()
}

// edgeList is a snapshot of the edges whose pull has started (not the
// placeholders of lookups still running).
func (n *Node) edgeList() []*edge {
	n.mu.Lock()
	defer n.mu.Unlock()
	edges := make([]*edge, 0, len(n.edges))
	for _, e := range n.edges {
		if e.url != "" {
			edges = append(edges, e)
		}
	}
	return edges
}

// watchEdges runs at each heartbeat: an edge whose pull ended (its last
// reader left) is forgotten; one whose pull fails looks its path up again,
// and follows the stream to its new node (the publisher moved), ends it
// (no node has it any more: the readers are told) or keeps retrying (the
// origin still holds the entry: it may be restarting).
func (n *Node) watchEdges() {
	if n.Pulls == nil {
		return
	}
	edges := n.edgeList()
	for _, e := range edges {
		key := proxy.Key(e.path)
		info, ok := n.Pulls.Get(key)
		if !ok || info.Spec.URL != e.url {
			n.forget(e)
			continue
		}
		if info.State != proxy.StateRetrying && info.State != proxy.StateStopped {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
		rec, err := lookup(ctx, n.rdb, e.path)
		cancel()
		if err != nil {
			n.stats.errors.Add(1)
			n.health.failed("looking up "+e.path+" for a failing edge pull", err)
			continue // without Redis the old origin is the best guess
		}
		switch {
		case rec == nil || rec.Instance == n.instance:
			n.stats.edgeFailures.Add(1)
			n.forget(e)
			n.Pulls.Delete(key)
			n.log().Info("cluster: the stream's origin node left the registry; the edge pull ends and its readers are told",
				"path", e.path, "node_id", e.node, "cause", info.Cause)
		case rec.Instance != e.instance || n.edgeURL(rec) != e.url:
			n.stats.edgeFailures.Add(1)
			n.forget(e)
			n.Pulls.Delete(key)
			n.log().Info("cluster: the stream moved to another node; the edge follows it", "path", e.path,
				"from", e.node, "to", rec.Node)
			n.startEdge(e.path, rec)
		}
	}
}

func (n *Node) forget(e *edge) {
	n.mu.Lock()
	if n.edges[e.path] == e {
		delete(n.edges, e.path)
	}
	n.mu.Unlock()
}

// dropEdge ends this node's pull of path (a publisher arrived here for it).
func (n *Node) dropEdge(path string) bool {
	n.mu.Lock()
	e := n.edges[path]
	if e != nil {
		delete(n.edges, path)
	}
	n.mu.Unlock()
	if e == nil || e.url == "" || n.Pulls == nil {
		return false
	}
	return n.Pulls.Delete(proxy.Key(path))
}

// Edges lists this node's edge pulls.
func (n *Node) Edges() []EdgeInfo {
	edges := n.edgeList()
	out := make([]EdgeInfo, 0, len(edges))
	for _, e := range edges {
		ei := EdgeInfo{Path: e.path, Origin: e.node, URL: e.url, Started: e.started, State: "?"}
		if n.Pulls != nil {
			if in, ok := n.Pulls.Get(proxy.Key(e.path)); ok {
				ei.State = in.Summary()
			}
		}
		out = append(out, ei)
	}
	sortEdges(out)
	return out
}
