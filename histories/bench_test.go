package histories

import (
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkCheck checks a 2000-op, 16-block, 8-client concurrent history on
// one volume with multi-block ops, repeated values and unknown outcomes.
func BenchmarkCheck(b *testing.B) {
	h := generate(randSource{rand.New(rand.NewPCG(1, 2))}, genParams{
		ops: 2000, clients: 8, volumes: 1, blocks: 16, maxCount: 4,
		unknownPct: 2, valueRange: 50,
	})
	for b.Loop() {
		res := Check(h, time.Minute)
		if len(res) != 1 || !res[0].Linearizable() {
			b.Fatalf("got %v", res)
		}
	}
}
