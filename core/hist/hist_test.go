package hist

import (
	"errors"
	"math"
	"math/bits"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// tb is what the helpers need from *testing.T and *rapid.T.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
}

func mustNew(t tb, c Config) *Histogram {
	t.Helper()
	h, err := New(c)
	if err != nil {
		t.Fatalf("New(%+v): %v", c, err)
	}
	return h
}

// genConfig draws a valid Config: the default one, or a random layout (with or without
// a band, BandMax sometimes equal to MaxValue).
func genConfig(t *rapid.T) Config {
	if rapid.Bool().Draw(t, "default") {
		return DefaultConfig()
	}
	c := Config{SubBucketBits: uint8(rapid.IntRange(1, 10).Draw(t, "bits"))}
	e := rapid.IntRange(0, 62).Draw(t, "maxExp")
	c.MaxValue = rapid.Int64Range(max(1, int64(1)<<e>>1), int64(1)<<e).Draw(t, "max")
	if rapid.Bool().Draw(t, "band") {
		c.BandStep = rapid.Int64Range(1, max(1, c.MaxValue/4)).Draw(t, "step")
		c.BandMax = c.BandStep * rapid.Int64Range(1, min(2000, c.MaxValue/c.BandStep)).Draw(t, "bandN")
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("generated bad config %+v: %v", c, err)
	}
	return c
}

// genValue draws a value in [0, c.MaxValue] from one of several distributions.
func genValue(c Config, dist int, t *rapid.T) int64 {
	switch dist {
	case 0: // uniform small
		return rapid.Int64Range(0, min(c.MaxValue, 1000)).Draw(t, "small")
	case 1: // log-uniform over 1..MaxValue
		e := rapid.IntRange(0, bits.Len64(uint64(c.MaxValue))-1).Draw(t, "exp")
		lo := int64(1) << e
		return rapid.Int64Range(lo, min(c.MaxValue, 2*lo-1)).Draw(t, "logu")
	default: // clustered in the band (or around a point without one)
		center, spread := rapid.Int64Range(0, c.MaxValue).Draw(t, "center"), int64(100)
		if c.BandMax > 0 {
			center = rapid.Int64Range(0, c.BandMax-1).Draw(t, "bandCenter")
			spread = 3 * c.BandStep
		}
		return min(c.MaxValue, max(0, center+rapid.Int64Range(-spread, spread).Draw(t, "off")))
	}
}

func genSamples(t *rapid.T, c Config, label string) []int64 {
	dist := rapid.IntRange(0, 3).Draw(t, label+"Dist") // 3: a mixture
	n := rapid.IntRange(1, 2000).Draw(t, label+"N")
	vs := make([]int64, n)
	for i := range vs {
		d := dist
		if d == 3 {
			d = rapid.IntRange(0, 2).Draw(t, "d")
		}
		vs[i] = genValue(c, d, t)
	}
	return vs
}

var quantiles = []float64{0, .5, .9, .99, .999, 1}

// exactQuantile is sorted[ceil(q*n)-1] (index 0 for q == 0), computed here independently.
func exactQuantile(sorted []int64, q float64) int64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

// checkQuantile fails unless v obeys Quantile's documented bound for true quantile x.
func checkQuantile(t tb, h *Histogram, q float64, v, x int64) {
	t.Helper()
	c, d := h.Config(), absDiff(v, x)
	if d > x>>(c.SubBucketBits+1) { // i.e. not d*2^(b+1) <= x
		t.Fatalf("q=%v: got %d, exact %d, |diff| %d > x*2^-(b+1) = %d (cfg %+v)", q, v, x, d, x>>(c.SubBucketBits+1), c)
	}
	if float64(d) > h.RelErr()*float64(x) {
		t.Fatalf("q=%v: got %d, exact %d, beyond RelErr %v", q, v, x, h.RelErr())
	}
	if x < c.BandMax && 2*d > c.BandStep {
		t.Fatalf("q=%v: got %d, exact %d in band, |diff| %d > BandStep/2 (%d)", q, v, x, d, c.BandStep)
	}
}

// H1: Quantile is within the documented bound of the exact quantile.
func TestQuantileBoundH1(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genConfig(t)
		h := mustNew(t, c)
		vs := genSamples(t, c, "s")
		for _, v := range vs {
			h.Record(v)
		}
		slices.Sort(vs)
		q := rapid.SampledFrom(quantiles).Draw(t, "q")
		for _, q := range append([]float64{q}, quantiles...) {
			checkQuantile(t, h, q, h.Quantile(q), exactQuantile(vs, q))
		}
		if h.Quantile(0) != vs[0] || h.Quantile(1) != vs[len(vs)-1] {
			t.Fatalf("Quantile(0)=%d Quantile(1)=%d, want %d %d", h.Quantile(0), h.Quantile(1), vs[0], vs[len(vs)-1])
		}
	})
}

// Every quantile of a fine grid of ranks, not just the listed ones.
func TestQuantileBoundAllRanks(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genConfig(t)
		h := mustNew(t, c)
		vs := genSamples(t, c, "s")
		for _, v := range vs {
			h.Record(v)
		}
		slices.Sort(vs)
		for k := 1; k <= len(vs); k++ {
			q := float64(k) / float64(len(vs))
			checkQuantile(t, h, q, h.Quantile(q), exactQuantile(vs, q))
		}
	})
}

func TestBucketLayout(t *testing.T) {
	for _, c := range []Config{DefaultConfig(), {SubBucketBits: 1, MaxValue: math.MaxInt64}, {SubBucketBits: 16, MaxValue: 1 << 30}} {
		h := mustNew(t, c)
		b := uint(c.SubBucketBits)
		next := int64(0)
		for i := range h.counts {
			lo, hi := h.bounds(i)
			if lo != next || hi < lo {
				t.Fatalf("%+v: bucket %d = [%d,%d], want lo %d", c, i, lo, hi, next)
			}
			if w := hi - lo + 1; w > 1 && w > lo>>b {
				t.Fatalf("%+v: bucket %d = [%d,%d] wider than 2^-b of lo", c, i, lo, hi)
			}
			for _, v := range []int64{lo, hi, lo + (hi-lo)/2} {
				if v <= c.MaxValue && h.index(v) != i {
					t.Fatalf("%+v: index(%d) = %d, want %d", c, v, h.index(v), i)
				}
			}
			if hi == math.MaxInt64 {
				break
			}
			next = hi + 1
		}
		if _, hi := h.bounds(len(h.counts) - 1); hi < c.MaxValue {
			t.Fatalf("%+v: top bucket ends at %d < MaxValue", c, hi)
		}
	}
}

// Buckets is a fixed, increasing partition whose per-bucket counts match the values.
func TestBucketsPartition(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genConfig(t)
		h := mustNew(t, c)
		var emptyUppers []int64
		h.Buckets(func(u int64, n uint64) {
			if n != 0 {
				t.Fatalf("empty histogram has count %d at %d", n, u)
			}
			emptyUppers = append(emptyUppers, u)
		})
		vs := genSamples(t, c, "s")
		vs = append(vs, -5, c.MaxValue+1, c.BandMax, c.BandMax-1, c.MaxValue)
		for _, v := range vs {
			h.Record(v)
		}
		var uppers []int64
		var counts []uint64
		var total uint64
		h.Buckets(func(u int64, n uint64) {
			if len(uppers) > 0 && u <= uppers[len(uppers)-1] {
				t.Fatalf("upper %d after %d", u, uppers[len(uppers)-1])
			}
			uppers, counts, total = append(uppers, u), append(counts, n), total+n
		})
		if !slices.Equal(uppers, emptyUppers) || uppers[len(uppers)-1] != c.MaxValue || total != h.Count() {
			t.Fatalf("layout changed, last upper %d (max %d) or total %d != count %d", uppers[len(uppers)-1], c.MaxValue, total, h.Count())
		}
		want := make([]uint64, len(uppers))
		for _, v := range vs {
			v = min(max(v, 0), c.MaxValue)
			i, _ := slices.BinarySearch(uppers, v) // first upper >= v
			want[i]++
		}
		if !slices.Equal(counts, want) {
			t.Fatalf("bucket counts differ from the recorded values")
		}
	})
}

func sameState(t tb, a, b *Histogram) {
	t.Helper()
	if !slices.Equal(a.counts, b.counts) || !slices.Equal(a.band, b.band) || a.straddleHi != b.straddleHi {
		t.Fatalf("buckets differ")
	}
	if a.Count() != b.Count() || a.Sum() != b.Sum() || a.Min() != b.Min() || a.Max() != b.Max() || a.Overflow() != b.Overflow() {
		t.Fatalf("count/sum/min/max/overflow differ: %d/%d/%d/%d/%d vs %d/%d/%d/%d/%d",
			a.Count(), a.Sum(), a.Min(), a.Max(), a.Overflow(), b.Count(), b.Sum(), b.Min(), b.Max(), b.Overflow())
	}
	type bk struct {
		u int64
		n uint64
	}
	var ab, bb []bk
	a.Buckets(func(u int64, n uint64) { ab = append(ab, bk{u, n}) })
	b.Buckets(func(u int64, n uint64) { bb = append(bb, bk{u, n}) })
	if !slices.Equal(ab, bb) {
		t.Fatalf("Buckets differ")
	}
	for _, q := range quantiles {
		if a.Quantile(q) != b.Quantile(q) {
			t.Fatalf("Quantile(%v) differs: %d vs %d", q, a.Quantile(q), b.Quantile(q))
		}
	}
}

// Merge(a, b) equals recording the union, field by field and bucket by bucket.
func TestMergeEqualsUnion(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genConfig(t)
		a, b, u := mustNew(t, c), mustNew(t, c), mustNew(t, c)
		extra := rapid.SliceOf(rapid.SampledFrom([]int64{-1, math.MinInt64, c.MaxValue + 1, math.MaxInt64, 0})).Draw(t, "extra")
		va := append(genSamples(t, c, "a"), extra...)
		vb := genSamples(t, c, "b")
		if rapid.Bool().Draw(t, "emptyB") {
			vb = nil
		}
		for _, v := range va {
			a.Record(v)
			u.Record(v)
		}
		for _, v := range vb {
			b.Record(v)
			u.Record(v)
		}
		if err := a.Merge(b); err != nil {
			t.Fatal(err)
		}
		sameState(t, a, u)
	})
}

func TestRecordNEqualsRepeatedRecord(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genConfig(t)
		a, b := mustNew(t, c), mustNew(t, c)
		for i, v := range genSamples(t, c, "s") {
			n := uint64(i % 4)
			a.RecordN(v-1, n)
			for range n {
				b.Record(v - 1)
			}
		}
		sameState(t, a, b)
		a.Reset()
		if err := b.Merge(a); err != nil { // merging an empty histogram changes nothing
			t.Fatal(err)
		}
		b.Reset()
		sameState(t, a, mustNew(t, c))
		sameState(t, b, mustNew(t, c))
	})
}

func TestMergeRejectsOtherConfig(t *testing.T) {
	a := mustNew(t, DefaultConfig())
	c := DefaultConfig()
	c.BandStep = 20_000
	b := mustNew(t, c)
	b.Record(5)
	if err := a.Merge(b); !errors.Is(err, ErrConfigMismatch) {
		t.Fatalf("Merge with other config: %v", err)
	}
	if err := a.Merge(nil); err == nil {
		t.Fatal("Merge(nil) succeeded")
	}
	if a.Count() != 0 {
		t.Fatal("failed Merge changed the histogram")
	}
}

func TestValidate(t *testing.T) {
	good := []Config{
		DefaultConfig(),
		{SubBucketBits: 1, MaxValue: 1},
		{SubBucketBits: 16, MaxValue: math.MaxInt64, BandMax: 100, BandStep: 100},
		{SubBucketBits: 7, MaxValue: 100, BandMax: 100, BandStep: 1},
	}
	for _, c := range good {
		if err := c.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", c, err)
		}
		if _, err := New(c); err != nil {
			t.Errorf("New(%+v) = %v", c, err)
		}
	}
	d := DefaultConfig()
	bad := []Config{
		{},
		{SubBucketBits: 0, MaxValue: d.MaxValue},
		{SubBucketBits: 17, MaxValue: d.MaxValue},
		{SubBucketBits: 7, MaxValue: 0},
		{SubBucketBits: 7, MaxValue: -1},
		{SubBucketBits: 7, MaxValue: d.MaxValue, BandMax: -10, BandStep: 1},
		{SubBucketBits: 7, MaxValue: d.MaxValue, BandMax: 10, BandStep: -1},
		{SubBucketBits: 7, MaxValue: d.MaxValue, BandMax: 10, BandStep: 0},
		{SubBucketBits: 7, MaxValue: d.MaxValue, BandMax: 0, BandStep: 10},
		{SubBucketBits: 7, MaxValue: d.MaxValue, BandMax: 2_000_000, BandStep: 30_000},
		{SubBucketBits: 7, MaxValue: 1000, BandMax: 2000, BandStep: 10},
		{SubBucketBits: 7, MaxValue: d.MaxValue, BandMax: 1 << 30, BandStep: 1},
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want error", c)
		}
		if h, err := New(c); err == nil || h != nil {
			t.Errorf("New(%+v) = %v, %v; want error", c, h, err)
		}
	}
	if r := mustNew(t, d).RelErr(); r > 0.01 || r != 1.0/128 {
		t.Errorf("default RelErr %v, want 2^-7 <= 1%%", r)
	}
}

func TestOverflowAndNegative(t *testing.T) {
	c := Config{SubBucketBits: 7, MaxValue: 1_000_000, BandMax: 1000, BandStep: 10}
	h := mustNew(t, c)
	h.Record(-7)
	h.Record(math.MinInt64)
	if h.Count() != 2 || h.Min() != 0 || h.Max() != 0 || h.Sum() != 0 || h.band[0] != 2 || h.counts[0] != 2 {
		t.Fatalf("negatives not recorded as 0: count %d min %d max %d sum %d", h.Count(), h.Min(), h.Max(), h.Sum())
	}
	if h.Quantile(.5) != 0 || h.Quantile(1) != 0 {
		t.Fatalf("quantile of zeros: %d", h.Quantile(.5))
	}
	h.Reset()
	h.Record(c.MaxValue)
	h.Record(c.MaxValue + 1)
	h.RecordN(5_000_000, 3)
	top := len(h.counts) - 1
	if h.Overflow() != 4 || h.counts[top] != 5 || h.Count() != 5 || h.Max() != 5_000_000 || h.Sum() != 1_000_000+1_000_001+15_000_000 {
		t.Fatalf("overflow %d top %d count %d max %d sum %d", h.Overflow(), h.counts[top], h.Count(), h.Max(), h.Sum())
	}
	var last uint64
	var lastU int64
	h.Buckets(func(u int64, n uint64) { lastU, last = u, n })
	if lastU != c.MaxValue || last != 5 {
		t.Fatalf("top bucket (%d, %d), want (%d, 5)", lastU, last, c.MaxValue)
	}
	if q := h.Quantile(.5); q < c.MaxValue-c.MaxValue>>7 || q > h.Max() {
		t.Fatalf("overflowed median %d outside [top bucket, Max]", q)
	}
	if h.Quantile(0) != c.MaxValue || h.Quantile(1) != 5_000_000 {
		t.Fatalf("Quantile(0)=%d Quantile(1)=%d", h.Quantile(0), h.Quantile(1))
	}
	e := mustNew(t, c)
	if e.Quantile(.5) != 0 || e.Min() != 0 || e.Max() != 0 {
		t.Fatal("empty histogram not all zero")
	}
}

// The band refines the log-linear estimate: with a 1 ns band, quantiles in it are exact.
func TestBandExact(t *testing.T) {
	h := mustNew(t, Config{SubBucketBits: 2, MaxValue: 1 << 20, BandMax: 4096, BandStep: 1})
	for v := int64(1000); v < 3000; v += 7 {
		h.Record(v)
	}
	if got, want := h.Quantile(.5), int64(1000+7*142); got != want {
		t.Fatalf("median %d, want %d", got, want)
	}
}

func TestRank(t *testing.T) {
	for _, tc := range []struct {
		q    float64
		n, k uint64
	}{{0, 10, 1}, {.5, 10, 5}, {.51, 10, 6}, {.9, 10, 9}, {1, 10, 10}, {-1, 10, 1}, {math.NaN(), 10, 1}, {2, 10, 10}, {.5, 0, 0}, {.999, 1000, 999}, {.999, 1001, 1000}} {
		if k := Rank(tc.q, tc.n); k != tc.k {
			t.Errorf("Rank(%v, %d) = %d, want %d", tc.q, tc.n, k, tc.k)
		}
	}
}

func TestNoAllocs(t *testing.T) {
	h := mustNew(t, DefaultConfig())
	o := mustNew(t, DefaultConfig())
	o.Record(12345)
	v := int64(0)
	check := func(name string, f func()) {
		if a := testing.AllocsPerRun(1000, f); a != 0 {
			t.Errorf("%s allocates %v per run", name, a)
		}
	}
	check("Record", func() { v = v*6364136223846793005 + 1442695040888963407; h.Record(v >> 30) })
	check("RecordN", func() { h.RecordN(v>>40, 3) })
	check("Quantile", func() { _ = h.Quantile(.99) })
	check("Merge", func() { _ = h.Merge(o) })
	check("Reset", func() { h.Reset() })
}
