package qos

import (
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func testGlobalConfig() GlobalConfig {
	return GlobalConfig{InitialRate: 10_000, MinRate: 1_000, MaxRate: 100_000, TargetLatency: 1_000_000,
		MaxQueue: 100, Interval: second / 10, DiscountPermille: 500}
}

// Test 7: whatever it observes, the controller keeps the rate within [MinRate, MaxRate],
// moves it by at most a halving down or +10% up per adjustment (or by 1 op/s), keeps the
// bucket's capacity at max(1, rate/10), and the bucket's level within [-capacity,
// capacity]. Random configurations, latencies, queue depths, admissions (which charge
// and take tokens), Tick gaps and live SetConfig.
func TestGlobalRateBounds(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		drawCfg := func(label string) GlobalConfig {
			lo := rapid.Int64Range(1, 100_000).Draw(t, label+".MinRate")
			hi := lo + rapid.Int64Range(0, 1_000_000).Draw(t, label+".MaxRate-MinRate")
			return GlobalConfig{
				MinRate: lo, MaxRate: hi, InitialRate: rapid.Int64Range(lo, hi).Draw(t, label+".InitialRate"),
				TargetLatency:    rapid.Int64Range(1, 100_000_000).Draw(t, label+".TargetLatency"),
				MaxQueue:         rapid.IntRange(1, 1000).Draw(t, label+".MaxQueue"),
				Interval:         rapid.Int64Range(1, second).Draw(t, label+".Interval"),
				DiscountPermille: rapid.Int64Range(1, 1000).Draw(t, label+".DiscountPermille"),
			}
		}
		cfg := drawCfg("cfg")
		g, err := NewGlobal(cfg, 0)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := NewVolume(Limits{IOPS: 1000, BurstIOPS: 1_000_000, BurstCredits: 1 << 30}, 0)
		rng := splitmix(rapid.Uint64().Draw(t, "seed"))
		now, prev := int64(0), g.Rate()
		steps := rapid.IntRange(1, 300).Draw(t, "steps")
		for i := 0; i < steps; i++ {
			now += rng.in(0, 2*cfg.Interval)
			if rng.in(0, 50) == 0 {
				cfg = drawCfg("new")
				if err := g.SetConfig(now, cfg); err != nil {
					t.Fatal(err)
				}
				prev = g.Rate()
				if prev < cfg.MinRate || prev > cfg.MaxRate {
					t.Fatalf("SetConfig left the rate at %d outside [%d, %d]", prev, cfg.MinRate, cfg.MaxRate)
				}
			}
			for j := rng.in(0, 100); j > 0; j-- {
				v.Admit(now, 0, g)
			}
			for j := rng.in(0, 100); j > 0; j-- {
				g.Observe(rng.in(-10, 4*cfg.TargetLatency))
			}
			g.Tick(now, int(rng.in(0, int64(2*cfg.MaxQueue))))
			r := g.Rate()
			if r < cfg.MinRate || r > cfg.MaxRate {
				t.Fatalf("rate %d outside [%d, %d]", r, cfg.MinRate, cfg.MaxRate)
			}
			if r < prev/2 && r > cfg.MinRate {
				t.Fatalf("rate cut from %d to %d: more than halved", prev, r)
			}
			if r > prev+max(prev/10, 1) && r > cfg.MinRate {
				t.Fatalf("rate raised from %d to %d: more than 10%%", prev, r)
			}
			prev = r
			if c := g.b.Capacity(); c != max(1, r/10) {
				t.Fatalf("capacity %d at rate %d", c, r)
			}
			if lvl, c := g.b.Level(now), g.b.capacity; lvl < -c || lvl > c {
				t.Fatalf("level %d outside ±%d", lvl, c)
			}
		}
	})
}

// drain takes the node bucket's tokens as burst operations would, until it refuses (so
// the bucket ran dry: demand was limited by it).
func drain(t *testing.T, g *Global, now int64) {
	t.Helper()
	for i := 0; i < 1<<24; i++ {
		if !g.hasToken(now) {
			return
		}
		g.take(now)
	}
	t.Fatal("the node bucket never ran dry")
}

// A queue deeper than MaxQueue cuts the rate by 1/8 even when the latency is low and
// the demand high; a queue at MaxQueue does not.
func TestGlobalQueueCut(t *testing.T) {
	g, _ := NewGlobal(testGlobalConfig(), 0)
	starve := func(now int64) { drain(t, g, now) }
	starve(0)
	g.Observe(1000)
	g.Tick(second/10, 100)
	if g.Rate() <= 10_000 {
		t.Fatalf("rate %d: low latency and dry, at MaxQueue, want a raise", g.Rate())
	}
	r := g.Rate()
	starve(second / 10)
	g.Observe(1000)
	g.Tick(second/10+1, 101) // recorded: the highest depth of the interval counts
	g.Tick(2*second/10, 0)
	if want := r - r/8; g.Rate() != want {
		t.Fatalf("rate %d after a queue of 101 > 100, want %d", g.Rate(), want)
	}
}

// The EWMA: the first interval with samples initializes it to their mean, the next ones
// move it by a quarter of the way to theirs, and an interval without samples leaves it.
func TestGlobalEWMA(t *testing.T) {
	g, _ := NewGlobal(testGlobalConfig(), 0)
	g.Tick(second/10, 0)
	if g.LatencyEWMA() != 0 {
		t.Fatal("EWMA without samples")
	}
	g.Observe(100_000)
	g.Observe(300_000)
	g.Tick(2*second/10, 0)
	if g.LatencyEWMA() != 200_000 {
		t.Fatalf("EWMA %d, want the first mean 200,000", g.LatencyEWMA())
	}
	g.Observe(600_000)
	g.Tick(3*second/10, 0)
	if g.LatencyEWMA() != 300_000 {
		t.Fatalf("EWMA %d, want 200,000 + (600,000-200,000)/4", g.LatencyEWMA())
	}
	g.Tick(4*second/10, 0)
	if g.LatencyEWMA() != 300_000 {
		t.Fatalf("EWMA %d after an interval without samples, want it unchanged", g.LatencyEWMA())
	}
	g.Observe(-5) // counts as 0
	g.Tick(5*second/10, 0)
	if g.LatencyEWMA() != 225_000 {
		t.Fatalf("EWMA %d, want 300,000 - 300,000/4", g.LatencyEWMA())
	}
}

// Raises need demand: an idle node with low latency keeps its rate; a node whose bucket
// runs dry raises it by the proportional step, at most 10% per interval; an interval
// whose latency exceeds the target cuts it, by at most half.
func TestGlobalRaiseAndCut(t *testing.T) {
	cfg := testGlobalConfig()
	g, _ := NewGlobal(cfg, 0)
	now := int64(0)
	for i := 0; i < 50; i++ {
		now += cfg.Interval
		g.Observe(cfg.TargetLatency / 10)
		g.Tick(now, 0)
	}
	if g.Rate() != cfg.InitialRate {
		t.Fatalf("idle node: rate %d, want %d kept", g.Rate(), cfg.InitialRate)
	}
	for i := 0; i < 5; i++ {
		before := g.Rate()
		drain(t, g, now)
		now += cfg.Interval
		g.Observe(cfg.TargetLatency / 10)
		g.Tick(now, 0)
		// slack 90%: rate·0.9/8 = 11.25%, capped at 10%
		if want := before + before/10; g.Rate() != want {
			t.Fatalf("dry node at 10%% of the target: rate %d -> %d, want %d", before, g.Rate(), want)
		}
	}
	before := g.Rate()
	g.Observe(100 * cfg.TargetLatency)
	now += cfg.Interval
	g.Tick(now, 0)
	if g.Rate() != before/2 {
		t.Fatalf("latency 100× the target: rate %d -> %d, want halved", before, g.Rate())
	}
	// The EWMA still exceeds the target but the last interval did not: hold.
	before = g.Rate()
	drain(t, g, now)
	g.Observe(cfg.TargetLatency / 10)
	now += cfg.Interval
	g.Tick(now, 0)
	if g.LatencyEWMA() <= cfg.TargetLatency || g.Rate() != before {
		t.Fatalf("EWMA %d over the target after a good interval: rate %d -> %d, want held", g.LatencyEWMA(), before, g.Rate())
	}
}

// Guaranteed charges may put the bucket into debt, down to minus its capacity, and a
// burst then needs the debt repaid and a whole token.
func TestGlobalDebt(t *testing.T) {
	cfg := testGlobalConfig()
	cfg.InitialRate, cfg.MinRate, cfg.MaxRate = 1000, 1000, 1000 // capacity 100
	g, _ := NewGlobal(cfg, 0)
	for i := 0; i < 1000; i++ {
		g.charge(0)
	}
	if g.Tokens(0) != -100 {
		t.Fatalf("tokens %d after 1,000 charges, want the floor -100", g.Tokens(0))
	}
	if g.hasToken(100 * second / 1000) { // +100 tokens: level 0
		t.Fatal("a burst token at level 0")
	}
	if !g.hasToken(101 * second / 1000) {
		t.Fatal("no burst token at level 1")
	}
	if g.Headroom(101*second/1000) || !g.Headroom(150*second/1000) {
		t.Fatal("headroom is a level of at least half the capacity")
	}
}

// Adjustments happen once per Interval on a grid; a late Tick adjusts once; an earlier
// now is ignored.
func TestGlobalTickGrid(t *testing.T) {
	cfg := testGlobalConfig()
	g, _ := NewGlobal(cfg, 0)
	dry := func(now int64) { drain(t, g, now) }
	dry(0)
	g.Tick(cfg.Interval-1, 0)
	if g.Rate() != cfg.InitialRate {
		t.Fatal("adjusted before the interval")
	}
	g.Tick(cfg.Interval, 0)
	r := g.Rate()
	if r == cfg.InitialRate {
		t.Fatal("no adjustment at the interval")
	}
	dry(cfg.Interval)
	g.Tick(cfg.Interval/2, 0) // backwards: ignored
	g.Tick(cfg.Interval+cfg.Interval/2, 0)
	if g.Rate() != r {
		t.Fatal("adjusted twice in one interval")
	}
	dry(cfg.Interval + cfg.Interval/2)
	g.Tick(10*cfg.Interval+1, 0) // a gap of many intervals: one adjustment
	r2 := g.Rate()
	if r2 == r || r2 > r+r/10 {
		t.Fatalf("after a gap: rate %d -> %d, want one raise", r, r2)
	}
	dry(10*cfg.Interval + 1)
	g.Tick(11*cfg.Interval-1, 0) // still in the interval [10, 11)
	if g.Rate() != r2 {
		t.Fatal("the grid moved")
	}
	g.Tick(11*cfg.Interval, 0)
	if g.Rate() == r2 {
		t.Fatal("no adjustment on the grid")
	}
}

// SetConfig validates, keeps the rate (clamped to the new bounds), and the discount
// applies from then on.
func TestGlobalSetConfig(t *testing.T) {
	cfg := testGlobalConfig()
	g, _ := NewGlobal(cfg, 0)
	bad := cfg
	bad.MinRate = 0
	if g.SetConfig(0, bad) == nil || g.Config() != cfg {
		t.Fatal("invalid config accepted")
	}
	c2 := cfg
	c2.MinRate, c2.InitialRate, c2.MaxRate = 20_000, 20_000, 50_000
	if err := g.SetConfig(0, c2); err != nil {
		t.Fatal(err)
	}
	if g.Rate() != 20_000 || g.b.Capacity() != 2000 || g.Config() != c2 {
		t.Fatalf("rate %d capacity %d after raising MinRate to 20,000", g.Rate(), g.b.Capacity())
	}
	c3 := c2
	c3.MinRate, c3.InitialRate, c3.MaxRate = 100, 100, 5000
	if err := g.SetConfig(0, c3); err != nil {
		t.Fatal(err)
	}
	if g.Rate() != 5000 || g.Tokens(0) != 500 {
		t.Fatalf("rate %d tokens %d after lowering MaxRate to 5,000, want 5,000 and the level clamped to 500", g.Rate(), g.Tokens(0))
	}
}

// The controller follows a node that slows down: on the cliff node of
// TestControllerCliffNode, the service time doubles at 100 s; 10 s later the rate is
// within ±15% of the new capacity, and stays there.
func TestControllerFollowsSlowdown(t *testing.T) {
	if testing.Short() {
		t.Skip("200 s of simulated node")
	}
	const capacity = 20_000
	service := second / capacity
	cfg := GlobalConfig{InitialRate: 5_000, MinRate: 1000, MaxRate: 1_000_000, TargetLatency: 5 * service,
		MaxQueue: 256, Interval: second / 10, DiscountPermille: 500}
	res := nodeSim{capacity: capacity, step: second / 10_000, dur: 200 * second, vols: saturatingVolumes(4, capacity),
		cfg: cfg, slowAt: 100 * second, slowNum: 2, slowDen: 1}.run(t)
	for i, at := range res.times {
		r := float64(res.rates[i])
		switch {
		case at >= 60*second && at < 100*second && (r < 0.85*capacity || r > 1.15*capacity):
			t.Fatalf("rate %.0f at %.1f s before the slowdown, want within ±15%% of %d", r, float64(at)/1e9, capacity)
		case at >= 110*second && (r < 0.85*capacity/2 || r > 1.15*capacity/2):
			t.Fatalf("rate %.0f at %.1f s after the slowdown, want within ±15%% of %d", r, float64(at)/1e9, capacity/2)
		}
	}
	if lat := res.meanLatency(110, 200); lat > 2*float64(cfg.TargetLatency) {
		t.Errorf("mean latency %.0f ns after the slowdown, target %d", lat, cfg.TargetLatency)
	}
}

// Test 8: Validate rejects bad configurations, naming the field.
func TestGlobalConfigValidate(t *testing.T) {
	if err := DefaultGlobalConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for _, c := range []struct {
		mut  func(*GlobalConfig)
		want string
	}{
		{func(c *GlobalConfig) {}, ""},
		{func(c *GlobalConfig) { c.MinRate, c.InitialRate, c.MaxRate = 5, 5, 5 }, ""},
		{func(c *GlobalConfig) { c.DiscountPermille = 1 }, ""},
		{func(c *GlobalConfig) { c.DiscountPermille = 1000 }, ""},
		{func(c *GlobalConfig) { c.MinRate = 0 }, "MinRate must be > 0, got 0"},
		{func(c *GlobalConfig) { c.MinRate = -1 }, "MinRate must be > 0, got -1"},
		{func(c *GlobalConfig) { c.InitialRate = 999 }, "InitialRate must be >= MinRate (1000), got 999"},
		{func(c *GlobalConfig) { c.MaxRate = 19_999 }, "MaxRate must be >= InitialRate (20000), got 19999"},
		{func(c *GlobalConfig) { c.MaxRate = 1<<40 + 1 }, "MaxRate must be <= 1099511627776"},
		{func(c *GlobalConfig) { c.TargetLatency = 0 }, "TargetLatency must be > 0 ns, got 0"},
		{func(c *GlobalConfig) { c.TargetLatency = 1<<40 + 1 }, "TargetLatency must be <= 1099511627776 ns"},
		{func(c *GlobalConfig) { c.MaxQueue = 0 }, "MaxQueue must be > 0, got 0"},
		{func(c *GlobalConfig) { c.Interval = 0 }, "Interval must be > 0 ns, got 0"},
		{func(c *GlobalConfig) { c.Interval = 1<<50 + 1 }, "Interval must be <= 1125899906842624 ns"},
		{func(c *GlobalConfig) { c.DiscountPermille = 0 }, "DiscountPermille must be in 1..1000, got 0"},
		{func(c *GlobalConfig) { c.DiscountPermille = 1001 }, "DiscountPermille must be in 1..1000, got 1001"},
	} {
		cfg := DefaultGlobalConfig()
		c.mut(&cfg)
		err := cfg.Validate()
		_, nerr := NewGlobal(cfg, 0)
		switch {
		case c.want == "" && (err != nil || nerr != nil):
			t.Errorf("%+v rejected: %v / %v", cfg, err, nerr)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || nerr == nil):
			t.Errorf("%+v: error %v, want %q (NewGlobal: %v)", cfg, err, c.want, nerr)
		}
	}
}

func BenchmarkGlobalTick(b *testing.B) {
	cfg := DefaultGlobalConfig()
	g, _ := NewGlobal(cfg, 0)
	b.ReportAllocs()
	now := int64(0)
	for i := 0; b.Loop(); i++ {
		now += cfg.Interval              // every call adjusts the rate
		g.Observe(int64(i%20) * 500_000) // latencies around the 5 ms target: raises, holds and cuts
		g.charge(now)
		g.Tick(now, i%300)
	}
}
