package histories

import (
	"math/rand/v2"
	"slices"

	"pgregory.net/rapid"
)

// source draws integers in [0, n); it lets the same generator run on rapid
// (for shrinking) and on math/rand (for benchmarks).
type source interface {
	intn(n int) int
}

type rapidSource struct{ t *rapid.T }

func (s rapidSource) intn(n int) int { return rapid.IntRange(0, n-1).Draw(s.t, "n") }

type randSource struct{ r *rand.Rand }

func (s randSource) intn(n int) int { return s.r.IntN(n) }

// genParams shapes a generated history.
type genParams struct {
	ops        int
	clients    int
	volumes    int
	blocks     int
	maxCount   int
	sequential bool // ops never overlap (except unknown ones, whose return is +inf)
	unknownPct int  // percentage of ops with an unknown outcome
	valueRange int  // 0: every written value is fresh; else values in [1, valueRange]
	endRead    bool // the last op is a known read
}

// key names one block of one volume.
type key struct {
	volume uint32
	block  uint64
}

// generate returns a history that is linearizable by construction: every op
// gets a linearization point inside its interval (unknown writes take effect
// at some point after their call, or never), ops are applied to a reference
// block map in linearization-point order, and reads record what the map held.
func generate(src source, p genParams) *History {
	type genOp struct {
		op     Op
		lin    int64
		effect bool
	}
	ops := make([]genOp, p.ops)
	clock := make([]int64, p.clients)
	var global int64
	fresh := uint64(0)
	for k := range ops {
		c := src.intn(p.clients)
		op := Op{
			Client: uint64(c) * 1000003, // sparse ids: visualisation must densify
			Volume: uint32(1 + src.intn(p.volumes)),
			Kind:   Read,
			Block:  uint64(src.intn(p.blocks)),
		}
		op.Count = uint32(1 + src.intn(min(p.maxCount, p.blocks-int(op.Block))))
		if src.intn(2) == 0 {
			op.Kind = Write
		}
		op.Unknown = src.intn(100) < p.unknownPct
		if p.endRead && k == len(ops)-1 {
			op.Kind, op.Unknown = Read, false
		}
		var dur int64
		if p.sequential {
			op.Call = global + 1 + int64(src.intn(3))
			dur = int64(src.intn(10))
			global = op.Call + dur
		} else {
			op.Call = clock[c] + 1 + int64(src.intn(20))
			dur = int64(src.intn(30))
			clock[c] = op.Call + dur
		}
		op.Return = op.Call + dur
		g := genOp{effect: true}
		if op.Unknown {
			// The effect may land after the client gave up, or never.
			g.effect = src.intn(2) == 0
			g.lin = op.Call + int64(src.intn(int(dur)+50))
			op.Return = op.Call - int64(src.intn(5)) // ignored: must not matter
		} else {
			g.lin = op.Call + int64(src.intn(int(dur)+1))
		}
		op.Values = make([]uint64, op.Count)
		for i := range op.Values {
			switch {
			case op.Kind == Read && op.Unknown:
				op.Values[i] = []uint64{Corrupt, 0, 424242}[src.intn(3)] // garbage
			case op.Kind == Read:
				// filled in below
			case p.valueRange > 0:
				op.Values[i] = uint64(1 + src.intn(p.valueRange))
			default:
				fresh++
				op.Values[i] = fresh
			}
		}
		g.op = op
		ops[k] = g
	}
	order := make([]int, len(ops))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case ops[a].lin < ops[b].lin:
			return -1
		case ops[a].lin > ops[b].lin:
			return 1
		}
		return 0
	})
	state := make(map[key]uint64)
	for _, k := range order {
		g := &ops[k]
		if !g.effect || (g.op.Kind == Read && g.op.Unknown) {
			continue
		}
		for i := range g.op.Values {
			kb := key{g.op.Volume, g.op.Block + uint64(i)}
			if g.op.Kind == Write {
				state[kb] = g.op.Values[i]
			} else {
				g.op.Values[i] = state[kb]
			}
		}
	}
	h := &History{}
	for _, g := range ops {
		h.Add(g.op)
	}
	return h
}

// writtenValues returns, per block, every value any write (known or unknown)
// wrote to it.
func writtenValues(h *History) map[key]map[uint64]bool {
	w := make(map[key]map[uint64]bool)
	for _, op := range h.ops {
		if op.Kind != Write {
			continue
		}
		for i, v := range op.Values {
			kb := key{op.Volume, op.Block + uint64(i)}
			if w[kb] == nil {
				w[kb] = make(map[uint64]bool)
			}
			w[kb][v] = true
		}
	}
	return w
}

// knownReads returns the indices of the reads with a known outcome.
func knownReads(h *History) []int {
	var r []int
	for i, op := range h.ops {
		if op.Kind == Read && !op.Unknown && op.Count > 0 {
			r = append(r, i)
		}
	}
	return r
}
