package cluster

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berthmedia/berth/internal/proxy"
)

// Status is the cluster as one node sees it: getClusterInfo's data, the
// status page's section, berth cluster status.
type Status struct {
	NodeID  string         `json:"node_id,omitempty"` // this node; "" from the CLI
	Redis   string         `json:"redis"`             // password hidden
	RedisUp bool           `json:"redis_up"`
	Error   string         `json:"error,omitempty"` // why the registry could not be read
	TTLSec  float64        `json:"ttl_sec,omitempty"`
	Nodes   []NodeRecord   `json:"nodes"`
	Streams []StreamRecord `json:"streams"`
	Edges   []EdgeInfo     `json:"edges"` // this node's pulls of other nodes' streams
}

// Status reads the registry (bounded by lookupTimeout) and adds this
// node's own view.
func (n *Node) Status(ctx context.Context) Status {
	st := Status{NodeID: n.ID(), Redis: n.health.url, TTLSec: n.getTTL().Seconds(), Edges: n.Edges()}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	snap, err := ReadSnapshot(ctx, n.rdb)
	st.Nodes, st.Streams = snap.Nodes, snap.Streams
	if err != nil {
		st.Error = err.Error()
		return st
	}
	st.RedisUp = true
	return st
}

// ReadStatus reads the registry at url, for berth cluster status.
func ReadStatus(ctx context.Context, url string) (Status, error) {
	st := Status{Redis: proxy.Redact(url), Edges: []EdgeInfo{}}
	rdb, err := newClient(url)
	if err != nil {
		return st, err
	}
	defer rdb.Close()
	snap, err := ReadSnapshot(ctx, rdb)
	st.Nodes, st.Streams = snap.Nodes, snap.Streams
	if err != nil {
		st.Error = err.Error()
		return st, fmt.Errorf("cluster: cannot read the registry at %s: %w (is Redis running there? check [cluster] redis or -redis)", st.Redis, err)
	}
	st.RedisUp = true
	return st, nil
}

// WriteText prints st as berth cluster status does: nodes with their load,
// then streams and where they live.
func (st Status) WriteText(w io.Writer) {
	fmt.Fprintf(w, "registry %s: %d node(s), %d stream(s)\n\n", st.Redis, len(st.Nodes), len(st.Streams))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tRTSP\tCPU\tREADERS\tEGRESS\tSTREAMS\tEDGES\tHEARTBEAT\tUP")
	for _, nd := range st.Nodes {
		me := ""
		if nd.ID == st.NodeID {
			me = " (this node)"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%d%%\t%d\t%s\t%d\t%d\t%s ago\t%s\n", nd.ID, me, dash(nd.RTSP), nd.Load.CPU, nd.Load.Readers,
			bps(nd.Load.EgressBps), nd.Load.Streams, nd.Load.Edges, ago(nd.Beat), ago(nd.Started))
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tNODE\tPUBLISHER\tLIVE FOR\tPLAY")
	for _, s := range st.Streams {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Path, s.Node, dash(s.Publisher), ago(s.Started), dash(s.PullURL()))
	}
	tw.Flush()
	if len(st.Edges) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "EDGE PULL\tFROM\tSTATE")
		for _, e := range st.Edges {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Path, e.Origin, e.State)
		}
		tw.Flush()
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "?"
	}
	d := time.Since(t)
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func bps(b uint64) string {
	switch {
	case b >= 1e9:
		return fmt.Sprintf("%.1f Gb/s", float64(b)/1e9)
	case b >= 1e6:
		return fmt.Sprintf("%.1f Mb/s", float64(b)/1e6)
	case b >= 1e3:
		return fmt.Sprintf("%.0f kb/s", float64(b)/1e3)
	}
	return fmt.Sprintf("%d b/s", b)
}

func sortEdges(es []EdgeInfo) {
	sort.Slice(es, func(i, j int) bool { return strings.Compare(es[i].Path, es[j].Path) < 0 })
}
