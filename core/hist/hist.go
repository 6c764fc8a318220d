// Package hist is a constant-memory, mergeable latency histogram (Cairn spec section 7).
//
// Values are non-negative int64 (nanoseconds in Cairn). Every value is recorded in a
// log-linear bucket array (HDR-style): values below 2^(b+1), b = SubBucketBits, get a
// bucket each; above that, every power-of-two range [2^e, 2^(e+1)) is split into 2^b
// equal sub-buckets of width 2^(e-b), so a bucket's width is at most 2^-b of its lower
// bound. Values below BandMax are additionally recorded in a linear band of BandStep-wide
// buckets. All storage is allocated once by New; Record does integer arithmetic only,
// O(1), and never allocates.
//
// It is part of the deterministic core: no clock, no goroutines, no maps, no randomness.
package hist

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// Config fixes a histogram's layout. Two histograms can be merged only if their Configs
// are equal.
type Config struct {
	// SubBucketBits b (1..16): each power-of-two range is split into 2^b linear
	// sub-buckets; bucket width <= 2^-b of the bucket's lower bound (7 -> 0.78%).
	SubBucketBits uint8
	// MaxValue (>= 1): larger values are recorded as MaxValue and counted in Overflow.
	MaxValue int64
	// BandMax: 0 disables the linear band; otherwise values < BandMax are also recorded
	// in a linear band of BandStep-wide buckets. BandMax <= MaxValue.
	BandMax int64
	// BandStep: band resolution; > 0 with BandMax % BandStep == 0 when the band is on,
	// 0 when it is off.
	BandStep int64
}

// Limits on the layout, so a Config cannot ask for unbounded memory.
const (
	maxSubBucketBits = 16
	maxBandBuckets   = 1 << 20
)

// DefaultConfig is Cairn's latency layout: 0.78% log-linear buckets up to one minute,
// plus a 10 µs band over 0-2 ms.
func DefaultConfig() Config {
	return Config{SubBucketBits: 7, MaxValue: 60_000_000_000, BandMax: 2_000_000, BandStep: 10_000}
}

// Validate reports why c cannot be used, or nil.
func (c Config) Validate() error {
	if c.SubBucketBits < 1 || c.SubBucketBits > maxSubBucketBits {
		return fmt.Errorf("hist: SubBucketBits %d outside 1..%d", c.SubBucketBits, maxSubBucketBits)
	}
	if c.MaxValue < 1 {
		return fmt.Errorf("hist: MaxValue %d must be >= 1", c.MaxValue)
	}
	if c.BandMax < 0 || c.BandStep < 0 {
		return fmt.Errorf("hist: negative band (BandMax %d, BandStep %d)", c.BandMax, c.BandStep)
	}
	if c.BandMax == 0 {
		if c.BandStep != 0 {
			return fmt.Errorf("hist: BandStep %d set without BandMax", c.BandStep)
		}
		return nil
	}
	if c.BandStep == 0 {
		return fmt.Errorf("hist: BandMax %d needs a BandStep", c.BandMax)
	}
	if c.BandMax%c.BandStep != 0 {
		return fmt.Errorf("hist: BandMax %d is not a multiple of BandStep %d", c.BandMax, c.BandStep)
	}
	if c.BandMax > c.MaxValue {
		return fmt.Errorf("hist: BandMax %d above MaxValue %d", c.BandMax, c.MaxValue)
	}
	if c.BandMax/c.BandStep > maxBandBuckets {
		return fmt.Errorf("hist: band has %d buckets, more than %d", c.BandMax/c.BandStep, maxBandBuckets)
	}
	return nil
}

// Histogram records non-negative int64 values. The zero value is not usable; use New.
type Histogram struct {
	cfg      Config
	b        uint     // SubBucketBits
	maxValue int64    // Config.MaxValue
	bandMax  int64    // 0 when the band is off
	bandStep int64    // 1 when the band is off (never divided by then)
	counts   []uint64 // log-linear buckets, indices 0..index(MaxValue)
	band     []uint64 // linear band buckets: band[k] holds [k*BandStep, (k+1)*BandStep)

	// straddle is the log-linear bucket containing BandMax (-1 without a band);
	// straddleHi counts its values >= BandMax, so Buckets can report a partition.
	straddle   int
	straddleHi uint64

	count    uint64
	sum      uint64 // modulo 2^64
	min, max int64  // of recorded values (negatives as 0, not clamped); valid if count > 0
	overflow uint64
}

// New returns an empty histogram with layout c.
func New(c Config) (*Histogram, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	h := &Histogram{cfg: c, b: uint(c.SubBucketBits), maxValue: c.MaxValue, bandStep: 1, straddle: -1}
	h.counts = make([]uint64, h.index(c.MaxValue)+1)
	if c.BandMax > 0 {
		h.bandMax, h.bandStep = c.BandMax, c.BandStep
		h.band = make([]uint64, c.BandMax/c.BandStep)
		h.straddle = h.index(c.BandMax)
	}
	h.Reset()
	return h, nil
}

// index is the log-linear bucket of v (0 <= v): with s = max(0, bitlen(v)-b-1),
// index = s*2^b + (v >> s).
func (h *Histogram) index(v int64) int {
	u := uint64(v)
	s := uint(bits.Len64(u|1<<h.b)) - h.b - 1
	return int(uint64(s)<<h.b + u>>s)
}

// bounds is the inclusive value range [lo, hi] of log-linear bucket i.
func (h *Histogram) bounds(i int) (lo, hi int64) {
	s := i>>h.b - 1
	if s < 0 {
		s = 0
	}
	lo = int64(i-s<<h.b) << uint(s)
	return lo, lo + int64(1)<<uint(s) - 1
}

// Record adds one value. v < 0 counts as 0; v > MaxValue is counted in Overflow and
// bucketed as MaxValue (Sum, Min and Max see it unclamped). O(1), no allocation.
func (h *Histogram) Record(v int64) { h.RecordN(v, 1) }

// RecordN adds n copies of v (see Record). n == 0 is a no-op.
func (h *Histogram) RecordN(v int64, n uint64) {
	if n == 0 {
		return
	}
	if v < 0 {
		v = 0
	}
	h.count += n
	h.sum += uint64(v) * n
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	if v > h.maxValue {
		v = h.maxValue
		h.overflow += n
	}
	i := h.index(v)
	h.counts[i] += n
	if v < h.bandMax {
		h.band[v/h.bandStep] += n
	} else if i == h.straddle {
		h.straddleHi += n
	}
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.count }

// Sum is the sum of recorded values (negatives as 0, not clamped), modulo 2^64.
func (h *Histogram) Sum() uint64 { return h.sum }

// Min is the smallest recorded value (negatives as 0), or 0 if empty.
func (h *Histogram) Min() int64 {
	if h.count == 0 {
		return 0
	}
	return h.min
}

// Max is the largest recorded value (not clamped to MaxValue), or 0 if empty.
func (h *Histogram) Max() int64 {
	if h.count == 0 {
		return 0
	}
	return h.max
}

// Overflow is the number of recorded values above MaxValue.
func (h *Histogram) Overflow() uint64 { return h.overflow }

// RelErr is the layout's relative bucket width, 2^-SubBucketBits: Quantile's error is
// at most RelErr()/2 of the true quantile (see Quantile).
func (h *Histogram) RelErr() float64 { return math.Ldexp(1, -int(h.b)) }

// Config returns the histogram's layout.
func (h *Histogram) Config() Config { return h.cfg }

// Rank is the 1-based rank Quantile(q) targets among n values: ceil(q*n) computed in
// float64, clamped to [1, n] (q < 0 or NaN acts as 0, q > 1 as 1). 0 if n == 0.
func Rank(q float64, n uint64) uint64 {
	if n == 0 {
		return 0
	}
	if !(q > 0) {
		return 1
	}
	if q >= 1 {
		return n
	}
	r := math.Ceil(q * float64(n))
	if r < 1 {
		return 1
	}
	if r >= float64(n) {
		return n
	}
	return uint64(r)
}

// Quantile estimates the q-quantile. The true q-quantile x is the k-th smallest
// recorded value (negatives as 0), k = Rank(q, Count()), i.e. sorted[ceil(q*n)-1].
// Quantile returns the midpoint (rounded down) of the intersection of the ranges known
// to hold x: x's log-linear bucket, x's band bucket if x < BandMax, and [Min, Max].
// Hence, with b = SubBucketBits, if x <= MaxValue:
//
//	|v - x| * 2^(b+1) <= x     always, so |v - x| <= x*RelErr()/2;
//	2 * |v - x| <= BandStep    also, when x < BandMax;
//	v == x                     when x < 2^(b+1), k == 1 (v = Min) or k == n (v = Max).
//
// If x > MaxValue (an overflowed rank), v is in [lower bound of MaxValue's bucket, Max]
// with no relative bound. Empty histogram: 0. Deterministic, no allocation,
// O(number of buckets).
func (h *Histogram) Quantile(q float64) int64 {
	k := Rank(q, h.count)
	switch {
	case k == 0:
		return 0
	case k == 1:
		return h.min
	case k == h.count:
		return h.max
	}
	lo, hi := h.min, h.max
	var cum uint64
	for i, c := range h.counts {
		if cum += c; cum >= k {
			blo, bhi := h.bounds(i)
			if i == len(h.counts)-1 {
				bhi = math.MaxInt64 // holds the clamped overflow
			}
			lo, hi = max(lo, blo), min(hi, bhi)
			break
		}
	}
	cum = 0
	for i, c := range h.band {
		if cum += c; cum >= k {
			blo := int64(i) * h.bandStep
			lo, hi = max(lo, blo), min(hi, blo+h.bandStep-1)
			break
		}
	}
	return lo + (hi-lo)/2
}

// ErrConfigMismatch is returned by Merge for histograms with different Configs.
var ErrConfigMismatch = errors.New("hist: merge of histograms with different Configs")

// Merge adds o's values to h, as if every value recorded in o had been recorded in h.
// o must have the same Config; o is unchanged (h == o doubles h). No allocation.
func (h *Histogram) Merge(o *Histogram) error {
	if o == nil {
		return errors.New("hist: merge of nil histogram")
	}
	if h.cfg != o.cfg {
		return fmt.Errorf("%w: %+v vs %+v", ErrConfigMismatch, h.cfg, o.cfg)
	}
	if o.count == 0 {
		return nil
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	for i, c := range o.band {
		h.band[i] += c
	}
	h.straddleHi += o.straddleHi
	h.count += o.count
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
	h.overflow += o.overflow
	return nil
}

// Reset empties h, keeping its storage.
func (h *Histogram) Reset() {
	clear(h.counts)
	clear(h.band)
	h.straddleHi, h.count, h.sum, h.overflow = 0, 0, 0, 0
	h.min, h.max = math.MaxInt64, 0
}

// Buckets calls fn once per bucket of a fixed partition of [0, MaxValue] (the layout
// depends only on the Config; empty buckets included), in strictly increasing upper.
// upper is inclusive and count is per bucket, not cumulative: count values v, as
// recorded (negatives as 0, overflow as MaxValue), with previous upper < v <= upper
// (0 <= v for the first). Summing counts in order gives Prometheus-style cumulative
// "le" buckets; the last upper is MaxValue and the counts total Count().
//
// With a band, the partition is the band's buckets over [0, BandMax), then the
// log-linear buckets' parts at or above BandMax; without, the log-linear buckets.
func (h *Histogram) Buckets(fn func(upper int64, count uint64)) {
	first := 0
	for k, c := range h.band {
		fn(int64(k+1)*h.bandStep-1, c)
	}
	if h.straddle >= 0 {
		_, hi := h.bounds(h.straddle) // hi >= BandMax: the bucket contains BandMax
		fn(min(hi, h.maxValue), h.straddleHi)
		first = h.straddle + 1
	}
	for i := first; i < len(h.counts); i++ {
		_, hi := h.bounds(i)
		fn(min(hi, h.maxValue), h.counts[i])
	}
}
