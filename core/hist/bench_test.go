package hist

import "testing"

// benchValues is a fixed mix of latencies: mostly in the band, a log-uniform tail.
func benchValues() []int64 {
	vs := make([]int64, 4096)
	x := uint64(88172645463325252)
	for i := range vs {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		if i%4 != 0 {
			vs[i] = int64(x % 2_000_000) // band
		} else {
			vs[i] = int64(x>>(28+x%28)) % 60_000_000_000
		}
	}
	return vs
}

func BenchmarkRecord(b *testing.B) {
	h, _ := New(DefaultConfig())
	vs := benchValues()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		h.Record(vs[i&4095])
	}
}

func BenchmarkQuantile(b *testing.B) {
	h, _ := New(DefaultConfig())
	for _, v := range benchValues() {
		h.Record(v)
	}
	qs := []float64{.5, .9, .99, .999}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		_ = h.Quantile(qs[i&3])
	}
}

func BenchmarkMerge(b *testing.B) {
	h, _ := New(DefaultConfig())
	o, _ := New(DefaultConfig())
	for _, v := range benchValues() {
		o.Record(v)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		_ = h.Merge(o)
	}
}
