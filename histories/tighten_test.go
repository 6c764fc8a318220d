package histories

import (
	"math"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"pgregory.net/rapid"
)

// TestTightenUnknownWritesIsExact: on random single-block histories with unknown-outcome
// writes, Porcupine's verdict is the same with and without the rewrite.
func TestTightenUnknownWritesIsExact(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 9).Draw(t, "n")
		var ops []porcupine.Operation
		var values []uint64
		for i := 0; i < n; i++ {
			call := rapid.Int64Range(0, 40).Draw(t, "call")
			ret := call + rapid.Int64Range(0, 20).Draw(t, "len")
			if rapid.Bool().Draw(t, "write") {
				v := uint64(i + 1)
				values = append(values, v)
				unknown := rapid.Bool().Draw(t, "unknown")
				r := ret
				if unknown {
					r = math.MaxInt64
				}
				ops = append(ops, porcupine.Operation{ClientId: i, Input: blockCall{kind: Write, value: v}, Call: call,
					Output: blockReturn{unknown: unknown}, Return: r, Metadata: opMeta{}})
				continue
			}
			v := uint64(0)
			if len(values) > 0 && rapid.Bool().Draw(t, "nonzero") {
				v = values[rapid.IntRange(0, len(values)-1).Draw(t, "which")]
			}
			ops = append(ops, porcupine.Operation{ClientId: i, Input: blockCall{kind: Read}, Call: call,
				Output: blockReturn{value: v}, Return: ret, Metadata: opMeta{}})
		}
		m := blockModel()
		before := porcupine.CheckOperationsTimeout(m, ops, 5*time.Second)
		after := porcupine.CheckOperationsTimeout(m, tightenUnknownWrites(append([]porcupine.Operation(nil), ops...)), 5*time.Second)
		if before != after {
			t.Fatalf("verdict changed by the rewrite: %v -> %v\n%+v", before, after, ops)
		}
	})
}

// TestTightenUnknownWritesShrinks: the rewrite drops unobserved unknown writes and bounds
// observed ones by their first observer.
func TestTightenUnknownWritesShrinks(t *testing.T) {
	ops := []porcupine.Operation{
		{Input: blockCall{kind: Write, value: 7}, Call: 0, Output: blockReturn{unknown: true}, Return: math.MaxInt64},
		{Input: blockCall{kind: Write, value: 8}, Call: 1, Output: blockReturn{unknown: true}, Return: math.MaxInt64},
		{Input: blockCall{kind: Read}, Call: 5, Output: blockReturn{value: 8}, Return: 9},
		{Input: blockCall{kind: Read}, Call: 12, Output: blockReturn{value: 8}, Return: 15},
	}
	got := tightenUnknownWrites(ops)
	if len(got) != 3 {
		t.Fatalf("unobserved unknown write not dropped: %d ops", len(got))
	}
	if w := got[0]; w.Input.(blockCall).value != 8 || w.Return != 9 {
		t.Fatalf("observed unknown write not bounded by its first observer: %+v", w)
	}
}
