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

// The cloud-disk vectors: a 100 GiB volume bursts at 3,000 IOPS for 2,000 s, then runs
// at its 300 IOPS baseline.
func TestCloudDiskBurstVector(t *testing.T) {
	l := CloudDiskLimits(100)
	if l.BaselineIOPS != 300 || l.BurstIOPS != 3000 || l.BurstCredits != 5_400_000 {
		t.Fatalf("limits %+v", l)
	}
	if CloudDiskLimits(10).BaselineIOPS != 100 {
		t.Fatal("minimum baseline is 100 IOPS")
	}
	v, _ := NewVolume(l, 0)
	// Saturate in 1 ms steps; count admissions per second.
	step := second / 1000
	perSec := map[int64]int64{}
	for now := int64(0); now < 2100*second; now += step {
		for v.Admit(now) {
			perSec[now/second]++
		}
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

// Credits refill at the baseline while the volume runs below it.
func TestCreditsRefillBelowBaseline(t *testing.T) {
	v, _ := NewVolume(VolumeLimits{BaselineIOPS: 100, BurstIOPS: 1000, BurstCredits: 10_000}, 0)
	for v.Admit(0) {
	}
	before := v.Credits(0)
	// 50 IOPS for 10 s: net +50 credits per second.
	for now := int64(0); now < 10*second; now += second / 50 {
		v.Admit(now)
	}
	if got := v.Credits(10 * second); got < before+480 || got > before+520 {
		t.Fatalf("credits %d after 10 s at half baseline, want about %d", got, before+500)
	}
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

func TestBadLimits(t *testing.T) {
	for _, l := range []VolumeLimits{{0, 10, 10}, {10, 5, 10}, {10, 10, 0}} {
		if _, err := NewVolume(l, 0); err == nil {
			t.Errorf("%+v accepted", l)
		}
	}
	if _, err := NewBucket(-1, 1, 0, 0); err == nil {
		t.Error("negative rate accepted")
	}
}

func BenchmarkAdmit(b *testing.B) {
	v, _ := NewVolume(CloudDiskLimits(100), 0)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		v.Admit(int64(i) * 1000)
	}
}
