package qos

import (
	"testing"

	"pgregory.net/rapid"
)

const second = int64(1_000_000_000)

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

