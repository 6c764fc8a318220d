// Package qos holds the core's admission control: integer token buckets driven by the
// node's own clock (nanoseconds), in fixed point. It is part of the deterministic core:
// no clock, no floats in admission or in the rate controller, no goroutines, no maps.
//
// The pieces:
//
//   - Bucket (this file): an exact fixed-point token bucket whose level may go into
//     bounded debt.
//   - Volume (volume.go): one volume's admission against its provisioned Limits, in the
//     style of a burstable cloud disk (baseline, burst rate, burst credits, throughput).
//   - Global (global.go): the node-wide bucket that burst operations also pay, with an
//     adaptive fill rate steered by the node's observed latency and queue depth.
package qos

import (
	"fmt"
	"math"
	"math/bits"
)

// scale is the fixed-point unit: one token is scale micro-tokens.
const scale = 1_000_000

// MicroPerToken is the number of micro-tokens in one token (the fixed-point unit of
// Level, TakeMicro and ForceMicro).
const MicroPerToken = scale

// maxFigure bounds every rate and capacity (in tokens), so that micro-token arithmetic
// (up to 2·2^40·10^6 < 2^62) never overflows an int64.
const maxFigure = 1 << 40

// Bucket is a token bucket: it refills at Rate tokens per second up to Capacity tokens.
// Tokens are kept in micro-tokens so fractional refills are never lost, and the refill
// remainder is carried from call to call, so the tokens accrued between any two instants
// are exact (floor of rate·Δt) however the interval is cut up.
//
// The level may be negative (debt) after a forced take (ForceMicro); a bucket in debt
// refills normally and grants nothing until it is positive again.
type Bucket struct {
	rate     int64 // tokens per second, in [0, maxFigure]
	capacity int64 // micro-tokens, in [0, maxFigure·scale]
	level    int64 // micro-tokens; <= capacity; negative is debt
	last     int64 // time of the last refill (ns)
	carry    int64 // refill remainder in 1/1000 micro-token (rate·ns = 10^-9 tokens), in [0, 1000)
}

// NewBucket returns a bucket with rate tokens/s, capacity tokens, starting with start
// tokens at time now.
func NewBucket(rate, capacity, start, now int64) (*Bucket, error) {
	if rate < 0 || capacity <= 0 || start < 0 || start > capacity {
		return nil, fmt.Errorf("qos: bad bucket (rate %d, capacity %d, start %d)", rate, capacity, start)
	}
	if capacity > maxFigure || rate > maxFigure {
		return nil, fmt.Errorf("qos: bucket too large (rate %d, capacity %d; at most %d)", rate, capacity, int64(maxFigure))
	}
	b := makeBucket(rate, capacity, now)
	b.level = start * scale
	return &b, nil
}

// makeBucket returns a full bucket. Callers have validated rate and capacity (a zero
// capacity is allowed here: such a bucket never holds a token).
func makeBucket(rate, capacity, now int64) Bucket {
	return Bucket{rate: rate, capacity: capacity * scale, level: capacity * scale, last: now}
}

// refill adds what accrued since the last call. Time never runs backwards here: an
// earlier now is ignored (the bucket stays at its later instant).
func (b *Bucket) refill(now int64) {
	if now <= b.last {
		return
	}
	dt := uint64(now - b.last)
	b.last = now
	if b.level >= b.capacity {
		b.carry = 0
		return
	}
	// micro-tokens accrued = rate·scale·dt/10^9 = rate·dt/1000, with remainder. rate·dt
	// can exceed 64 bits after a long idle period, so compute it in 128 bits.
	hi, lo := bits.Mul64(uint64(b.rate), dt)
	var c uint64
	lo, c = bits.Add64(lo, uint64(b.carry), 0)
	hi += c
	need := uint64(b.capacity - b.level) // > 0, < 2^62
	if hi >= 1000 {                      // the quotient does not even fit 64 bits
		b.level, b.carry = b.capacity, 0
		return
	}
	add, rem := bits.Div64(hi, lo, 1000)
	if add >= need {
		b.level, b.carry = b.capacity, 0
		return
	}
	b.level += int64(add)
	b.carry = int64(rem)
}

// floorDiv is a/scale rounded towards minus infinity (whole tokens of a debt count
// as owed tokens: -0.5 tokens is -1 whole token).
func floorDiv(a int64) int64 {
	q := a / scale
	if a%scale < 0 {
		q--
	}
	return q
}

// Tokens returns the whole tokens available at now (negative while in debt).
func (b *Bucket) Tokens(now int64) int64 {
	b.refill(now)
	return floorDiv(b.level)
}

// Level returns the level at now in micro-tokens (negative while in debt).
func (b *Bucket) Level(now int64) int64 {
	b.refill(now)
	return b.level
}

// Take removes n tokens at now if they are there, and reports whether it did.
func (b *Bucket) Take(now, n int64) bool {
	if n < 0 || n > maxFigure {
		return false
	}
	return b.TakeMicro(now, n*scale)
}

// TakeMicro removes micro micro-tokens at now if they are there, and reports whether
// it did.
func (b *Bucket) TakeMicro(now, micro int64) bool {
	b.refill(now)
	if micro < 0 || b.level < micro {
		return false
	}
	b.level -= micro
	return true
}

// ForceMicro removes micro micro-tokens at now whatever the level, letting it go into
// debt, but not below floor (micro-tokens, normally <= 0): what would go below the floor
// is forgiven. A level already below the floor is left as it is (a forced take never
// raises the level).
func (b *Bucket) ForceMicro(now, micro, floor int64) {
	b.refill(now)
	b.force(micro, floor)
}

func (b *Bucket) force(micro, floor int64) {
	if micro <= 0 {
		return
	}
	nl := b.level - micro
	if nl < floor {
		nl = min(floor, b.level)
	}
	b.level = nl
}

// SetRate changes the refill rate from now on (what accrued so far is kept). A rate
// outside [0, 2^40] is ignored.
func (b *Bucket) SetRate(now, rate int64) {
	b.refill(now)
	if rate >= 0 && rate <= maxFigure {
		b.rate = rate
	}
}

// SetCapacity changes the capacity (tokens) from now on: what accrued so far is kept,
// and the level is clamped to the new capacity (a debt is kept). A capacity outside
// [0, 2^40] is ignored.
func (b *Bucket) SetCapacity(now, capacity int64) {
	b.refill(now)
	if capacity < 0 || capacity > maxFigure {
		return
	}
	b.capacity = capacity * scale
	if b.level >= b.capacity {
		b.level, b.carry = b.capacity, 0
	}
}

// SetLevel sets the level at now to micro micro-tokens, clamped to [floor, capacity].
func (b *Bucket) SetLevel(now, micro, floor int64) {
	b.refill(now)
	b.level = min(max(micro, floor), b.capacity)
	if b.level == b.capacity {
		b.carry = 0
	}
}

// Rate is the refill rate in tokens per second.
func (b *Bucket) Rate() int64 { return b.rate }

// Capacity is the capacity in whole tokens.
func (b *Bucket) Capacity() int64 { return b.capacity / scale }

// mulDiv returns a·b/c rounded down, for a, b >= 0 and c > 0, without intermediate
// overflow; a result that does not fit an int64 saturates at MaxInt64.
func mulDiv(a, b, c int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi >= uint64(c) {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, uint64(c))
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}
