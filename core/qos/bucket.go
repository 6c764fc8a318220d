// Package qos holds the core's admission control: integer token buckets driven by the
// node's own clock (nanoseconds), in fixed point. It is part of the deterministic core:
// no clock, no floats in admission, no goroutines.
package qos

import "fmt"

// scale is the fixed-point unit: one token is scale micro-tokens.
const scale = 1_000_000

// Bucket is a token bucket: it refills at Rate tokens per second up to Capacity tokens.
// Tokens are kept in micro-tokens so fractional refills are never lost.
type Bucket struct {
	rate     int64 // tokens per second
	capacity int64 // micro-tokens
	level    int64 // micro-tokens
	last     int64 // time of the last refill (ns)
	carry    int64 // refill remainder (micro-token·ns), so slow rates do not lose time
}

// NewBucket returns a bucket with rate tokens/s, capacity tokens, starting with start
// tokens at time now.
func NewBucket(rate, capacity, start, now int64) (*Bucket, error) {
	if rate < 0 || capacity <= 0 || start < 0 || start > capacity {
		return nil, fmt.Errorf("qos: bad bucket (rate %d, capacity %d, start %d)", rate, capacity, start)
	}
	if capacity > 1<<40 || rate > 1<<40 {
		return nil, fmt.Errorf("qos: bucket too large (rate %d, capacity %d)", rate, capacity)
	}
	return &Bucket{rate: rate, capacity: capacity * scale, level: start * scale, last: now}, nil
}

// refill adds what accrued since the last call (time never runs backwards here).
func (b *Bucket) refill(now int64) {
	if now <= b.last {
		return
	}
	dt := now - b.last
	b.last = now
	if b.level >= b.capacity {
		b.carry = 0
		return
	}
	// micro-tokens accrued = rate * scale * dt / 1e9 = rate * dt / 1000, with remainder.
	num := b.rate*dt + b.carry
	add := num / 1000
	b.carry = num % 1000
	if add >= b.capacity-b.level {
		b.level, b.carry = b.capacity, 0
		return
	}
	b.level += add
}

// Tokens returns the whole tokens available at now.
func (b *Bucket) Tokens(now int64) int64 {
	b.refill(now)
	return b.level / scale
}

// Take removes n tokens at now if they are there, and reports whether it did.
func (b *Bucket) Take(now, n int64) bool {
	b.refill(now)
	if n < 0 || b.level < n*scale {
		return false
	}
	b.level -= n * scale
	return true
}

// SetRate changes the refill rate from now on (what accrued so far is kept).
func (b *Bucket) SetRate(now, rate int64) {
	b.refill(now)
	if rate >= 0 && rate <= 1<<40 {
		b.rate = rate
	}
}

// Rate is the refill rate in tokens per second.
func (b *Bucket) Rate() int64 { return b.rate }

// Volume is a volume's I/O admission in the style of a burstable cloud disk: a rate
// bucket caps operations at the burst rate, and a credit bucket, refilled at the
// baseline rate and starting full, pays for every operation. Below baseline credits
// accumulate; above it they drain, so a volume bursts for credits / (burst - baseline)
// seconds and then runs at its baseline.
type Volume struct {
	rate    *Bucket // burst rate, one second's worth of capacity
	credits *Bucket // baseline refill, burst-credit capacity
}

// VolumeLimits are a volume's provisioned figures.
type VolumeLimits struct {
	BaselineIOPS int64 // refill of the credit bucket
	BurstIOPS    int64 // highest admitted rate (>= baseline)
	BurstCredits int64 // credit bucket size; starts full
}

// CloudDiskLimits returns the well-known burstable-disk vectors for a volume of sizeGiB:
// 3 IOPS per GiB (at least 100), bursts to 3,000 IOPS, 5.4 million credits.
func CloudDiskLimits(sizeGiB int64) VolumeLimits {
	base := max(100, 3*sizeGiB)
	return VolumeLimits{BaselineIOPS: base, BurstIOPS: max(3000, base), BurstCredits: 5_400_000}
}

// NewVolume builds a volume's buckets at now.
func NewVolume(l VolumeLimits, now int64) (*Volume, error) {
	if l.BaselineIOPS <= 0 || l.BurstIOPS < l.BaselineIOPS || l.BurstCredits < 1 {
		return nil, fmt.Errorf("qos: bad limits %+v", l)
	}
	r, err := NewBucket(l.BurstIOPS, l.BurstIOPS, l.BurstIOPS, now)
	if err != nil {
		return nil, err
	}
	c, err := NewBucket(l.BaselineIOPS, l.BurstCredits, l.BurstCredits, now)
	if err != nil {
		return nil, err
	}
	return &Volume{rate: r, credits: c}, nil
}

// Admit takes one operation's tokens at now if both buckets have them.
func (v *Volume) Admit(now int64) bool {
	if v.rate.Tokens(now) < 1 || v.credits.Tokens(now) < 1 {
		return false
	}
	return v.rate.Take(now, 1) && v.credits.Take(now, 1)
}

// Credits is the burst credit balance at now.
func (v *Volume) Credits(now int64) int64 { return v.credits.Tokens(now) }
