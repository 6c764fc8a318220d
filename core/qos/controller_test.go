package qos

import (
	"math"
	"testing"
)

// nodeSim is a node of capacity capacity ops/s as a deterministic FIFO queue: each
// admitted operation takes 1/capacity s of service; its latency is its wait plus its
// service, and is reported to the Global when the operation completes. Every step the
// volumes are polled until they all refuse (a saturating demand), then the Global ticks.
type nodeSim struct {
	capacity int64 // ops/s; 1e9 must be a multiple
	step     int64 // ns between polls
	dur      int64 // ns simulated
	vols     []Limits
	cfg      GlobalConfig
	// slowdown, if set, multiplies the service time by num/den from the time at.
	slowAt, slowNum, slowDen int64
}

type nodeResult struct {
	rates     []int64 // Rate() after each adjustment, in order
	times     []int64 // the adjustment times
	latSum    []int64 // per second: sum of completed latencies
	latN      []int64 // per second: number of completions
	admitted  []int64 // per second: admitted operations
	maxRate   int64   // over the whole run
	minRate   int64   // over the whole run
	ewmaAtEnd int64
}

func (s nodeSim) run(t testing.TB) nodeResult {
	t.Helper()
	g, err := NewGlobal(s.cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	vols := make([]*Volume, len(s.vols))
	for i, l := range s.vols {
		if vols[i], err = NewVolume(l, 0); err != nil {
			t.Fatal(err)
		}
	}
	secs := s.dur / second
	res := nodeResult{latSum: make([]int64, secs+1), latN: make([]int64, secs+1), admitted: make([]int64, secs+1),
		minRate: math.MaxInt64}
	var admitAt, finishAt []int64 // the queue, FIFO
	head := 0
	freeAt := int64(0)
	nextAdj := s.cfg.Interval
	for now := int64(0); now < s.dur; now += s.step {
		service := second / s.capacity
		if s.slowDen > 0 && now >= s.slowAt {
			service = service * s.slowNum / s.slowDen
		}
		for head < len(finishAt) && finishAt[head] <= now {
			lat := finishAt[head] - admitAt[head]
			g.Observe(lat)
			sec := finishAt[head] / second
			res.latSum[sec] += lat
			res.latN[sec]++
			head++
		}
		if head > 4096 && head*2 > len(finishAt) { // compact
			n := copy(finishAt, finishAt[head:])
			copy(admitAt, admitAt[head:])
			finishAt, admitAt, head = finishAt[:n], admitAt[:n], 0
		}
		g.Tick(now, len(finishAt)-head)
		if now >= nextAdj {
			nextAdj += s.cfg.Interval
			r := g.Rate()
			res.rates = append(res.rates, r)
			res.times = append(res.times, now)
			res.maxRate, res.minRate = max(res.maxRate, r), min(res.minRate, r)
		}
		// Poll every volume in turn until they all refuse (bounded: the global bucket
		// holds at most 1/10 s of MaxRate, each volume's rate bucket 1/20 s).
		for round := 0; round < 1_000_000; round++ {
			any := false
			for _, v := range vols {
				if v.Admit(now, 4096, g) == Denied {
					continue
				}
				any = true
				start := max(now, freeAt)
				freeAt = start + service
				admitAt = append(admitAt, now)
				finishAt = append(finishAt, freeAt)
				res.admitted[now/second]++
			}
			if !any {
				break
			}
		}
	}
	res.ewmaAtEnd = g.LatencyEWMA()
	return res
}

// stats returns the mean and standard deviation of the rates adjusted in [from, to).
func (r nodeResult) stats(from, to int64) (mean, sd float64) {
	var xs []float64
	for i, at := range r.times {
		if at >= from && at < to {
			xs = append(xs, float64(r.rates[i]))
		}
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / float64(len(xs)))
}

// meanLatency is the mean latency of the operations completed in seconds [from, to).
func (r nodeResult) meanLatency(from, to int64) float64 {
	var sum, n int64
	for s := from; s < to; s++ {
		sum += r.latSum[s]
		n += r.latN[s]
	}
	return float64(sum) / float64(n)
}

// saturatingVolumes returns n volumes whose baselines add up to a quarter of capacity
// and whose bursts (ten times the capacity each, with credits for far longer than the
// run) keep the node's bucket the binding limit.
func saturatingVolumes(n int, capacity int64) []Limits {
	ls := make([]Limits, n)
	for i := range ls {
		ls[i] = Limits{IOPS: capacity / 4 / int64(n), BurstIOPS: 10 * capacity, BurstCredits: 1 << 40}
	}
	return ls
}

// The controller against a node that saturates with a cliff: a deterministic queue
// polled every 0.1 ms, so below capacity an operation waits for at most the one or two
// others admitted in the same step (latency ≈ 1–2 service times, no signal), and above it
// the queue grows by (rate - capacity)·Interval in an interval. Demand is far above the
// capacity (four volumes bursting to 10× the node); the target is 5 service times
// (250 µs), i.e. a standing queue of about 4 operations, while one interval serves 2,000:
// a rate error of 0.2% for one interval doubles the latency. That is the hardest case for
// a rate controller, and the one where the rule "rate·Target/EWMA on the EWMA" alone
// collapses into a deep sawtooth.
//
// Measured (this code, both starting rates 2,000 and 100,000): over the last 200 s the
// rate averages 99.9% of the capacity with a standard deviation of 0.18% of the mean;
// after the 60 s warm-up it stays within [19,936, 20,038]; the latency averages 0.86× the
// target. (The rule "rate·Target/EWMA whenever the EWMA is over the target" alone,
// measured on this same node, averages 33% of the capacity with a standard deviation of
// 84%.) The bands below (every rate after 60 s within ±15% of the capacity, sd < 5%,
// latency between 0.5× and 2× the target, throughput >= 90% of the capacity) leave room
// for reasonable tuning while failing an AIMD sawtooth (a halving every few seconds is a
// ±25% swing), a controller that runs away (rate far above the capacity, latency
// unbounded) or one that settles far below the capacity.
func TestControllerCliffNode(t *testing.T) {
	if testing.Short() {
		t.Skip("300 s of simulated node")
	}
	const capacity = 20_000
	service := second / capacity
	for _, initial := range []int64{2_000, 100_000} {
		cfg := GlobalConfig{InitialRate: initial, MinRate: 1000, MaxRate: 1_000_000, TargetLatency: 5 * service,
			MaxQueue: 256, Interval: second / 10, DiscountPermille: 500}
		res := nodeSim{capacity: capacity, step: second / 10_000, dur: 300 * second,
			vols: saturatingVolumes(4, capacity), cfg: cfg}.run(t)
		checkEquilibrium(t, res, cfg, capacity, 0.15, 0.05)
		lat := res.meanLatency(100, 300)
		t.Logf("initial %d: mean latency over the last 200 s %.0f ns (%.2f× the target)", initial, lat, lat/float64(cfg.TargetLatency))
		if lat < 0.5*float64(cfg.TargetLatency) || lat > 2*float64(cfg.TargetLatency) {
			t.Errorf("initial %d: mean latency %.0f ns over the last 200 s, target %d", initial, lat, cfg.TargetLatency)
		}
		var served int64
		for s := 100; s < 300; s++ {
			served += res.admitted[s]
		}
		if served < 200*capacity*9/10 {
			t.Errorf("initial %d: admitted %d ops in the last 200 s, want >= 90%% of %d", initial, served, 200*capacity)
		}
	}
}

// The controller against a node whose latency grows with load below its capacity: the
// same queue polled every 1 ms, so the operations admitted in one step (rate/1000 of
// them) wait for each other: at rate R the mean latency is about (R/1000+1)/2 service
// times. With a 10,000 ops/s node and a 5-service-time target, the latency reaches the
// target at about 9,000 ops/s, below the capacity: the equilibrium is there (the rate
// settles at 0.9× the capacity with its latency at the target), not at the capacity, and
// this is the case the proportional cut rate·Target/Latency is made for.
//
// Measured: the rate settles at 9,000 (0.90× capacity), standard deviation 0, latency
// 1.00× the target. Bands: rate within [0.8, 1.0]× capacity after the warm-up, sd < 5%,
// latency within ±20% of the target.
func TestControllerLoadProportionalNode(t *testing.T) {
	if testing.Short() {
		t.Skip("300 s of simulated node")
	}
	const capacity = 10_000
	service := second / capacity
	for _, initial := range []int64{2_000, 100_000} {
		cfg := GlobalConfig{InitialRate: initial, MinRate: 1000, MaxRate: 1_000_000, TargetLatency: 5 * service,
			MaxQueue: 256, Interval: second / 10, DiscountPermille: 500}
		res := nodeSim{capacity: capacity, step: second / 1000, dur: 300 * second,
			vols: saturatingVolumes(4, capacity), cfg: cfg}.run(t)
		mean, sd := res.stats(100*second, 300*second)
		t.Logf("initial %d: rate mean %.0f (%.3f× capacity) sd %.2f%%, min %d max %d", initial, mean, mean/capacity, 100*sd/mean, res.minRate, res.maxRate)
		for i, at := range res.times {
			if r := res.rates[i]; at >= 60*second && (r < capacity*8/10 || r > capacity) {
				t.Fatalf("initial %d: rate %d at %.1f s, want within [0.8, 1.0]× capacity %d", initial, r, float64(at)/1e9, capacity)
			}
		}
		if sd > 0.05*mean {
			t.Errorf("initial %d: rate sd %.0f over the last 200 s, want < 5%% of the mean %.0f", initial, sd, mean)
		}
		lat := res.meanLatency(100, 300)
		t.Logf("initial %d: mean latency over the last 200 s %.0f ns (%.2f× the target)", initial, lat, lat/float64(cfg.TargetLatency))
		if math.Abs(lat-float64(cfg.TargetLatency)) > 0.2*float64(cfg.TargetLatency) {
			t.Errorf("initial %d: mean latency %.0f ns over the last 200 s, want within 20%% of the target %d", initial, lat, cfg.TargetLatency)
		}
	}
}

// checkEquilibrium: after a 60 s warm-up every rate is within ±band of capacity, and the
// standard deviation over the last 200 s is below sdMax of the mean.
func checkEquilibrium(t *testing.T, res nodeResult, cfg GlobalConfig, capacity int64, band, sdMax float64) {
	t.Helper()
	mean, sd := res.stats(100*second, 300*second)
	lo60, hi60 := int64(math.MaxInt64), int64(0)
	for i, at := range res.times {
		if at >= 60*second {
			lo60, hi60 = min(lo60, res.rates[i]), max(hi60, res.rates[i])
		}
	}
	t.Logf("initial %d: last 200 s: rate mean %.0f (%.3f× capacity) sd %.2f%%; after 60 s: min %d max %d; latency EWMA at the end %d ns (target %d)",
		cfg.InitialRate, mean, mean/float64(capacity), 100*sd/mean, lo60, hi60, res.ewmaAtEnd, cfg.TargetLatency)
	lo, hi := float64(capacity)*(1-band), float64(capacity)*(1+band)
	for i, at := range res.times {
		if r := float64(res.rates[i]); at >= 60*second && (r < lo || r > hi) {
			t.Fatalf("initial %d: rate %.0f at %.1f s, want within ±%.0f%% of capacity %d", cfg.InitialRate, r, float64(at)/1e9, 100*band, capacity)
		}
	}
	if sd > sdMax*mean {
		t.Errorf("initial %d: rate sd %.0f over the last 200 s, want < %.0f%% of the mean %.0f", cfg.InitialRate, sd, 100*sdMax, mean)
	}
}
