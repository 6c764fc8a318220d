package metrics

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/core/hist"
)

// fixture is a two-volume snapshot and the raw values behind its histograms.
type fixture struct {
	stats core.NodeStats
	read3 []int64 // volume 3 reads: 1,000 values over 100µs..50ms, off the straddles
	wr3   []int64 // volume 3 writes: 500 values over 20µs..8s, off the straddles
	wr11  []int64 // volume 11 writes: values on and around every bound
}

func newFixture(t testing.TB) *fixture {
	f := &fixture{read3: spread(1000, 100_000, 50_000_000, 1), wr3: spread(500, 20_000, 8_000_000_000, 2)}
	for _, le := range latencyBuckets {
		f.wr11 = append(f.wr11, le-straddleWidth(le)+1, le-1, le, le, le+1)
	}
	f.wr11 = append(f.wr11, 12_000_000_000, 1)
	empty := newHist(t, nil)
	f.stats = core.NodeStats{
		Self: 7, GlobalRate: 12345, GlobalTokens: -17, DiskLatency: 1_500_000, StorageQueue: 9, ReMirrorBytes: 1 << 30,
		Volumes: []core.VolumeStats{{
			Volume: 3, Primary: true,
			QoS:      core.QoS{IOPS: 1000, BurstIOPS: 3000, BurstCredits: 50_000},
			Admitted: 1500, Lent: 40, Throttled: 25, Busy: 2, Queued: 4, Credits: 777,
			RF: 3, InSync: 2, Rebuilding: 1,
			Latency: [core.NumOpClasses]*hist.Histogram{newHist(t, f.read3), newHist(t, f.wr3), nil},
		}, {
			Volume: 11, Admitted: 5, Credits: -3,
			Latency: [core.NumOpClasses]*hist.Histogram{nil, newHist(t, f.wr11), empty},
		}},
	}
	return f
}

func (f *fixture) collector() *Collector {
	return NewCollector(func() core.NodeStats { return f.stats })
}

// newHist returns a default-layout histogram holding values.
func newHist(t testing.TB, values []int64) *hist.Histogram {
	t.Helper()
	h, err := hist.New(hist.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		h.Record(v)
	}
	return h
}

// straddleWidth bounds the width of the core bucket that may straddle le (ns): the
// default layout's 10µs band step below 2ms, and RelErr (2^-7) of le above.
func straddleWidth(le int64) int64 {
	return max(hist.DefaultConfig().BandStep, int64(math.Ceil(float64(le)/128)))
}

// spread returns n values log-uniformly spread over [lo, hi] ns (seeded, so fixed),
// moved out of every window (le - straddleWidth(le), le] of latencyBuckets to le+1.
// The core bucket that straddles le (if any) is narrower than straddleWidth(le), so its
// values <= le all lie in that window: the moved values sit in core buckets that end at
// or below le or start above it, and the exported bucket counts must then be exact.
func spread(n int, lo, hi int64, seed uint64) []int64 {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]int64, n)
	for i := range out {
		v := int64(float64(lo) * math.Pow(float64(hi)/float64(lo), r.Float64()))
		for _, le := range latencyBuckets {
			if v > le-straddleWidth(le) && v <= le {
				v = le + 1
			}
		}
		out[i] = v
	}
	return out
}

// countAtMost is how many of values are <= le.
func countAtMost(values []int64, le int64) uint64 {
	var n uint64
	for _, v := range values {
		if v <= le {
			n++
		}
	}
	return n
}
