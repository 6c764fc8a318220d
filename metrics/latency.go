package metrics

import (
	"math"

	"github.com/cairnstore/cairn/core/hist"
	"github.com/prometheus/client_golang/prometheus"
)

// latencyBuckets are the upper bounds ("le"), in nanoseconds, of the Prometheus buckets
// of cairn_volume_latency_seconds: 50µs, 100µs, 250µs, 500µs, 1ms, 2ms, 5ms, 10ms, 25ms,
// 50ms, 100ms, 250ms, 500ms, 1s, 2.5s, 5s, 10s (and the implicit +Inf).
//
// A bucket counts the values of every core histogram bucket whose inclusive upper bound
// is at most le. Core buckets do not all end on these bounds: a core bucket that
// straddles le (holds values both at most le and above it) counts in the next bucket
// up. So bucket le counts exactly the values <= u, u the largest core bucket upper <= le,
// and le - u is under one core bucket width: 10µs below 2ms, at most
// hist.Histogram.RelErr() (0.78%) of le above. For example, the 10µs core bucket
// [50µs, 60µs) ends above 50µs, so a request of exactly 50µs counts in le=100µs, not 50µs.
var latencyBuckets = []int64{
	50_000, 100_000, 250_000, 500_000,
	1_000_000, 2_000_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000,
	100_000_000, 250_000_000, 500_000_000,
	1_000_000_000, 2_500_000_000, 5_000_000_000, 10_000_000_000,
}

// latencyQuantiles are the quantiles of cairn_volume_latency_quantile_seconds, in the
// order the tests expect them exposed (ascending).
var latencyQuantiles = []float64{0.5, 0.9, 0.99, 0.999}

// seconds converts nanoseconds to seconds.
func seconds(ns int64) float64 { return float64(ns) / 1e9 }

// latencyHistogram is h as a constant Prometheus histogram with latencyBuckets.
func latencyHistogram(desc *prometheus.Desc, h *hist.Histogram, labels ...string) (prometheus.Metric, error) {
	per := make([]uint64, len(latencyBuckets)) // per[j]: core buckets with upper in (le[j-1], le[j]]
	j := 0
	h.Buckets(func(upper int64, count uint64) {
		for j < len(latencyBuckets) && upper > latencyBuckets[j] {
			j++
		}
		if j < len(latencyBuckets) {
			per[j] += count
		}
	})
	buckets := make(map[float64]uint64, len(latencyBuckets))
	var cum uint64
	for i, le := range latencyBuckets {
		cum += per[i]
		buckets[seconds(le)] = cum
	}
	return prometheus.NewConstHistogram(desc, h.Count(), sumSeconds(h), buckets, labels...)
}

// latencySummary is h as a constant Prometheus summary with latencyQuantiles; the
// quantiles are NaN when h is empty.
func latencySummary(desc *prometheus.Desc, h *hist.Histogram, labels ...string) (prometheus.Metric, error) {
	qs := make(map[float64]float64, len(latencyQuantiles))
	for _, q := range latencyQuantiles {
		v := math.NaN()
		if h.Count() > 0 {
			v = seconds(h.Quantile(q))
		}
		qs[q] = v
	}
	return prometheus.NewConstSummary(desc, h.Count(), sumSeconds(h), qs, labels...)
}

// sumSeconds is h's sum in seconds.
func sumSeconds(h *hist.Histogram) float64 { return float64(h.Sum()) / 1e9 }
