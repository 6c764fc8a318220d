package metrics

import (
	"math"
	"slices"
	"testing"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/core/hist"
	dto "github.com/prometheus/client_model/go"
)

func checkNode(t *testing.T, fams map[string]*dto.MetricFamily, node string, rate, tokens, disk, queue float64) {
	l := map[string]string{"node": node}
	for name, want := range map[string]float64{
		"cairn_node_global_rate_ops":      rate,
		"cairn_node_global_tokens":        tokens,
		"cairn_node_disk_latency_seconds": disk,
		"cairn_node_storage_queue":        queue,
	} {
		if got := series(t, fams, name, l).GetGauge().GetValue(); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

func (f *fixture) checkVolumes(t *testing.T, fams map[string]*dto.MetricFamily) {
	for _, v := range f.stats.Volumes {
		l := map[string]string{"node": "7", "volume": map[core.VolumeID]string{3: "3", 11: "11"}[v.Volume]}
		primary := 0.0
		if v.Primary {
			primary = 1
		}
		for name, want := range map[string]float64{
			"cairn_volume_admitted_total":  float64(v.Admitted),
			"cairn_volume_lent_total":      float64(v.Lent),
			"cairn_volume_throttled_total": float64(v.Throttled),
			"cairn_volume_busy_total":      float64(v.Busy),
		} {
			if got := series(t, fams, name, l).GetCounter().GetValue(); got != want {
				t.Errorf("%s%v = %v, want %v", name, l, got, want)
			}
		}
		for name, want := range map[string]float64{
			"cairn_volume_queued":           float64(v.Queued),
			"cairn_volume_burst_credits":    float64(v.Credits),
			"cairn_volume_provisioned_iops": float64(v.QoS.IOPS),
			"cairn_volume_burst_iops":       float64(v.QoS.BurstIOPS),
			"cairn_volume_primary":          primary,
		} {
			if got := series(t, fams, name, l).GetGauge().GetValue(); got != want {
				t.Errorf("%s%v = %v, want %v", name, l, got, want)
			}
		}
	}
	// Redundancy comes from the primary only: volume 3 (2 of 3 in sync, 1 rebuilding).
	for name, want := range map[string]float64{
		"cairn_volume_in_sync_replicas":    2,
		"cairn_volume_under_replicated":    1,
		"cairn_volume_rebuilding_replicas": 1,
	} {
		if ms := fams[name].GetMetric(); len(ms) != 1 || labelString(ms[0]) != labelString(series(t, fams, name, map[string]string{"node": "7", "volume": "3"})) || ms[0].GetGauge().GetValue() != want {
			t.Errorf("%s: %v, want one series for volume 3 = %v", name, ms, want)
		}
	}
	if got := series(t, fams, "cairn_node_remirror_bytes_total", map[string]string{"node": "7"}).GetCounter().GetValue(); got != 1<<30 {
		t.Errorf("cairn_node_remirror_bytes_total = %v, want %v", got, 1<<30)
	}
	// Latency series for volume 3 read/write and volume 11 write/flush; nil ones skipped.
	for _, name := range []string{"cairn_volume_latency_seconds", "cairn_volume_latency_quantile_seconds"} {
		var got []string
		for _, m := range fams[name].GetMetric() {
			got = append(got, labelString(m))
		}
		slices.Sort(got)
		want := []string{"node=7,op=flush,volume=11", "node=7,op=read,volume=3", "node=7,op=write,volume=11", "node=7,op=write,volume=3"}
		if !slices.Equal(got, want) {
			t.Errorf("%s series %v, want %v", name, got, want)
		}
	}
}

func (f *fixture) checkHistograms(t *testing.T, fams map[string]*dto.MetricFamily) {
	const name = "cairn_volume_latency_seconds"
	for _, tc := range []struct {
		vol, op string
		raw     []int64
		exact   bool // raw avoids every straddle window
	}{
		{"3", "read", f.read3, true},
		{"3", "write", f.wr3, true},
		{"11", "write", f.wr11, false},
		{"11", "flush", nil, true},
	} {
		h := series(t, fams, name, latencyLabels(tc.vol, tc.op)).GetHistogram()
		if got, want := h.GetSampleCount(), uint64(len(tc.raw)); got != want {
			t.Errorf("%s/%s count %d, want %d", tc.vol, tc.op, got, want)
		}
		var sum int64
		for _, v := range tc.raw {
			sum += v
		}
		if got, want := h.GetSampleSum(), float64(sum)/1e9; math.Abs(got-want) > 1e-12*math.Abs(want) {
			t.Errorf("%s/%s sum %v, want %v", tc.vol, tc.op, got, want)
		}
		var bounds []float64
		for _, b := range h.GetBucket() {
			if !math.IsInf(b.GetUpperBound(), +1) {
				bounds = append(bounds, b.GetUpperBound())
			}
		}
		if len(bounds) != len(latencyBuckets) {
			t.Fatalf("%s/%s: %d buckets %v, want %d", tc.vol, tc.op, len(bounds), bounds, len(latencyBuckets))
		}
		for i, le := range latencyBuckets {
			b := h.GetBucket()[i]
			if b.GetUpperBound() != float64(le)/1e9 {
				t.Errorf("bucket %d le %v, want %v", i, b.GetUpperBound(), float64(le)/1e9)
			}
			got, atMost := b.GetCumulativeCount(), countAtMost(tc.raw, le)
			if tc.exact && got != atMost {
				t.Errorf("%s/%s le %v: %d, want exactly %d", tc.vol, tc.op, b.GetUpperBound(), got, atMost)
			}
			// Always: values up to a straddle width below le count, none above le does.
			if floor := countAtMost(tc.raw, le-straddleWidth(le)); got < floor || got > atMost {
				t.Errorf("%s/%s le %v: %d outside [%d, %d]", tc.vol, tc.op, b.GetUpperBound(), got, floor, atMost)
			}
		}
	}
}

func (f *fixture) checkSummaries(t *testing.T, fams map[string]*dto.MetricFamily) {
	const name = "cairn_volume_latency_quantile_seconds"
	relErr := newHist(t, nil).RelErr() / 2
	for _, tc := range []struct {
		vol, op string
		raw     []int64
	}{{"3", "read", f.read3}, {"3", "write", f.wr3}, {"11", "write", f.wr11}} {
		s := series(t, fams, name, latencyLabels(tc.vol, tc.op)).GetSummary()
		if got, want := s.GetSampleCount(), uint64(len(tc.raw)); got != want {
			t.Errorf("%s/%s count %d, want %d", tc.vol, tc.op, got, want)
		}
		sorted := slices.Sorted(slices.Values(tc.raw))
		var qs []float64
		for _, q := range s.GetQuantile() {
			qs = append(qs, q.GetQuantile())
			exact := float64(sorted[hist.Rank(q.GetQuantile(), uint64(len(sorted)))-1])
			// wr11's 12s value is above MaxValue, where Quantile has no relative bound, but
			// only ranks n (returned exactly: Max) land on it.
			if got := q.GetValue() * 1e9; math.Abs(got-exact) > exact*relErr+1 {
				t.Errorf("%s/%s q%v = %vns, exact %vns: beyond %.3f%%", tc.vol, tc.op, q.GetQuantile(), got, exact, 100*relErr)
			}
		}
		if !slices.Equal(qs, latencyQuantiles) {
			t.Errorf("%s/%s quantiles %v, want %v", tc.vol, tc.op, qs, latencyQuantiles)
		}
	}
	s := series(t, fams, name, latencyLabels("11", "flush")).GetSummary()
	for _, q := range s.GetQuantile() {
		if !math.IsNaN(q.GetValue()) {
			t.Errorf("empty histogram: q%v = %v, want NaN", q.GetQuantile(), q.GetValue())
		}
	}
}
