package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/berthmedia/berth/internal/auth"
)

// Authorize is the Node's auth.Gate: a publish of a path another node
// originates is refused with that node's name and the fix, before the
// publisher is accepted (the web hooks' on_publish goes through the same
// gate). Plays pass. Redis unreachable lets the publish through: a node
// keeps serving without its registry (the heartbeat's claim settles a
// path published on two nodes meanwhile).
func (n *Node) Authorize(ctx context.Context, r auth.Request) error {
	if r.Action != auth.Publish || n.closed.Load() || n.health.isDown() {
		return nil
	}
	path := r.App + "/" + r.Stream
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	rec, err := lookup(ctx, n.rdb, path)
	cancel()
	if err != nil {
		n.stats.errors.Add(1)
		n.health.failed("checking a publish of "+path, err)
		return nil
	}
	n.health.ok()
	if rec == nil || rec.Instance == n.instance {
		if n.dropEdge(path) {
			n.log().Info("cluster: a publisher arrived for a path this node pulled from another node; the pull ends and this node originates the path now",
				"path", path)
		}
		return nil
	}
	n.stats.conflicts.Add(1)
	return &BusyError{Path: path, Node: rec.Node, URL: rec.PullURL(), Since: rec.Started}
}

// BusyError is a publish refused because another node originates the path.
type BusyError struct {
	Path, Node, URL string
	Since           time.Time
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("cluster: stream %s is already live on node %q (%s, since %s); a stream has one origin in the cluster: publish to node %s, or stop the publisher there first",
		e.Path, e.Node, e.URL, e.Since.Format(time.TimeOnly), e.Node)
}
