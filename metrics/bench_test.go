package metrics

import (
	"testing"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/core/hist"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkCollect16 measures one Collect of a 16-volume snapshot, every volume with
// read, write and flush histograms of 1,000 values each.
func BenchmarkCollect16(b *testing.B) {
	s := core.NodeStats{Self: 1, GlobalRate: 50_000, DiskLatency: 400_000}
	for v := range 16 {
		var lat [core.NumOpClasses]*hist.Histogram
		for op := range lat {
			lat[op] = newHist(b, spread(1000, 50_000, 100_000_000, uint64(v*3+op)))
		}
		s.Volumes = append(s.Volumes, core.VolumeStats{
			Volume: core.VolumeID(v), Primary: true, Admitted: 1e6, Latency: lat,
			QoS: core.QoS{IOPS: 1000, BurstIOPS: 3000, BurstCredits: 1e5},
		})
	}
	c := NewCollector(func() core.NodeStats { return s })
	ch := make(chan prometheus.Metric, 4+16*(9+2*3))
	b.ReportAllocs()
	for b.Loop() {
		c.Collect(ch)
		for len(ch) > 0 {
			<-ch
		}
	}
}
