package qos

import (
	"math"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// splitmix is a small deterministic generator for test inputs too numerous to draw one
// by one from rapid (it is seeded from a rapid draw).
type splitmix uint64

func (s *splitmix) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// in returns a number in [lo, hi].
func (s *splitmix) in(lo, hi int64) int64 { return lo + int64(s.next()%uint64(hi-lo+1)) }

// saturate admits operations of the given size at now until the volume refuses, and
// returns how many it admitted of each grant.
func saturate(t interface{ Fatalf(string, ...any) }, v *Volume, now, bytes int64, g *Global) (n [4]int64) {
	for i := 0; i < 1<<22; i++ {
		gr := v.Admit(now, bytes, g)
		if gr == Denied {
			return n
		}
		n[gr]++
	}
	t.Fatalf("volume %+v admitted 4M operations at one instant", v.Limits())
	return n
}

func total(n [4]int64) int64 { return n[Guaranteed] + n[Burst] + n[Lent] }

// ceilRate is rate·ns/1e9 rounded up.
func ceilRate(rate, ns int64) int64 { return (rate*ns + second - 1) / second }

func drawLimits(t *rapid.T, label string) Limits {
	iops := rapid.Int64Range(1, 5000).Draw(t, label+".IOPS")
	l := Limits{
		IOPS:         iops,
		BurstIOPS:    iops + rapid.Int64Range(0, 5000).Draw(t, label+".extra"),
		BurstCredits: rapid.Int64Range(0, 20_000).Draw(t, label+".BurstCredits"),
	}
	if rapid.Bool().Draw(t, label+".byteLimit") {
		l.BytesPerSec = rapid.Int64Range(1, 10_000_000).Draw(t, label+".BytesPerSec")
	}
	return l
}

// Test 1. With no node bucket, for random schedules of arrivals (several at one instant,
// instants up to 50 ms apart, random sizes) and random live limit changes, the volume
// never admits more than its buckets allow. Checked after every step, for the segment
// since the last SetLimits (limits l, length d):
//
//   - rate: admitted <= BurstIOPS·d + rate capacity + 1;
//   - credits: admitted <= IOPS·d + BurstCredits + baseline capacity + 1 (every admitted
//     operation is charged one credit; the credits start the segment at most full and
//     may end it in a debt of at most the baseline capacity plus one);
//   - bytes, with a byte limit: bytes admitted <= BytesPerSec·d + byte capacity + the
//     largest operation admitted (the last one may overdraw the bucket);
//
// and over the whole run: admitted <= ∫IOPS dt + the initial BurstCredits + the current
// baseline capacity + 1, plus, for each limit change, the old baseline capacity + 1 (a
// change clamps the credit balance into [-new baseline capacity, new BurstCredits],
// which may forgive that much debt). Grants are only Guaranteed or Burst, and Credits
// stays within [0, BurstCredits].
func TestVolumeNeverOveradmits(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		l := drawLimits(t, "initial")
		v, err := NewVolume(l, 0)
		if err != nil {
			t.Fatal(err)
		}
		rng := splitmix(rapid.Uint64().Draw(t, "seed"))
		// allowance: the initial credits, plus what each limit change may forgive (the
		// debt beyond the new baseline capacity: at most the old one plus one).
		allowance := l.BurstCredits
		var now, segStart, segOps, segBytes, segMaxOp, totalOps, entitled int64 // entitled: ∫IOPS dt in op·ns
		// The schedule's shape is drawn (so rapid can shrink it); its details come from
		// rng. rapid favours small values, so the sizes that should usually be large
		// are drawn as distances from their maximum: long runs with few limit changes
		// are the common case, short busy ones the edge.
		steps := 500 - rapid.IntRange(0, 499).Draw(t, "500 - steps")
		maxDt := 50*second/1000 - rapid.Int64Range(0, 50*second/1000).Draw(t, "50 ms - max dt")
		samePct := rapid.Int64Range(0, 50).Draw(t, "same instant %")
		changePct := rapid.Int64Range(0, 10).Draw(t, "change %")
		maxAttempts := 300 - rapid.Int64Range(0, 299).Draw(t, "300 - max attempts")
		maxSize := rapid.Int64Range(0, 1<<20).Draw(t, "max size")
		for i := 0; i < steps; i++ {
			dt := rng.in(0, maxDt)
			if rng.in(1, 100) <= samePct {
				dt = 0
			}
			entitled += l.IOPS * dt
			now += dt
			if rng.in(1, 100) <= changePct {
				allowance += smallCapacity(l.IOPS) + 1
				l = Limits{IOPS: rng.in(1, 5000), BurstCredits: rng.in(0, 20_000)}
				l.BurstIOPS = l.IOPS + rng.in(0, 5000)
				if rng.in(0, 1) == 1 {
					l.BytesPerSec = rng.in(1, 10_000_000)
				}
				if err := v.SetLimits(now, l); err != nil {
					t.Fatal(err)
				}
				segStart, segOps, segBytes, segMaxOp = now, 0, 0, 0
			}
			attempts := rng.in(1, maxAttempts)
			for j := int64(0); j < attempts; j++ {
				size := rng.in(0, maxSize)
				switch v.Admit(now, size, nil) {
				case Denied:
					continue
				case Guaranteed, Burst:
				default:
					t.Fatal("a Lent grant without a node bucket")
				}
				segOps++
				totalOps++
				segBytes += size
				segMaxOp = max(segMaxOp, size)
			}
			d := now - segStart
			if b := ceilRate(l.BurstIOPS, d) + smallCapacity(l.BurstIOPS) + 1; segOps > b {
				t.Fatalf("segment of %d ns at %+v: %d ops > rate bound %d", d, l, segOps, b)
			}
			if b := ceilRate(l.IOPS, d) + l.BurstCredits + smallCapacity(l.IOPS) + 1; segOps > b {
				t.Fatalf("segment of %d ns at %+v: %d ops > credit bound %d", d, l, segOps, b)
			}
			if l.BytesPerSec > 0 {
				if b := ceilRate(l.BytesPerSec, d) + smallCapacity(l.BytesPerSec) + segMaxOp; segBytes > b {
					t.Fatalf("segment of %d ns at %+v: %d bytes > bound %d", d, l, segBytes, b)
				}
			}
			if b := (entitled+second-1)/second + allowance + smallCapacity(l.IOPS) + 1; totalOps > b {
				t.Fatalf("run of %d ns: %d ops > bound %d", now, totalOps, b)
			}
			if c := v.Credits(now); c < 0 || c > l.BurstCredits {
				t.Fatalf("credits %d outside [0, %d]", c, l.BurstCredits)
			}
		}
	})
}

// Test 2. Long-run rate: a saturating caller polling every 0.1–10 ms for 60 s, with no
// credits and BurstIOPS = IOPS, gets IOPS × 60 within ±1% (+2 ops). (From 40 IOPS up: a
// bucket of max(1, IOPS/20) tokens must hold one token plus a poll's refill, or the time
// a full one-token bucket waits for the poll is lost.)
func TestVolumeLongRunRate(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		iops := rapid.Int64Range(40, 10_000).Draw(t, "IOPS")
		step := rapid.Int64Range(second/10_000, second/100).Draw(t, "step")
		v, err := NewVolume(Limits{IOPS: iops, BurstIOPS: iops}, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got, end int64
		for now := int64(0); now <= 60*second; now += step {
			n := saturate(t, v, now, 0, nil)
			if n[Burst] != 0 {
				t.Fatalf("%d burst grants without credits", n[Burst])
			}
			got += n[Guaranteed]
			end = now
		}
		want := float64(iops) * float64(end) / 1e9
		if math.Abs(float64(got)-want) > want/100+2 {
			t.Fatalf("%d IOPS polled every %d ns for %.3f s: admitted %d, want %.0f ±1%%", iops, step, float64(end)/1e9, got, want)
		}
	})
}

// Test 2, bytes: with a throughput limit and operations of random sizes (up to 1/50 s of
// the limit each), a saturating caller gets BytesPerSec × t within ±2% + one operation.
func TestVolumeLongRunBytes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		bps := rapid.Int64Range(100_000, 1_000_000_000).Draw(t, "BytesPerSec")
		step := rapid.Int64Range(second/10_000, second/100).Draw(t, "step")
		rng := splitmix(rapid.Uint64().Draw(t, "seed"))
		lo, hi := max(1, bps/2000), bps/50
		v, err := NewVolume(Limits{IOPS: 1_000_000, BurstIOPS: 1_000_000, BytesPerSec: bps}, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got, end int64
		for now := int64(0); now <= 60*second; now += step {
			for i := 0; i < 1<<20; i++ {
				size := rng.in(lo, hi)
				if v.Admit(now, size, nil) == Denied {
					break
				}
				got += size
			}
			end = now
		}
		want := float64(bps) * float64(end) / 1e9
		if math.Abs(float64(got)-want) > want/50+float64(hi) {
			t.Fatalf("%d B/s polled every %d ns for %.3f s: admitted %d bytes, want %.0f ±2%% + %d", bps, step, float64(end)/1e9, got, want, hi)
		}
	})
}

// Test 3, Q1-shaped: a saturating volume's admitted count in every 10 s window is within
// ±5% of BurstIOPS × 10 while its credits last and of IOPS × 10 after; the window in
// which the credits run out (about BurstCredits/(BurstIOPS-IOPS) s in) is skipped.
func TestVolumeBurstWindows(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		iops := rapid.Int64Range(40, 1000).Draw(t, "IOPS")
		burst := iops * rapid.Int64Range(1, 5).Draw(t, "burst factor")
		burstSecs := rapid.Int64Range(20, 60).Draw(t, "burst seconds")
		step := rapid.Int64Range(second/10_000, second/100).Draw(t, "step")
		l := Limits{IOPS: iops, BurstIOPS: burst, BurstCredits: (burst - iops) * burstSecs}
		v, err := NewVolume(l, 0)
		if err != nil {
			t.Fatal(err)
		}
		const windows = 10
		var perWindow [windows]int64
		for now := int64(0); now < windows*10*second; now += step {
			perWindow[now/(10*second)] += total(saturate(t, v, now, 0, nil))
		}
		for w, got := range perWindow {
			from, to := int64(w)*10, int64(w+1)*10
			want := iops * 10
			switch {
			case burst == iops:
			case to <= burstSecs:
				want = burst * 10
			case from <= burstSecs:
				continue // the transition
			}
			if math.Abs(float64(got-want)) > 0.05*float64(want) {
				t.Fatalf("%+v polled every %d ns: window [%d s, %d s) admitted %d, want %d ±5%%", l, step, from, to, got, want)
			}
		}
	})
}

// Test 4: a live IOPS change at T (up or down, with or without a burst allowance but no
// credits): in [T+1 s, T+11 s) the volume is admitted at the new rate within ±5%, and
// before T at the old one.
func TestVolumeLimitChangeMidStream(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		draw := func(label string) Limits {
			iops := rapid.Int64Range(40, 10_000).Draw(t, label+".IOPS")
			return Limits{IOPS: iops, BurstIOPS: iops * rapid.Int64Range(1, 4).Draw(t, label+".burst factor")}
		}
		before, after := draw("before"), draw("after")
		at := rapid.Int64Range(2*second, 5*second).Draw(t, "T")
		step := rapid.Int64Range(second/10_000, second/100).Draw(t, "step")
		v, err := NewVolume(before, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got, gotBefore int64
		changed := false
		for now := int64(0); now < at+11*second; now += step {
			if !changed && now >= at {
				if err := v.SetLimits(now, after); err != nil {
					t.Fatal(err)
				}
				changed = true
			}
			n := total(saturate(t, v, now, 0, nil))
			switch {
			case now >= second && now < at:
				gotBefore += n
			case now >= at+second:
				got += n
			}
		}
		if want := float64(before.IOPS*(at-second)) / 1e9; math.Abs(float64(gotBefore)-want) > 0.05*want+2 {
			t.Fatalf("before the change (%+v): %d ops in [1 s, T), want %.0f ±5%%", before, gotBefore, want)
		}
		if want := float64(after.IOPS * 10); math.Abs(float64(got)-want) > 0.05*want {
			t.Fatalf("%+v -> %+v at %d ns, polled every %d ns: %d ops in [T+1 s, T+11 s), want %.0f ±5%%", before, after, at, step, got, want)
		}
	})
}

// The cloud-disk vectors: a 100 GiB volume bursts at 3,000 IOPS for 2,000 s, then runs
// at its 300 IOPS baseline (and stays there: a volume whose credits are exhausted must
// not alternate guaranteed operations with bursts paid by the credits its baseline
// refills).
func TestCloudDiskBurstVector(t *testing.T) {
	l := CloudDiskLimits(100)
	if l != (Limits{IOPS: 300, BurstIOPS: 3000, BurstCredits: 5_400_000}) {
		t.Fatalf("limits %+v", l)
	}
	if CloudDiskLimits(10).IOPS != 100 || CloudDiskLimits(2000).BurstIOPS != 6000 {
		t.Fatal("minimum baseline is 100 IOPS; the burst is at least the baseline")
	}
	v, err := NewVolume(l, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Saturate in 1 ms steps; count admissions per second.
	step := second / 1000
	var perSec [2100]int64
	for now := int64(0); now < 2100*second; now += step {
		perSec[now/second] += total(saturate(t, v, now, 0, nil))
	}
	burstEnd := int64(-1)
	for s := int64(0); s < 2100; s++ {
		if perSec[s] < 2900 {
			burstEnd = s
			break
		}
	}
	if burstEnd < 1995 || burstEnd > 2002 {
		t.Fatalf("burst lasted %d s, want about 2000", burstEnd)
	}
	for s := burstEnd + 2; s < 2100; s++ {
		if got := perSec[s]; got < 299 || got > 301 {
			t.Fatalf("second %d after the burst: %d IOPS, want the 300 baseline", s, got)
		}
	}
}

// A volume whose credits are exhausted runs at its baseline, whatever the phase between
// its baseline and credit buckets: exhaust the credits, idle for a random while (the
// baseline bucket fills and stops at its capacity while the credits keep growing, so the
// two buckets' fractional parts drift apart), then saturate again; 10 s to 20 s later
// the volume gets IOPS·10 ±5%. (Under a rule charging a guaranteed operation only when a
// whole credit is there, one phase in two makes such a volume alternate free guaranteed
// operations with bursts paid by the credits the baseline refills: twice its baseline.)
func TestExhaustedCreditsRunAtBaseline(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		iops := rapid.Int64Range(40, 2000).Draw(t, "IOPS")
		l := Limits{IOPS: iops, BurstIOPS: iops * rapid.Int64Range(2, 10).Draw(t, "burst factor"), BurstCredits: iops}
		idle := rapid.Int64Range(0, second).Draw(t, "idle")
		step := rapid.Int64Range(second/10_000, second/100).Draw(t, "step")
		v, err := NewVolume(l, 0)
		if err != nil {
			t.Fatal(err)
		}
		now := int64(0)
		for ; now < 3*second; now += step {
			saturate(t, v, now, 0, nil)
		}
		var got int64
		for now += idle; now < 23*second; now += step {
			n := total(saturate(t, v, now, 0, nil))
			if now >= 13*second {
				got += n
			}
		}
		if want := iops * 10; math.Abs(float64(got-want)) > 0.05*float64(want) {
			t.Fatalf("%+v, idle %d ns, polled every %d ns: %d ops in 10 s, want %d ±5%%", l, idle, step, got, want)
		}
	})
}

// Credits refill at the baseline while the volume runs below it, and a volume at its
// baseline neither gains nor loses them.
func TestCreditsRefillBelowBaseline(t *testing.T) {
	v, _ := NewVolume(Limits{IOPS: 100, BurstIOPS: 1000, BurstCredits: 10_000}, 0)
	for now := int64(0); now < 2*second; now += second / 1000 { // -1,800 credits
		saturate(t, v, now, 0, nil)
	}
	before := v.Credits(2 * second)
	if before < 8000 || before > 8400 {
		t.Fatalf("credits %d after a 2 s burst, want about 8,200", before)
	}
	// 50 IOPS for 10 s: net +50 credits per second.
	for now := 2*second + second/10; now < 12*second; now += second / 50 {
		if v.Admit(now, 0, nil) != Guaranteed {
			t.Fatal("an operation below the baseline was not guaranteed")
		}
	}
	if got := v.Credits(12 * second); got < before+480 || got > before+520 {
		t.Fatalf("credits %d after 10 s at half baseline, want about %d", got, before+500)
	}
	// 100 IOPS for 10 s: unchanged.
	before = v.Credits(12 * second)
	for now := 12 * second; now < 22*second; now += second / 100 {
		if v.Admit(now, 0, nil) != Guaranteed {
			t.Fatal("an operation at the baseline was not guaranteed")
		}
	}
	if got := v.Credits(22 * second); got < before-2 || got > before+2 {
		t.Fatalf("credits %d after 10 s at the baseline, want %d", got, before)
	}
}

// SetLimits keeps the credit balance (clamped to the new size) and what accrued before
// the change; SetCredits adopts a balance, clamped.
func TestVolumeCreditsAcrossChanges(t *testing.T) {
	v, _ := NewVolume(Limits{IOPS: 100, BurstIOPS: 1000, BurstCredits: 10_000}, 0)
	for now := int64(0); now < second; now += second / 1000 { // burst for 1 s: -900 credits
		saturate(t, v, now, 0, nil)
	}
	c := v.Credits(second)
	if c < 9000 || c > 9150 {
		t.Fatalf("credits %d after a 1 s burst, want about 9,100", c)
	}
	if err := v.SetLimits(second, Limits{IOPS: 200, BurstIOPS: 2000, BurstCredits: 20_000}); err != nil {
		t.Fatal(err)
	}
	if got := v.Credits(second); got != c {
		t.Fatalf("credits %d after raising the limits, want %d kept", got, c)
	}
	if got := v.Credits(2 * second); got < c+199 || got > c+201 {
		t.Fatalf("credits %d one idle second later, want %d + 200 at the new baseline", got, c)
	}
	if err := v.SetLimits(2*second, Limits{IOPS: 200, BurstIOPS: 2000, BurstCredits: 500}); err != nil {
		t.Fatal(err)
	}
	if got := v.Credits(2 * second); got != 500 {
		t.Fatalf("credits %d after shrinking the bucket to 500", got)
	}
	v.SetCredits(2*second, 123)
	if got := v.Credits(2 * second); got != 123 {
		t.Fatalf("adopted %d credits, want 123", got)
	}
	v.SetCredits(2*second, 1<<50)
	if got := v.Credits(2 * second); got != 500 {
		t.Fatalf("adopted %d credits, want the 500 cap", got)
	}
	v.SetCredits(2*second, -5)
	if got := v.Credits(2 * second); got != 0 {
		t.Fatalf("adopted %d credits, want 0", got)
	}
	if err := v.SetLimits(3*second, Limits{IOPS: 0}); err == nil || v.Limits().IOPS != 200 {
		t.Fatal("invalid limits accepted")
	}
	if v.Limits() != (Limits{IOPS: 200, BurstIOPS: 2000, BurstCredits: 500}) {
		t.Fatalf("limits %+v", v.Limits())
	}
}

// A byte limit turned on, changed and turned off live.
func TestVolumeByteLimitLive(t *testing.T) {
	v, _ := NewVolume(Limits{IOPS: 1_000_000, BurstIOPS: 1_000_000}, 0)
	if n := total(saturate(t, v, 0, 1<<30, nil)); n != 50_000 {
		t.Fatalf("no byte limit: %d ops, want the rate bucket's 50,000", n)
	}
	if err := v.SetLimits(second, Limits{IOPS: 1_000_000, BurstIOPS: 1_000_000, BytesPerSec: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	// The byte bucket starts full (1/20 s = 52,428 bytes): one 1 MiB op overdraws it by
	// about 19 such buckets, which takes about 0.95 s to repay.
	if v.Admit(second, 1<<20, nil) != Guaranteed {
		t.Fatal("first op after turning the byte limit on was refused")
	}
	if v.Admit(second+900*second/1000, 1, nil) != Denied {
		t.Fatal("admitted while repaying a debt")
	}
	if v.Admit(second+960*second/1000, 1, nil) == Denied {
		t.Fatal("refused after repaying the debt")
	}
	if err := v.SetLimits(3*second, Limits{IOPS: 1_000_000, BurstIOPS: 1_000_000}); err != nil {
		t.Fatal(err)
	}
	if v.Admit(3*second, 1<<40, nil) == Denied || v.Admit(3*second, 1<<62, nil) == Denied {
		t.Fatal("refused with the byte limit off")
	}
}

// Time never runs backwards: an earlier now counts as the latest one.
func TestVolumeTimeBackwards(t *testing.T) {
	v, _ := NewVolume(Limits{IOPS: 20, BurstIOPS: 20}, 0)
	saturate(t, v, second, 0, nil)
	if n := total(saturate(t, v, 0, 0, nil)); n != 0 {
		t.Fatalf("admitted %d ops at an earlier time", n)
	}
	if n := total(saturate(t, v, second+second/20, 0, nil)); n != 1 {
		t.Fatalf("admitted %d ops 50 ms later, want 1", n)
	}
}

// Test 5: a starved node (its bucket refills at 10 ops/s) still admits every volume's
// provisioned rate: B (200 IOPS, saturating) gets its 2,000 ops in 10 s, all
// guaranteed, and A (100 IOPS, bursting to 10,000 with plenty of credits) gets its own
// 1,000 guaranteed ops plus only the few bursts the node bucket has tokens for.
func TestGuaranteedUnderStarvedNode(t *testing.T) {
	g, err := NewGlobal(GlobalConfig{InitialRate: 10, MinRate: 10, MaxRate: 10, TargetLatency: 5_000_000, MaxQueue: 256,
		Interval: second / 10, DiscountPermille: 500}, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := NewVolume(Limits{IOPS: 100, BurstIOPS: 10_000, BurstCredits: 1 << 30}, 0)
	b, _ := NewVolume(Limits{IOPS: 200, BurstIOPS: 200}, 0)
	var na, nb [4]int64
	for now := int64(0); now < 10*second; now += second / 1000 {
		aFirst := now/(second/1000)%2 == 0 // alternate who asks first
		for i := 0; i < 1<<20; i++ {
			var ga, gb Grant
			if aFirst {
				ga, gb = a.Admit(now, 0, g), b.Admit(now, 0, g)
			} else {
				gb, ga = b.Admit(now, 0, g), a.Admit(now, 0, g)
			}
			na[ga]++
			nb[gb]++
			if ga == Denied && gb == Denied {
				break
			}
		}
		g.Tick(now, 0)
	}
	t.Logf("B (200 IOPS): %d guaranteed; A (100 IOPS, bursting): %d guaranteed, %d burst, %d lent; node tokens %d",
		nb[Guaranteed], na[Guaranteed], na[Burst], na[Lent], g.Tokens(10*second))
	if nb[Guaranteed] < 2000*95/100 || nb[Burst]+nb[Lent] != 0 {
		t.Fatalf("B: %v, want >= 95%% of 2,000 guaranteed", nb)
	}
	if nb[Guaranteed] > 2000+smallCapacity(200)+1 {
		t.Fatalf("B: %d ops, above its rate", nb[Guaranteed])
	}
	if na[Guaranteed] < 1000*95/100 || na[Guaranteed] > 1000+smallCapacity(100)+1 {
		t.Fatalf("A: %d guaranteed ops, want about its 1,000", na[Guaranteed])
	}
	// The node bucket's whole refill (100 tokens in 10 s) plus its initial token bounds
	// A's bursts; the guaranteed charges keep it in debt, so in fact A gets none.
	if bursts := na[Burst] + na[Lent]; bursts > 101 {
		t.Fatalf("A: %d burst ops on a node that refills 100 tokens in 10 s", bursts)
	}
	if g.Tokens(10*second) > 0 {
		t.Fatalf("node bucket at %d tokens under a load 30× its rate", g.Tokens(10*second))
	}
	if g.Tokens(10*second) < -g.b.Capacity() {
		t.Fatalf("node bucket debt %d below minus its capacity %d", g.Tokens(10*second), g.b.Capacity())
	}
}

// Test 6, opportunism: on a node with headroom (a fast node bucket and no other load),
// with Discount 500, a saturating 100 GiB cloud disk's bursts are Lent at half a credit,
// so its credits drain at 300 + 2,700/2 - 300 = 1,350 a second and the burst lasts
// 4,000 s instead of 2,000; with Discount 1000 (opportunism off) the bursts are plain
// Burst grants and last 2,000 s. Polled every 10 ms.
func TestOpportunisticBurst(t *testing.T) {
	for _, c := range []struct {
		discount int64
		grant    Grant
		burst    int64 // seconds
	}{{500, Lent, 4000}, {1000, Burst, 2000}} {
		g, err := NewGlobal(GlobalConfig{InitialRate: 1_000_000, MinRate: 1_000_000, MaxRate: 1_000_000,
			TargetLatency: 5_000_000, MaxQueue: 256, Interval: second / 10, DiscountPermille: c.discount}, 0)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := NewVolume(CloudDiskLimits(100), 0)
		end := c.burst + 100
		perSec := make([]int64, end)
		var grants [4]int64
		for now := int64(0); now < end*second; now += second / 100 {
			n := saturate(t, v, now, 0, g)
			perSec[now/second] += total(n)
			for i := range n {
				grants[i] += n[i]
			}
			g.Tick(now, 0)
		}
		burstEnd := int64(-1)
		for s := int64(0); s < end; s++ {
			if perSec[s] < 2900 {
				burstEnd = s
				break
			}
		}
		t.Logf("discount %d: burst lasted %d s; grants %v", c.discount, burstEnd, grants)
		if burstEnd < c.burst-c.burst/200 || burstEnd > c.burst+c.burst/200 {
			t.Errorf("discount %d: burst lasted %d s, want about %d", c.discount, burstEnd, c.burst)
		}
		wantBursts := 2700 * c.burst
		if got := grants[c.grant]; math.Abs(float64(got-wantBursts)) > 0.01*float64(wantBursts) {
			t.Errorf("discount %d: %d %v grants, want about %d (grants %v)", c.discount, got, c.grant, wantBursts, grants)
		}
		if other := Lent + Burst - c.grant; grants[other] > 0 {
			t.Errorf("discount %d: %d %v grants", c.discount, grants[other], other)
		}
	}
}

// Without headroom the discount does not apply: a burst op on a node bucket below half
// full is a Burst, charged a whole credit; above half full it is Lent.
func TestLentOnlyWithHeadroom(t *testing.T) {
	g, _ := NewGlobal(GlobalConfig{InitialRate: 100, MinRate: 100, MaxRate: 100, TargetLatency: 5_000_000,
		MaxQueue: 256, Interval: second / 10, DiscountPermille: 250}, 0) // capacity 10 tokens
	v, _ := NewVolume(Limits{IOPS: 1, BurstIOPS: 1000, BurstCredits: 100}, 0)
	if v.Admit(0, 0, g) != Guaranteed {
		t.Fatal("first op: want the baseline token")
	}
	var seq []Grant
	for i := 0; i < 12; i++ {
		seq = append(seq, v.Admit(0, 0, g))
	}
	// g: 10 tokens - 1 (guaranteed) = 9: Lent at 9, 8, 7, 6, 5 (>= 5 is half), then Burst
	// at 4, 3, 2, 1, then Denied.
	want := []Grant{Lent, Lent, Lent, Lent, Lent, Burst, Burst, Burst, Burst, Denied, Denied, Denied}
	for i := range want {
		if seq[i] != want[i] {
			t.Fatalf("grants %v, want %v", seq, want)
		}
	}
	// Credits: 100 - 1 - 5/4 - 4 = 93.75.
	if got := v.credits.Level(0); got != 9375*scale/100 {
		t.Fatalf("credit level %d micro, want 93.75 credits", got)
	}
	if g.Headroom(0) || !g.Headroom(second/2) {
		t.Fatal("headroom")
	}
}

func TestGrantString(t *testing.T) {
	for g, want := range map[Grant]string{Denied: "denied", Guaranteed: "guaranteed", Burst: "burst", Lent: "lent", 9: "Grant(9)"} { // order-independent
		if got := g.String(); got != want {
			t.Errorf("%d: %q, want %q", uint8(g), got, want)
		}
	}
}

// Test 8: Validate rejects bad limits, naming the field.
func TestLimitsValidate(t *testing.T) {
	ok := Limits{IOPS: 100, BurstIOPS: 1000, BurstCredits: 10, BytesPerSec: 1 << 20}
	for _, c := range []struct {
		mut  func(*Limits)
		want string
	}{
		{func(l *Limits) {}, ""},
		{func(l *Limits) { l.BurstCredits, l.BytesPerSec, l.BurstIOPS = 0, 0, 100 }, ""},
		{func(l *Limits) { l.IOPS = 0 }, "IOPS must be > 0, got 0"},
		{func(l *Limits) { l.IOPS = -5 }, "IOPS must be > 0, got -5"},
		{func(l *Limits) { l.IOPS, l.BurstIOPS = 1<<40+1, 1<<41 }, "IOPS must be <= 1099511627776"},
		{func(l *Limits) { l.BurstIOPS = 99 }, "BurstIOPS must be >= IOPS (100), got 99"},
		{func(l *Limits) { l.BurstIOPS = 1<<40 + 1 }, "BurstIOPS must be <= 1099511627776"},
		{func(l *Limits) { l.BurstCredits = -1 }, "BurstCredits must be >= 0, got -1"},
		{func(l *Limits) { l.BurstCredits = 1<<40 + 1 }, "BurstCredits must be <= 1099511627776"},
		{func(l *Limits) { l.BytesPerSec = -1 }, "BytesPerSec must be >= 0 (0 = unlimited), got -1"},
		{func(l *Limits) { l.BytesPerSec = 1<<40 + 1 }, "BytesPerSec must be <= 1099511627776"},
	} {
		l := ok
		c.mut(&l)
		err := l.Validate()
		_, nerr := NewVolume(l, 0)
		switch {
		case c.want == "" && (err != nil || nerr != nil):
			t.Errorf("%+v rejected: %v / %v", l, err, nerr)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || nerr == nil):
			t.Errorf("%+v: error %v, want %q (NewVolume: %v)", l, err, c.want, nerr)
		}
	}
}

func BenchmarkVolumeAdmit(b *testing.B) {
	g, _ := NewGlobal(DefaultGlobalConfig(), 0)
	v, _ := NewVolume(Limits{IOPS: 3000, BurstIOPS: 30_000, BurstCredits: 1 << 30, BytesPerSec: 1 << 30}, 0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		v.Admit(int64(i)*10_000, 4096, g) // 100,000 attempts per second: a mix of grants and denials
	}
}

func BenchmarkVolumeAdmitNoGlobal(b *testing.B) {
	v, _ := NewVolume(CloudDiskLimits(100), 0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		v.Admit(int64(i)*1000, 4096, nil)
	}
}

// TestAdmitAllocs: Admit allocates nothing.
func TestAdmitAllocs(t *testing.T) {
	g, _ := NewGlobal(DefaultGlobalConfig(), 0)
	v, _ := NewVolume(Limits{IOPS: 3000, BurstIOPS: 30_000, BurstCredits: 1 << 30, BytesPerSec: 1 << 30}, 0)
	now := int64(0)
	if a := testing.AllocsPerRun(1000, func() {
		now += 10_000
		v.Admit(now, 4096, g)
		g.Observe(1000)
		g.Tick(now, 3)
	}); a != 0 {
		t.Fatalf("%.1f allocations per Admit+Observe+Tick", a)
	}
}
