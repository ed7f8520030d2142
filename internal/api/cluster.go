package api

import (
	"context"
	"net/http"
	"time"
)

// clusterOff is getClusterInfo's answer on a node without [cluster] redis.
const clusterOff = "clustering is off on this node: set [cluster] redis=redis://HOST:6379 on every node (docs/cluster.md)"

// getClusterInfo answers the cluster as this node sees it: the nodes with
// their load, the streams and the node each lives on, this node's edge
// pulls (internal/cluster's Status). Berth's own call; ZLMediaKit has none.
func (h *Handler) getClusterInfo(r *http.Request, _ params) (map[string]any, error) {
	if h.Cluster == nil {
		return nil, fail(CodeOtherFailed, clusterOff)
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	st, ok := h.Cluster(ctx)
	if !ok {
		return nil, fail(CodeOtherFailed, clusterOff)
	}
	return map[string]any{"data": st}, nil
}
