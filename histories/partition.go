package histories

import (
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/anishathalye/porcupine"
)

// partition is the single-block history of one block of one volume.
type partition struct {
	block uint64
	ops   []porcupine.Operation
}

// splitVolume splits the ops of one volume (given as indices into all, in
// history order) into per-block partitions sorted by block. Every block an
// op touches gets a partition, even if only unknown reads touch it. Unknown
// reads are not passed to Porcupine: they step in every state without
// changing it and their return is +infinity, so they can always be
// linearized last, and leaving them out gives exactly the same verdict while
// sparing the search one pending operation each.
func splitVolume(all []Op, idx []int) ([]partition, error) {
	byBlock := make(map[uint64]*partition)
	for _, i := range idx {
		op := all[i]
		if err := op.validate(); err != nil {
			return nil, fmt.Errorf("op %d (%v): %w", i, op, err)
		}
		ret := op.Return
		if op.Unknown {
			ret = math.MaxInt64
		}
		for j := range uint64(op.Count) {
			b := op.Block + j
			p := byBlock[b]
			if p == nil {
				p = &partition{block: b}
				byBlock[b] = p
			}
			if op.Kind == Read && op.Unknown {
				continue
			}
			in := blockCall{kind: op.Kind, block: b}
			out := blockReturn{unknown: op.Unknown}
			if op.Kind == Write {
				in.value = op.Values[j]
			} else {
				out.value = op.Values[j]
			}
			p.ops = append(p.ops, porcupine.Operation{
				Input:    in,
				Call:     op.Call,
				Output:   out,
				Return:   ret,
				Metadata: opMeta{client: op.Client, index: i},
			})
		}
	}
	parts := make([]partition, 0, len(byBlock))
	for _, b := range slices.Sorted(maps.Keys(byBlock)) {
		p := byBlock[b]
		p.ops = tightenUnknownWrites(p.ops)
		assignClientIDs(p.ops)
		parts = append(parts, *p)
	}
	return parts, nil
}

// tightenUnknownWrites rewrites writes of unknown outcome, which Porcupine must otherwise
// treat as pending forever (each one multiplies the search), in two ways that give
// exactly the same verdict. Both apply only to a value written once in the partition and
// never to 0 (the initial state), so a read of that value can only have seen that write:
//   - a write no known read observed is dropped: it can always be linearized after every
//     other operation, where it changes no read;
//   - a write some read observed took effect before each such read's linearization point,
//     so before the earliest of their returns: that becomes its return.
//
// A read that returned before the write was even called is left alone (it is a violation,
// and Porcupine reports it).
func tightenUnknownWrites(ops []porcupine.Operation) []porcupine.Operation {
	writes := make(map[uint64]int)
	seenBy := make(map[uint64]int64) // value -> earliest return of a known read of it
	for _, o := range ops {
		in, out := o.Input.(blockCall), o.Output.(blockReturn)
		switch {
		case in.kind == Write:
			writes[in.value]++
		case !out.unknown:
			if r, ok := seenBy[out.value]; !ok || o.Return < r {
				seenBy[out.value] = o.Return
			}
		}
	}
	kept := ops[:0:0]
	for _, o := range ops {
		in, out := o.Input.(blockCall), o.Output.(blockReturn)
		if in.kind == Write && out.unknown && in.value != 0 && writes[in.value] == 1 {
			r, seen := seenBy[in.value]
			if !seen {
				continue
			}
			if r >= o.Call {
				o.Return = r
			}
		}
		kept = append(kept, o)
	}
	return kept
}

// assignClientIDs numbers the clients of a partition densely from 0 in
// ascending client order, as Porcupine's visualisation draws one row per
// ClientId. The ids play no part in checking.
func assignClientIDs(ops []porcupine.Operation) {
	ids := make(map[uint64]int)
	for _, o := range ops {
		ids[o.Metadata.(opMeta).client] = 0
	}
	for n, c := range slices.Sorted(maps.Keys(ids)) {
		ids[c] = n
	}
	for k := range ops {
		ops[k].ClientId = ids[ops[k].Metadata.(opMeta).client]
	}
}

// verdict is what a partition's pre-check concluded.
type verdict uint8

const (
	needsSearch verdict = iota // only Porcupine can tell
	linearizable
	violation
)

// precheck decides the partitions that need no search, with rules that give
// exactly Porcupine's verdict:
//   - a known read of Corrupt is never accepted by the model: violation;
//   - a known read of v != 0 needs the state v, which only a write of v
//     (known or unknown) can produce: if there is none, violation;
//   - with no write at all the state is 0 forever, and by the rule above
//     every known read returned 0: linearizable.
func precheck(ops []porcupine.Operation) verdict {
	written := make(map[uint64]struct{})
	for _, o := range ops {
		if in := o.Input.(blockCall); in.kind == Write {
			written[in.value] = struct{}{}
		}
	}
	for _, o := range ops {
		in, out := o.Input.(blockCall), o.Output.(blockReturn)
		if in.kind != Read || out.unknown || out.value == 0 {
			continue
		}
		if _, ok := written[out.value]; !ok || out.value == Corrupt {
			return violation
		}
	}
	if len(written) == 0 {
		return linearizable
	}
	return needsSearch
}
