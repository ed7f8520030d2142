package cluster

import "github.com/prometheus/client_golang/prometheus"

var (
	descUp        = prometheus.NewDesc("berth_cluster_node_up", "1 when this node's last call to the cluster registry (Redis) worked, 0 while Redis cannot be reached.", []string{"node_id"}, nil)
	descErrors    = prometheus.NewDesc("berth_cluster_registry_errors_total", "Calls to the cluster registry (Redis) that failed.", []string{"node_id"}, nil)
	descOwned     = prometheus.NewDesc("berth_cluster_streams_originated", "Streams this node originates and registers.", []string{"node_id"}, nil)
	descEdges     = prometheus.NewDesc("berth_cluster_edge_pulls", "Streams this node pulls from their origin node for its readers.", []string{"node_id"}, nil)
	descEdgesTot  = prometheus.NewDesc("berth_cluster_edge_pulls_started_total", "Edge pulls started.", []string{"node_id"}, nil)
	descEdgeFail  = prometheus.NewDesc("berth_cluster_edge_pulls_failed_total", "Edge pulls that failed and were ended or moved to the stream's new origin.", []string{"node_id"}, nil)
	descConflicts = prometheus.NewDesc("berth_cluster_conflicts_total", "Publishes refused or closed because another node originates the path, and registry entries held by another node.", []string{"node_id"}, nil)
)

// Collector returns the Node's Prometheus metrics, read at scrape time.
func (n *Node) Collector() prometheus.Collector { return collector{n} }

type collector struct{ n *Node }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descErrors, descOwned, descEdges, descEdgesTot, descEdgeFail, descConflicts} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	id := n.ID()
	up := 0.0
	if n.health.up.Load() {
		up = 1
	}
	n.mu.Lock()
	owned := len(n.owned)
	n.mu.Unlock()
	edges := len(n.edgeList())
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, id)
	ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(n.stats.errors.Load()), id)
	ch <- prometheus.MustNewConstMetric(descOwned, prometheus.GaugeValue, float64(owned), id)
	ch <- prometheus.MustNewConstMetric(descEdges, prometheus.GaugeValue, float64(edges), id)
	ch <- prometheus.MustNewConstMetric(descEdgesTot, prometheus.CounterValue, float64(n.stats.edgesStarted.Load()), id)
	ch <- prometheus.MustNewConstMetric(descEdgeFail, prometheus.CounterValue, float64(n.stats.edgeFailures.Load()), id)
	ch <- prometheus.MustNewConstMetric(descConflicts, prometheus.CounterValue, float64(n.stats.conflicts.Load()), id)
}
