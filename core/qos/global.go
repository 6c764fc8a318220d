package qos

import "fmt"

// GlobalConfig configures the node-wide bucket and its rate controller.
type GlobalConfig struct {
	InitialRate, MinRate, MaxRate int64 // node-wide ops/s; 0 < MinRate <= InitialRate <= MaxRate
	TargetLatency                 int64 // ns: raise the rate while the smoothed latency stays under this
	MaxQueue                      int   // cut the rate while the observed queue depth exceeds this
	Interval                      int64 // ns between rate adjustments (e.g. 100 ms)
	// DiscountPermille, in 1..1000, is a burst operation's charge against its volume's
	// credits, in thousandths of a credit, while the global bucket has headroom
	// (1000 = no discount, i.e. opportunism off).
	DiscountPermille int64
}

// DefaultGlobalConfig returns a configuration for a node of a few tens of thousands of
// operations per second.
func DefaultGlobalConfig() GlobalConfig {
	return GlobalConfig{
		InitialRate:      20_000,
		MinRate:          1_000,
		MaxRate:          1_000_000,
		TargetLatency:    5_000_000, // 5 ms
		MaxQueue:         256,
		Interval:         100_000_000, // 100 ms
		DiscountPermille: 500,
	}
}

// maxLatency bounds latencies (Observe) and TargetLatency, in ns (about 18 minutes).
const maxLatency = 1 << 40

// maxInterval bounds Interval (ns, about 13 days).
const maxInterval = 1 << 50

// second is one second in ns.
const second int64 = 1_000_000_000

// Validate reports the first field that is out of range.
func (c GlobalConfig) Validate() error {
	switch {
	case c.MinRate <= 0:
		return fmt.Errorf("qos: global config: MinRate must be > 0, got %d", c.MinRate)
	case c.InitialRate < c.MinRate:
		return fmt.Errorf("qos: global config: InitialRate must be >= MinRate (%d), got %d", c.MinRate, c.InitialRate)
	case c.MaxRate < c.InitialRate:
		return fmt.Errorf("qos: global config: MaxRate must be >= InitialRate (%d), got %d", c.InitialRate, c.MaxRate)
	case c.MaxRate > maxFigure:
		return fmt.Errorf("qos: global config: MaxRate must be <= %d, got %d", int64(maxFigure), c.MaxRate)
	case c.TargetLatency <= 0:
		return fmt.Errorf("qos: global config: TargetLatency must be > 0 ns, got %d", c.TargetLatency)
	case c.TargetLatency > maxLatency:
		return fmt.Errorf("qos: global config: TargetLatency must be <= %d ns, got %d", int64(maxLatency), c.TargetLatency)
	case c.MaxQueue <= 0:
		return fmt.Errorf("qos: global config: MaxQueue must be > 0, got %d", c.MaxQueue)
	case c.Interval <= 0:
		return fmt.Errorf("qos: global config: Interval must be > 0 ns, got %d", c.Interval)
	case c.Interval > maxInterval:
		return fmt.Errorf("qos: global config: Interval must be <= %d ns, got %d", int64(maxInterval), c.Interval)
	case c.DiscountPermille < 1 || c.DiscountPermille > 1000:
		return fmt.Errorf("qos: global config: DiscountPermille must be in 1..1000, got %d", c.DiscountPermille)
	}
	return nil
}

// ewmaShift is the fixed-point shift of the latency EWMA (ns·2^ewmaShift).
const ewmaShift = 8

// Controller constants (see Global).
const (
	maxEscalation = 20 // cap on the drain escalation shift
	probeDelay    = 8  // intervals probing above the knee before the probe starts doubling
	maxProbeShift = 20 // cap on the probe doubling shift
)

// Global is the node-wide bucket that every operation the node admits is charged to,
// and whose adaptive fill rate stands for what the node can serve.
//
// Guaranteed operations are force-charged (the level may go into debt, down to minus
// the capacity) and never refused; burst operations need a whole token. So the node
// serves every volume's provisioned rate first and lends what it has left to bursts.
//
// The bucket refills at Rate() with capacity max(1, Rate/10) (100 ms worth). Once per
// Interval, Tick adjusts the rate from what the node observed during the interval: the
// latencies fed to Observe (their mean m and their count n, i.e. the served rate
// s = n/elapsed), the highest queue depth passed to Tick, and whether the bucket ran dry
// (a burst operation was refused for want of a token, or the level reached zero: demand
// was limited by the node bucket). An EWMA e with alpha 1/4 per interval follows the
// interval means (an interval without samples leaves it as it is; the first interval
// with samples initializes it). With L = max(e, m), T the target latency:
//
//   - Decrease, when the interval's mean m exceeds T. The new rate is the largest
//     (mildest) of four candidates, but never above the current rate: the proportional
//     cut rate·T/L (the rate the node would serve at the target if latency were
//     proportional to load); the drain rate s·(1 - 2^k·(m-T)/elapsed), which removes
//     the excess queue (m-T)·s in about an interval and is anchored on what the node
//     just served rather than on what it was allowed; s·7/8 (a cut never goes further
//     than 1/8 below what the node showed it can serve); and rate/2 (at most a halving
//     per interval). k counts the consecutive intervals of decrease (0 at the first):
//     while the latency does not come down the drain term doubles its strength, so the
//     proportional cut (down to s·7/8 per interval) takes over. The served rate s is
//     remembered as the knee, the rate at which the node saturated.
//   - Hold, when e still exceeds T but m does not: the cut already made is taking
//     effect, and the EWMA is catching up; cutting again would compound it.
//   - Increase, when L <= T and the bucket ran dry: the proportional raise
//     rate·(T-L)/T/8, at least 1 and at most rate/10 (10%) per interval, up to the knee.
//     Above the knee the node is probing for more capacity than it had, and the raise
//     is the one whose extra queue, rate·(T-L)/(elapsed+2T)·elapsed ops, stays within
//     the latency slack: it cannot overshoot the target by much. After probeDelay such
//     intervals without a decrease (the capacity really has grown) the probe doubles
//     each interval, still capped at 10%. Without demand the rate stays where it is, so
//     an idle node does not ratchet its rate up to MaxRate.
//   - If the highest queue depth in the interval exceeds MaxQueue, the rate is cut by at
//     least 1/8 whatever the latency says.
//   - The rate is clamped to [MinRate, MaxRate]; a rate change keeps the bucket's level
//     (clamped to within ± the new capacity).
//
// Why not just the proportional rule on the EWMA: a node whose latency stays flat until
// it saturates (an open queue: no latency signal below capacity, a queue growing by
// (rate-capacity)·Interval above it) turns any rate error into a latency excursion far
// above the target within one interval; the EWMA then stays above the target for several
// intervals while the queue is long gone, and the compounded proportional cuts (each up
// to a half) followed by 10% raises back into the cliff make a sawtooth worse than AIMD's
// (TestControllerCliffNode's node, 20,000 ops/s polled every 0.1 ms, then averages a
// third of its capacity with a standard deviation over 80% of the mean). Anchoring the
// cuts on the served rate and the raises on the knee keeps that node within half a
// percent of its capacity with its latency near the target, and still settles a node
// whose latency grows with load where its latency is the target
// (TestControllerLoadProportionalNode).
//
// The controller assumes Interval is much longer than TargetLatency (the default is
// 20×): latencies are reported at completion, so a target close to the interval delays
// the feedback by most of an interval and the rate oscillates.
type Global struct {
	cfg     GlobalConfig
	b       Bucket
	last    int64 // latest now seen
	lastAdj int64 // time of the last rate adjustment (or NewGlobal's now)
	next    int64 // time of the next rate adjustment (a grid of Interval from NewGlobal's now)

	// this interval's observations
	sum      int64 // sum of latencies (ns), saturating
	n        int64 // number of latencies
	maxDepth int   // highest queue depth passed to Tick
	dry      bool  // demand was limited by the bucket

	ewma    int64 // smoothed latency, ns << ewmaShift
	hasEWMA bool

	knee     int64 // served rate (ops/s) when the node last saturated; 0: not yet
	escalate int64 // consecutive intervals of decrease
	probing  int64 // consecutive raises above the knee
}

// NewGlobal returns a node bucket at InitialRate, full, at now.
func NewGlobal(c GlobalConfig, now int64) (*Global, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &Global{
		cfg:     c,
		b:       makeBucket(c.InitialRate, globalCapacity(c.InitialRate), now),
		last:    now,
		lastAdj: now,
		next:    now + c.Interval,
	}, nil
}

// globalCapacity is the node bucket's capacity at rate: 1/10 s worth.
func globalCapacity(rate int64) int64 { return max(1, rate/10) }

func (g *Global) clock(now int64) int64 {
	if now > g.last {
		g.last = now
	}
	return g.last
}

// charge force-takes one token for a guaranteed operation (see Global).
func (g *Global) charge(now int64) {
	g.b.refill(g.clock(now))
	g.b.force(scale, -g.b.capacity)
	if g.b.level <= 0 {
		g.dry = true
	}
}

// hasToken reports whether a burst operation may be admitted (one whole token), and
// records a refusal as demand the bucket limited.
func (g *Global) hasToken(now int64) bool {
	g.b.refill(g.clock(now))
	if g.b.level < scale {
		g.dry = true
		return false
	}
	return true
}

// take takes the token hasToken found.
func (g *Global) take(now int64) {
	g.b.refill(g.clock(now))
	g.b.level -= scale
	if g.b.level <= 0 {
		g.dry = true
	}
}

// Observe records one completed operation's service latency (ns). Negative latencies
// count as 0, latencies above 2^40 ns as 2^40.
func (g *Global) Observe(latency int64) {
	l := min(max(latency, 0), maxLatency)
	if g.sum <= 1<<62-l { // saturate rather than overflow if Tick is starved
		g.sum += l
		g.n++
	}
}

// Tick adjusts the rate once per Interval (see Global). Call it often (e.g. at every
// node step) with the node's current queue depth; calls between adjustments only record
// the depth. After a gap of several intervals the rate is adjusted once, from what was
// observed over the whole gap.
func (g *Global) Tick(now int64, queueDepth int) {
	now = g.clock(now)
	g.maxDepth = max(g.maxDepth, queueDepth)
	if now < g.next {
		return
	}
	g.next += g.cfg.Interval * ((now-g.next)/g.cfg.Interval + 1)
	elapsed := min(max(now-g.lastAdj, 1), 1<<60) // a long gap: no overflow below
	g.lastAdj = now

	var mean int64 // this interval's mean latency, ns (valid when g.n > 0)
	if g.n > 0 {
		mean = g.sum / g.n
		if g.hasEWMA {
			g.ewma += (mean<<ewmaShift - g.ewma) / 4
		} else {
			g.ewma, g.hasEWMA = mean<<ewmaShift, true
		}
	}
	g.b.refill(now)
	if g.b.level <= 0 {
		g.dry = true
	}
	g.setRate(now, g.nextRate(mean, elapsed))
	g.sum, g.n, g.maxDepth, g.dry = 0, 0, 0, false
}

// nextRate is the controller's decision at the end of an interval (see Global).
func (g *Global) nextRate(mean, elapsed int64) int64 {
	rate, target, e := g.b.rate, g.cfg.TargetLatency, g.LatencyEWMA()
	l := e
	if g.n > 0 {
		l = max(l, mean)
	}
	served := mulDiv(g.n, second, elapsed)
	next := rate
	switch {
	case g.n > 0 && mean > target: // decrease
		excess := (mean - target) << g.escalate // < 2^40 << 20: no overflow
		drain := served - mulDiv(served, min(excess, elapsed), elapsed)
		prop := mulDiv(rate, target, l)
		next = min(rate, max(rate/2, served-served/8, drain, prop))
		g.knee = served
		g.escalate = min(g.escalate+1, maxEscalation)
		g.probing = 0
	case e > target: // hold
		g.escalate = 0
	case g.dry: // increase
		g.escalate = 0
		slack := target - l
		up := min(max(mulDiv(rate, slack, target)/8, 1), max(rate/10, 1))
		if g.knee > 0 && rate+up > g.knee {
			probe := mulDiv(rate, slack, elapsed+2*target)
			probe = mulDiv(probe, 1<<min(max(g.probing-probeDelay, 0), maxProbeShift), 1)
			if rate < g.knee {
				up = max(g.knee-rate, probe)
			} else {
				up = probe
				g.probing++
			}
			up = min(max(up, 1), max(rate/10, 1))
		}
		next = rate + up
	default:
		g.escalate = 0
	}
	if g.maxDepth > g.cfg.MaxQueue {
		next = min(next, rate-rate/8)
	}
	return min(max(next, g.cfg.MinRate), g.cfg.MaxRate)
}

// setRate changes the fill rate and the capacity with it, keeping the level, clamped
// to [-capacity, capacity] (a debt is never deeper than the capacity).
func (g *Global) setRate(now, rate int64) {
	g.b.SetRate(now, rate)
	g.b.SetCapacity(now, globalCapacity(rate))
	g.b.level = max(g.b.level, -g.b.capacity)
}

// Rate is the current adaptive fill rate, ops/s.
func (g *Global) Rate() int64 { return g.b.rate }

// Tokens returns the whole tokens at now; negative while guaranteed operations have put
// the bucket in debt.
func (g *Global) Tokens(now int64) int64 { return g.b.Tokens(g.clock(now)) }

// Headroom reports whether the bucket is at least half full at now: the node is
// serving less than its rate, and burst operations are charged at the discount.
func (g *Global) Headroom(now int64) bool {
	g.b.refill(g.clock(now))
	return g.b.level >= g.b.capacity-g.b.capacity/2
}

// LatencyEWMA is the smoothed latency, ns (0 before the first sample).
func (g *Global) LatencyEWMA() int64 { return g.ewma >> ewmaShift }

// Config returns the configuration.
func (g *Global) Config() GlobalConfig { return g.cfg }

// SetConfig changes the configuration at now. The rate is kept, clamped to the new
// [MinRate, MaxRate] (InitialRate only matters to NewGlobal); the next adjustment stays
// where it was unless the new Interval brings it closer.
func (g *Global) SetConfig(now int64, c GlobalConfig) error {
	if err := c.Validate(); err != nil {
		return err
	}
	now = g.clock(now)
	g.cfg = c
	g.next = min(g.next, now+c.Interval)
	g.setRate(now, min(max(g.b.rate, c.MinRate), c.MaxRate))
	return nil
}
