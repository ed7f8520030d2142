package api

import (
	"context"
	"net/http"
	"time"
)

// getClusterInfo answers the cluster as this node sees it: the nodes with
// their load, the streams and the node each lives on, this node's edge
// pulls (internal/cluster's Status). Berth's own call; ZLMediaKit has none.
func (h *Handler) getClusterInfo(r *http.Request, _ params) (map[string]any, error) {
	if h.Cluster == nil {
		return nil, fail(CodeOtherFailed, "clustering is off on this node: set [cluster] redis=redis://HOST:6379 on every node (docs/cluster.md)")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	st, ok := h.Cluster(ctx)
	if !ok {
		return nil, fail(CodeOtherFailed, "clustering is off on this node: set [cluster] redis=redis://HOST:6379 on every node (docs/cluster.md)")
	}
	return map[string]any{"data": st}, nil
}
