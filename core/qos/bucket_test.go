package qos

import (
	"math"
	"math/big"
	"testing"

	"pgregory.net/rapid"
)

// Never admits more than rate × time + capacity (the token-bucket bound), for any
// schedule of requests and rate changes.
func TestBucketNeverOveradmits(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		rate := rapid.Int64Range(0, 100_000).Draw(t, "rate")
		capacity := rapid.Int64Range(1, 10_000).Draw(t, "capacity")
		b, err := NewBucket(rate, capacity, capacity, 0)
		if err != nil {
			t.Fatal(err)
		}
		now, admitted := int64(0), int64(0)
		steps := rapid.IntRange(1, 300).Draw(t, "steps")
		for i := 0; i < steps; i++ {
			now += rapid.Int64Range(0, second/10).Draw(t, "dt")
			n := rapid.Int64Range(1, 50).Draw(t, "n")
			if b.Take(now, n) {
				admitted += n
			}
			// rate*now/1e9 rounded up, plus the initial fill
			bound := capacity + (rate*now+second-1)/second
			if admitted > bound {
				t.Fatalf("admitted %d > bound %d at t=%d", admitted, bound, now)
			}
		}
	})
}

// Long-run rate: a saturating taker gets rate tokens per second within one token.
func TestBucketLongRunRate(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		rate := rapid.Int64Range(1, 50_000).Draw(t, "rate")
		step := rapid.Int64Range(second/10_000, second/100).Draw(t, "step")
		// Capacity covers what is left below one token plus one step's refill, so a taker that drains every step loses nothing
		// to the cap (a full bucket discards what would overflow it, by design).
		b, _ := NewBucket(rate, 2+rate*step/second, 0, 0)
		dur := 10 * second
		got, end := int64(0), int64(0)
		for now := int64(0); now <= dur; now += step {
			for b.Take(now, 1) {
				got++
			}
			end = now
		}
		want := rate * end / second
		if got < want-1 || got > want+1 {
			t.Fatalf("rate %d/s over 10 s: admitted %d, want %d±1", rate, got, want)
		}
	})
}

func TestRateChangeMidStream(t *testing.T) {
	b, _ := NewBucket(1000, 1, 0, 0)
	got := 0
	for now := int64(0); now <= 5*second; now += second / 10000 {
		if now == 2*second {
			b.SetRate(now, 100)
		}
		for b.Take(now, 1) {
			got++
		}
	}
	want := 2*1000 + 3*100
	if got < want-2 || got > want+2 {
		t.Fatalf("admitted %d, want %d", got, want)
	}
}

// The carry scheme is exact: however an interval is cut into refills, and whatever the
// level (debt included), the micro-tokens accrued from t0 to t are floor(rate·(t-t0)/1000)
// as long as the bucket does not reach its capacity.
func TestBucketRefillExact(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		rate := rapid.Int64Range(0, 1<<40).Draw(t, "rate")
		b := makeBucket(rate, maxFigure, 0)
		start := rapid.Int64Range(-maxFigure*scale, 0).Draw(t, "start")
		b.level = start
		now := int64(0)
		steps := rapid.IntRange(1, 50).Draw(t, "steps")
		for i := 0; i < steps; i++ {
			now += rapid.Int64Range(0, second).Draw(t, "dt")
			got := b.Level(now) - start
			want := mulDiv(rate, now, 1000)
			if want >= b.capacity-start { // reached the capacity: then it is full
				want = b.capacity - start
			}
			if got != want {
				t.Fatalf("rate %d from %d after %d ns: accrued %d micro-tokens, want %d", rate, start, now, got, want)
			}
		}
	})
}

// A long idle period at the largest rate neither overflows nor loses the cap.
func TestBucketLongIdleNoOverflow(t *testing.T) {
	b, err := NewBucket(maxFigure, maxFigure, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	b.ForceMicro(0, maxFigure*scale, -maxFigure*scale) // deepest debt
	if got := b.Tokens(0); got != -maxFigure {
		t.Fatalf("debt: %d tokens, want %d", got, -int64(maxFigure))
	}
	if got := b.Tokens(1 << 62); got != maxFigure {
		t.Fatalf("after a long idle period: %d tokens, want the capacity %d", got, int64(maxFigure))
	}
}

// Forced takes go into debt down to the floor and no further; a bucket in debt refills
// through zero and grants nothing until it is positive again.
func TestBucketForcedDebt(t *testing.T) {
	b, _ := NewBucket(1000, 10, 2, 0) // 1 token per ms
	b.ForceMicro(0, 5*scale, -4*scale)
	if got := b.Level(0); got != -3*scale {
		t.Fatalf("level %d, want -3 tokens", got)
	}
	b.ForceMicro(0, 5*scale, -4*scale)
	if got := b.Tokens(0); got != -4 {
		t.Fatalf("floored at %d tokens, want -4", got)
	}
	b.ForceMicro(0, scale, -2*scale) // already below this floor: unchanged, never raised
	if got := b.Tokens(0); got != -4 {
		t.Fatalf("a forced take raised the level to %d", got)
	}
	if b.Take(4_000_000, 1) { // level 0 at 4 ms
		t.Fatal("took a token from an empty bucket")
	}
	if got := b.Level(4_500_000); got != scale/2 {
		t.Fatalf("level %d half a token after the debt, want %d", got, scale/2)
	}
	if b.Take(4_500_000, 1) || !b.TakeMicro(4_500_000, scale/2) || b.Level(4_500_000) != 0 {
		t.Fatal("micro-token take")
	}
	if got := b.Tokens(5_499_999); got != 0 {
		t.Fatalf("%d whole tokens just below one", got)
	}
	if got := b.Tokens(5_500_000); got != 1 {
		t.Fatalf("%d whole tokens, want 1", got)
	}
	if b.TakeMicro(5_000_000, -1) || b.Take(5_000_000, -1) {
		t.Fatal("negative take accepted")
	}
}

// SetCapacity clamps the level (a debt is kept) and SetLevel clamps to [floor, capacity].
func TestBucketCapacityAndLevel(t *testing.T) {
	b, _ := NewBucket(0, 100, 100, 0)
	b.SetCapacity(0, 10)
	if b.Tokens(0) != 10 || b.Capacity() != 10 {
		t.Fatalf("after shrinking: %d tokens, capacity %d", b.Tokens(0), b.Capacity())
	}
	b.SetCapacity(0, 1000)
	if b.Tokens(0) != 10 {
		t.Fatal("growing the capacity added tokens")
	}
	b.ForceMicro(0, 50*scale, -100*scale)
	b.SetCapacity(0, 5)
	if b.Tokens(0) != -40 {
		t.Fatalf("shrinking the capacity changed a debt: %d", b.Tokens(0))
	}
	b.SetLevel(0, 7*scale, 0)
	if b.Tokens(0) != 5 {
		t.Fatalf("SetLevel above the capacity: %d", b.Tokens(0))
	}
	b.SetLevel(0, -7*scale, -2*scale)
	if b.Tokens(0) != -2 {
		t.Fatalf("SetLevel below the floor: %d", b.Tokens(0))
	}
	b.SetCapacity(0, -1)
	b.SetRate(0, -1)
	if b.Capacity() != 5 || b.Rate() != 0 {
		t.Fatal("invalid capacity or rate accepted")
	}
}

func TestBadBucket(t *testing.T) {
	for _, c := range [][4]int64{{-1, 1, 0, 0}, {1, 0, 0, 0}, {1, 1, 2, 0}, {1, 1, -1, 0}, {maxFigure + 1, 1, 0, 0}, {1, maxFigure + 1, 0, 0}} {
		if _, err := NewBucket(c[0], c[1], c[2], c[3]); err == nil {
			t.Errorf("NewBucket%v accepted", c)
		}
	}
}

func TestMulDiv(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := rapid.Int64Range(0, math.MaxInt64).Draw(t, "a")
		b := rapid.Int64Range(0, math.MaxInt64).Draw(t, "b")
		c := rapid.Int64Range(1, math.MaxInt64).Draw(t, "c")
		want := new(big.Int).Mul(big.NewInt(a), big.NewInt(b))
		want.Quo(want, big.NewInt(c))
		if !want.IsInt64() {
			want.SetInt64(math.MaxInt64)
		}
		if got := mulDiv(a, b, c); got != want.Int64() {
			t.Fatalf("mulDiv(%d, %d, %d) = %d, want %d", a, b, c, got, want)
		}
	})
}
