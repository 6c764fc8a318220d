package qos

import "fmt"

// Limits are a volume's provisioned figures.
type Limits struct {
	IOPS         int64 // provisioned (baseline) operations per second, > 0
	BurstIOPS    int64 // highest admitted rate, >= IOPS
	BurstCredits int64 // burst bucket size in operations, >= 0, starts full (0: no burst)
	BytesPerSec  int64 // throughput limit in bytes/s; 0 = unlimited
}

// Validate reports the first figure that is out of range. Every figure is at most
// 2^40, which keeps the fixed-point arithmetic far from overflow.
func (l Limits) Validate() error {
	switch {
	case l.IOPS <= 0:
		return fmt.Errorf("qos: limits: IOPS must be > 0, got %d", l.IOPS)
	case l.IOPS > maxFigure:
		return fmt.Errorf("qos: limits: IOPS must be <= %d, got %d", int64(maxFigure), l.IOPS)
	case l.BurstIOPS < l.IOPS:
		return fmt.Errorf("qos: limits: BurstIOPS must be >= IOPS (%d), got %d", l.IOPS, l.BurstIOPS)
	case l.BurstIOPS > maxFigure:
		return fmt.Errorf("qos: limits: BurstIOPS must be <= %d, got %d", int64(maxFigure), l.BurstIOPS)
	case l.BurstCredits < 0:
		return fmt.Errorf("qos: limits: BurstCredits must be >= 0, got %d", l.BurstCredits)
	case l.BurstCredits > maxFigure:
		return fmt.Errorf("qos: limits: BurstCredits must be <= %d, got %d", int64(maxFigure), l.BurstCredits)
	case l.BytesPerSec < 0:
		return fmt.Errorf("qos: limits: BytesPerSec must be >= 0 (0 = unlimited), got %d", l.BytesPerSec)
	case l.BytesPerSec > maxFigure:
		return fmt.Errorf("qos: limits: BytesPerSec must be <= %d, got %d", int64(maxFigure), l.BytesPerSec)
	}
	return nil
}

// CloudDiskLimits returns the well-known burstable-disk vectors for a volume of sizeGiB:
// 3 IOPS per GiB (at least 100), bursts to 3,000 IOPS (or the baseline if higher),
// 5.4 million credits (30 minutes at 3,000 IOPS), no throughput limit.
func CloudDiskLimits(sizeGiB int64) Limits {
	base := max(100, 3*sizeGiB)
	return Limits{IOPS: base, BurstIOPS: max(3000, base), BurstCredits: 5_400_000}
}

// Grant is Admit's decision on one operation.
type Grant uint8

const (
	// Denied: not admitted now; the caller queues the request and retries later.
	Denied Grant = iota
	// Guaranteed: within the provisioned rate: admitted whatever the node's load.
	Guaranteed
	// Burst: above the provisioned rate, paid with burst credits and global tokens.
	Burst
	// Lent: like Burst, but charged at a discount because the node had headroom.
	Lent
)

// String names the grant.
func (g Grant) String() string {
	switch g {
	case Denied:
		return "denied"
	case Guaranteed:
		return "guaranteed"
	case Burst:
		return "burst"
	case Lent:
		return "lent"
	}
	return fmt.Sprintf("Grant(%d)", uint8(g))
}

// maxOpBytes bounds the bytes one operation is charged (larger figures are charged as
// this much), so that the byte bucket's debt stays within int64 micro-tokens.
const maxOpBytes = maxFigure

// Volume is one volume's I/O admission, in the style of a burstable cloud disk.
//
// It keeps four buckets, all in exact fixed point:
//
//   - baseline: refills at IOPS, capacity max(1, IOPS/20), starts full. An operation
//     that finds a token here is Guaranteed: it is within the provisioned rate and is
//     admitted whatever the node's load.
//   - rate: refills at BurstIOPS, capacity max(1, BurstIOPS/20), starts full. Every
//     operation needs a token here: it caps the admitted rate at BurstIOPS.
//   - credits: refills at IOPS, capacity BurstCredits, starts full. Every admitted
//     operation is charged here: one credit, or DiscountPermille/1000 of a credit for a
//     Lent one. A volume running at its baseline neither gains nor loses credits; one
//     running below accumulates them; one running above drains them at the difference,
//     and a saturating volume bursts for BurstCredits/(BurstIOPS-IOPS) seconds.
//   - bytes (only when BytesPerSec > 0): refills at BytesPerSec, capacity
//     max(1, BytesPerSec/20). An operation is admitted while the level is positive and
//     is charged its bytes, so a large operation may take the level into debt and the
//     volume repays it before its next operation.
//
// The small capacities (1/20 s of the rate) keep the admitted rate close to the entitled
// rate over every window of a few seconds: a window of 10 s sees at most 1/200 of extra
// tokens from a full bucket.
//
// A guaranteed operation always charges its credit, even when fewer than one credit is
// left: the credit bucket may go into a small debt (at most the baseline capacity plus
// one token, see creditFloor). That keeps the accounting exact: with no discount, every
// admitted operation costs exactly one credit, so a volume never gets more than
// IOPS·t + BurstCredits + baseline capacity + 1 operations in t seconds. (Charging a
// guaranteed operation only when a whole credit is available would let a saturating
// volume whose credits are exhausted alternate a guaranteed operation at each baseline
// token with a burst operation at each credit, running at twice its baseline.)
//
// The debt bound holds because the volume keeps credits >= baseline - baseline capacity
// (both refill at IOPS in lockstep; a guaranteed operation takes one of each; a burst
// operation needs a whole credit and leaves credits >= 0; a capped credit bucket holds
// credits >= 0), so a guaranteed operation, which needs a baseline token, leaves credits
// >= -baseline capacity. SetLimits restores the relation if a limit change broke it.
type Volume struct {
	lim      Limits
	baseline Bucket
	rate     Bucket
	credits  Bucket
	bytes    Bucket // used only when lim.BytesPerSec > 0
	last     int64  // latest now seen
}

// smallCapacity is the capacity of the baseline, rate and byte buckets: 1/20 s of rate.
func smallCapacity(rate int64) int64 { return max(1, rate/20) }

// NewVolume builds a volume's buckets at now, all full.
func NewVolume(l Limits, now int64) (*Volume, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	v := &Volume{
		lim:      l,
		baseline: makeBucket(l.IOPS, smallCapacity(l.IOPS), now),
		rate:     makeBucket(l.BurstIOPS, smallCapacity(l.BurstIOPS), now),
		credits:  makeBucket(l.IOPS, l.BurstCredits, now),
		last:     now,
	}
	if l.BytesPerSec > 0 {
		v.bytes = makeBucket(l.BytesPerSec, smallCapacity(l.BytesPerSec), now)
	}
	return v, nil
}

// creditFloor is the lowest the credit bucket may go (micro-tokens): the debt a
// guaranteed operation may leave, see Volume.
func (v *Volume) creditFloor() int64 { return -(v.baseline.capacity + scale) }

// clock advances the volume's notion of now and returns it (time never goes back).
func (v *Volume) clock(now int64) int64 {
	if now > v.last {
		v.last = now
	}
	return v.last
}

// Limits returns the current limits.
func (v *Volume) Limits() Limits { return v.lim }

// SetLimits changes the limits live at now. What accrued before now accrued at the old
// rates; the credit balance is kept (clamped to the new BurstCredits; the small debt
// guaranteed operations may leave is kept down to minus the new baseline capacity), and
// so are the other levels (clamped to their new capacities). Turning a byte limit on
// starts its bucket full.
func (v *Volume) SetLimits(now int64, l Limits) error {
	if err := l.Validate(); err != nil {
		return err
	}
	now = v.clock(now)
	old := v.lim
	v.baseline.SetRate(now, l.IOPS)
	v.baseline.SetCapacity(now, smallCapacity(l.IOPS))
	v.rate.SetRate(now, l.BurstIOPS)
	v.rate.SetCapacity(now, smallCapacity(l.BurstIOPS))
	v.credits.SetRate(now, l.IOPS)
	v.credits.SetCapacity(now, l.BurstCredits)
	switch {
	case l.BytesPerSec == 0:
		v.bytes = Bucket{}
	case old.BytesPerSec == 0:
		v.bytes = makeBucket(l.BytesPerSec, smallCapacity(l.BytesPerSec), now)
	default:
		v.bytes.SetRate(now, l.BytesPerSec)
		v.bytes.SetCapacity(now, smallCapacity(l.BytesPerSec))
	}
	v.lim = l
	// A debt deeper than the new baseline capacity is forgiven: it is the old baseline's
	// burst, already served, and repaying it at a lower rate would stall the volume for
	// up to (old IOPS/20)/(new IOPS) seconds after a cut.
	v.credits.SetLevel(now, v.credits.level, -v.baseline.capacity)
	v.restoreCreditRelation()
	return nil
}

// restoreCreditRelation re-establishes credits >= baseline - baseline capacity (see
// Volume) by withholding baseline tokens, which can only admit less.
func (v *Volume) restoreCreditRelation() {
	if lim := v.credits.level + v.baseline.capacity; v.baseline.level > lim {
		v.baseline.level = lim
	}
}

// Admit decides one operation of bytes bytes at now. g is the node-wide bucket; it may
// be nil (no node-wide bucket: burst operations need only credits).
//
// In order:
//  1. with a byte limit, a level <= 0 (a previous operation's debt) denies;
//  2. the rate bucket must have a token, else denied;
//  3. a baseline token makes the operation Guaranteed: it takes the baseline and rate
//     tokens, charges one credit (possibly into the bounded debt, see Volume) and
//     force-charges one token to g, which may go into debt down to minus its capacity:
//     a guaranteed operation is never refused because of the node;
//  4. otherwise it is a burst: it needs g == nil or a whole token in g, and credits for
//     its charge: one credit, or DiscountPermille/1000 of one when g has headroom (then
//     it is Lent, else Burst). It takes the rate token, the charge and one token of g.
//  5. an admitted operation is charged its bytes (negative counts as 0, more than 2^40 as
//     2^40).
//
// Nothing is taken when the operation is Denied.
func (v *Volume) Admit(now, bytes int64, g *Global) Grant {
	now = v.clock(now)
	if v.lim.BytesPerSec > 0 {
		v.bytes.refill(now)
		if v.bytes.level <= 0 {
			return Denied
		}
	}
	v.rate.refill(now)
	if v.rate.level < scale {
		return Denied
	}
	v.baseline.refill(now)
	v.credits.refill(now)
	grant := Guaranteed
	if v.baseline.level >= scale {
		v.baseline.level -= scale
		v.credits.force(scale, v.creditFloor())
		if g != nil {
			g.charge(now)
		}
	} else {
		cost := int64(scale)
		grant = Burst
		if g != nil {
			if d := g.cfg.DiscountPermille; d < 1000 && g.Headroom(now) {
				cost, grant = d*(scale/1000), Lent
			}
		}
		// Credits first: a volume out of credits is limited by itself, not by the node,
		// and must not count as demand the node's bucket turned away.
		if v.credits.level < cost {
			return Denied
		}
		if g != nil && !g.hasToken(now) {
			return Denied
		}
		v.credits.level -= cost
		if g != nil {
			g.take(now)
		}
	}
	v.rate.level -= scale
	if v.lim.BytesPerSec > 0 {
		v.bytes.level -= min(max(bytes, 0), maxOpBytes) * scale
	}
	return grant
}

// Credits returns the whole burst credits at now (0 while the balance is in the small
// debt a guaranteed operation may leave).
func (v *Volume) Credits(now int64) int64 {
	now = v.clock(now)
	return max(0, v.credits.Tokens(now))
}

// SetCredits adopts a credit balance at now (a new primary continues the old one's),
// clamped to [0, BurstCredits].
func (v *Volume) SetCredits(now, credits int64) {
	now = v.clock(now)
	c := min(max(credits, 0), v.lim.BurstCredits)
	v.credits.SetLevel(now, c*scale, 0)
	v.restoreCreditRelation()
}
