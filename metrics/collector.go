package metrics

import (
	"strconv"

	"github.com/cairnstore/cairn/core"
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exposes a node's QoS and latency figures to Prometheus. It holds no
// state between scrapes and is safe for concurrent use if its snapshot function is.
type Collector struct {
	snapshot func() core.NodeStats
	d        *descs
}

// NewCollector returns a collector that calls snapshot on every scrape (snapshot must be
// safe to call from the scraping goroutine; it returns data the collector owns).
func NewCollector(snapshot func() core.NodeStats) *Collector {
	return &Collector{snapshot: snapshot, d: newDescs()}
}

// Describe sends the descriptors of every metric Collect may send.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.d.all() {
		ch <- d
	}
}

// Collect takes one snapshot and sends its metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	e := emitter{ch: ch}
	node := strconv.FormatUint(uint64(s.Self), 10)
	e.gauge(c.d.globalRate, float64(s.GlobalRate), node)
	e.gauge(c.d.globalTokens, float64(s.GlobalTokens), node)
	e.gauge(c.d.diskLatency, seconds(s.DiskLatency), node)
	e.gauge(c.d.storageQueue, float64(s.StorageQueue), node)
	e.counter(c.d.reMirrorBytes, float64(s.ReMirrorBytes), node)
	e.counter(c.d.copyWaits, float64(s.CopyWaits), node)
	for i := range s.Volumes {
		c.collectVolume(e, node, &s.Volumes[i])
	}
}

// collectVolume sends one volume's metrics.
func (c *Collector) collectVolume(e emitter, node string, v *core.VolumeStats) {
	vol := strconv.FormatUint(uint64(v.Volume), 10)
	e.counter(c.d.admitted, float64(v.Admitted), node, vol)
	e.counter(c.d.lent, float64(v.Lent), node, vol)
	e.counter(c.d.throttled, float64(v.Throttled), node, vol)
	e.counter(c.d.busy, float64(v.Busy), node, vol)
	e.gauge(c.d.queued, float64(v.Queued), node, vol)
	e.gauge(c.d.credits, float64(v.Credits), node, vol)
	e.gauge(c.d.iops, float64(v.QoS.IOPS), node, vol)
	e.gauge(c.d.burstIOPS, float64(v.QoS.BurstIOPS), node, vol)
	primary := 0.0
	if v.Primary {
		primary = 1
	}
	e.gauge(c.d.primary, primary, node, vol)
	if v.Primary {
		under := 0.0
		if v.InSync < int(v.RF) {
			under = 1
		}
		e.gauge(c.d.inSync, float64(v.InSync), node, vol)
		e.gauge(c.d.underReplicated, under, node, vol)
		e.gauge(c.d.rebuilding, float64(v.Rebuilding), node, vol)
	}
	for op, h := range v.Latency {
		if h == nil {
			continue
		}
		name := core.OpClass(op).String()
		e.send(c.d.latency)(latencyHistogram(c.d.latency, h, node, vol, name))
		e.send(c.d.latencyQuantile)(latencySummary(c.d.latencyQuantile, h, node, vol, name))
	}
}
