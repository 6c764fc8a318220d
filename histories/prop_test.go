package histories

import (
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// drawParams draws history parameters; sequential and unknownPct are fixed
// by the caller.
func drawParams(t *rapid.T, sequential bool, unknownPct int) genParams {
	return genParams{
		ops:        rapid.IntRange(1, 40).Draw(t, "ops"),
		clients:    rapid.IntRange(1, 4).Draw(t, "clients"),
		volumes:    rapid.IntRange(1, 2).Draw(t, "volumes"),
		blocks:     rapid.IntRange(1, 6).Draw(t, "blocks"),
		maxCount:   rapid.IntRange(1, 3).Draw(t, "maxCount"),
		valueRange: rapid.SampledFrom([]int{0, 2, 5}).Draw(t, "valueRange"),
		sequential: sequential,
		unknownPct: unknownPct,
		endRead:    true,
	}
}

func requireLinearizable(t *rapid.T, h *History) {
	for _, res := range Check(h, 30*time.Second) {
		if !res.Linearizable() {
			t.Fatalf("generated history not linearizable: %v\n%v", res, h.Ops())
		}
	}
}

// requireViolation checks that the volume of op i fails at block b.
func requireViolation(t *rapid.T, h *History, i int, b uint64) {
	vol := h.ops[i].Volume
	for _, res := range Check(h, 30*time.Second) {
		if res.Volume != vol {
			continue
		}
		if res.Ok || res.TimedOut || res.Err != nil || res.BadBlock != b {
			t.Fatalf("mutated read of op %d block %d: got %v (timedOut=%v)\n%v", i, b, res, res.TimedOut, h.Ops())
		}
		return
	}
	t.Fatalf("no result for volume %d", vol)
}

// TestSequentialNeverWritten: a sequential history from a reference block
// map is linearizable; changing one read value to one never written to its
// block makes it a violation. Unknown ops are allowed.
func TestSequentialNeverWritten(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := generate(rapidSource{t}, drawParams(t, true, rapid.SampledFrom([]int{0, 20}).Draw(t, "unknownPct")))
		requireLinearizable(t, h)

		reads := knownReads(h)
		i := rapid.SampledFrom(reads).Draw(t, "read")
		j := rapid.IntRange(0, int(h.ops[i].Count)-1).Draw(t, "pos")
		b := h.ops[i].Block + uint64(j)
		written := writtenValues(h)[key{h.ops[i].Volume, b}]
		v := rapid.SampledFrom([]uint64{Corrupt, 1, 2, 3, 7, 1 << 40}).Draw(t, "value")
		for written[v] {
			v++
		}
		h.ops[i].Values[j] = v
		requireViolation(t, h, i, b)
	})
}

// TestSequentialStale: in a sequential history where every outcome is known
// each read has exactly one acceptable value, so any other value, even one
// written earlier (a stale read), is a violation.
func TestSequentialStale(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := generate(rapidSource{t}, drawParams(t, true, 0))
		requireLinearizable(t, h)

		reads := knownReads(h)
		i := rapid.SampledFrom(reads).Draw(t, "read")
		j := rapid.IntRange(0, int(h.ops[i].Count)-1).Draw(t, "pos")
		b := h.ops[i].Block + uint64(j)
		old := h.ops[i].Values[j]
		candidates := []uint64{0, 1 << 50}
		for v := range writtenValues(h)[key{h.ops[i].Volume, b}] {
			candidates = append(candidates, v)
		}
		var others []uint64
		for _, v := range candidates {
			if v != old {
				others = append(others, v)
			}
		}
		h.ops[i].Values[j] = rapid.SampledFrom(sortedUnique(others)).Draw(t, "value")
		requireViolation(t, h, i, b)
	})
}

// TestConcurrentLinearizable: concurrent histories from a reference block
// map with linearization points inside the intervals, unknown outcomes and
// repeated values are always linearizable.
func TestConcurrentLinearizable(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := generate(rapidSource{t}, drawParams(t, false, rapid.SampledFrom([]int{0, 10, 30}).Draw(t, "unknownPct")))
		requireLinearizable(t, h)
	})
}

// TestCheckDeterministic: the same history always gives the same results.
func TestCheckDeterministic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := generate(rapidSource{t}, drawParams(t, false, 10))
		if len(knownReads(h)) > 0 && rapid.Bool().Draw(t, "mutate") {
			i := rapid.SampledFrom(knownReads(h)).Draw(t, "read")
			h.ops[i].Values[0]++
		}
		a, b := Check(h, 0), Check(h, 0)
		if len(a) != len(b) {
			t.Fatalf("result counts differ: %d vs %d", len(a), len(b))
		}
		for k := range a {
			if a[k].String() != b[k].String() || a[k].Ok != b[k].Ok || a[k].BadBlock != b[k].BadBlock {
				t.Fatalf("results differ: %v vs %v", a[k], b[k])
			}
		}
	})
}

func sortedUnique(vs []uint64) []uint64 {
	vs = slices.Clone(vs)
	slices.Sort(vs)
	return slices.Compact(vs)
}
