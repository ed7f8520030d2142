package metrics

import (
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// The metrics Berth exports itself; docs/metrics.md describes each with a query.
var (
	descBuild     = desc("berth_build_info", "Berth's version; always 1.", "version")
	descStreams   = desc("berth_streams", "Live streams by the publisher's protocol.", "protocol")
	descPublished = desc("berth_streams_published_total", "Streams published since start.")
	descEnded     = desc("berth_streams_ended_total", "Streams ended since start (publisher left, closed, taken over).")
	descReaders   = desc("berth_readers", "Live players by their protocol.", "protocol")
	descBytesIn   = desc("berth_received_bytes_total", "Media bytes (RTP packets or access units) received from publishers, by the publisher's protocol.", "protocol")
	descBytesOut  = desc("berth_sent_bytes_total", "Media bytes (RTP packets or access units) handed to players, by the player's protocol.", "protocol")
	descSkips     = desc("berth_reader_skips_total", "Times a slow player fell off a stream's ring and jumped to a newer keyframe.")
	descDrops     = desc("berth_reader_drops_total", "Slow players disconnected under [hub] slow_reader=close.")
	descRefused   = desc("berth_refused_total", "Publish and play requests refused, by action and reason (credentials, hook, busy, not_found).", "action", "reason")
	descLimits    = desc("berth_limit_refusals_total", "Connections, requests and streams refused by a limit against abuse, by its config key as section.key (general.max_connections_per_ip, rtsp.header_timeout_sec, ...); each is logged too, rate-limited.", "limit")
	descAccepted  = desc("berth_connections_accepted_total", "TCP connections accepted, by listener.", "listener")
	descListener  = desc("berth_listener_info", "A bound socket of a listener; always 1.", "listener", "network", "family", "address")
	descProbe     = desc("berth_listener_self_probe_ok", "1 when the start-up self-probe of a listener through this loopback address reached this Berth (or, on a family Berth does not serve, nothing); 0 when something else answered.", "listener", "address")
	descShadows   = desc("berth_listener_shadows", "Other processes' sockets on a listener's port that take some of its clients.", "listener", "network")
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// collector turns Sources into metrics at each scrape.
type collector struct{ src Sources }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBuild, descStreams, descPublished, descEnded, descReaders, descBytesIn,
		descBytesOut, descSkips, descDrops, descRefused, descLimits, descAccepted, descListener, descProbe, descShadows} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descBuild, prometheus.GaugeValue, 1, c.src.Version)
	refused := map[[2]string]uint64{}
	if c.src.Hub != nil {
		h := c.src.Hub()
		// A protocol that had streams or players keeps its series at 0, so
		// a query over it does not go blank when the last one leaves.
		gauges(ch, descStreams, h.Streams, h.BytesIn)
		gauges(ch, descReaders, h.Readers, h.BytesOut)
		counters(ch, descBytesIn, h.BytesIn)
		counters(ch, descBytesOut, h.BytesOut)
		counter(ch, descPublished, h.Published)
		counter(ch, descEnded, h.Ended)
		counter(ch, descSkips, h.Skips)
		counter(ch, descDrops, h.Drops)
		refused[[2]string{"publish", "busy"}] += h.PublishRefused
		refused[[2]string{"play", "not_found"}] += h.NotFound
	}
	if c.src.Refusals != nil {
		for k, n := range c.src.Refusals() {
			action, reason, ok := strings.Cut(k, "/")
			if !ok {
				action, reason = "", k
			}
			refused[[2]string{action, reason}] += n
		}
	}
	for k, n := range refused {
		ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(n), k[0], k[1])
	}
	if c.src.Limits != nil {
		counters(ch, descLimits, c.src.Limits())
	}
	if c.src.Accepted != nil {
		counters(ch, descAccepted, c.src.Accepted())
	}
	if c.src.Listeners != nil {
		c.collectListeners(ch)
	}
}

func (c *collector) collectListeners(ch chan<- prometheus.Metric) {
	st := c.src.Listeners()
	shadows := map[[2]string]int{}
	for _, s := range st.Sockets {
		ch <- prometheus.MustNewConstMetric(descListener, prometheus.GaugeValue, 1, s.Name, s.Network, s.Family, s.Addr)
		shadows[[2]string{s.Name, s.Network}] = 0
	}
	for _, p := range st.Probes {
		v := 0.0
		if p.OK {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descProbe, prometheus.GaugeValue, v, p.Name, p.Addr)
	}
	if st.Shadows == nil {
		return // no scan ran: 0 would claim there are none
	}
	for _, s := range st.Shadows {
		shadows[[2]string{s.Name, s.Network}]++
	}
	for k, n := range shadows {
		ch <- prometheus.MustNewConstMetric(descShadows, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
}

// gauges emits now[label] for every label of now and of seen (0 where now has none).
func gauges(ch chan<- prometheus.Metric, d *prometheus.Desc, now map[string]int, seen map[string]uint64) {
	for _, l := range labels(now, seen) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(now[l]), l)
	}
}

func labels(now map[string]int, seen map[string]uint64) []string {
	set := map[string]bool{}
	for l := range now {
		set[l] = true
	}
	for l := range seen {
		set[l] = true
	}
	out := make([]string, 0, len(set))
	for l := range set {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

func counters(ch chan<- prometheus.Metric, d *prometheus.Desc, m map[string]uint64) {
	for l, n := range m {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(n), l)
	}
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, n uint64) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(n))
}
