package histories

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/anishathalye/porcupine"
)

// Result is the outcome of checking one volume.
type Result struct {
	// Volume is the volume checked.
	Volume uint32
	// Ok is false only when a violation was proven (or the volume's ops
	// are malformed, see Err). When TimedOut is also true, Ok means only
	// that no violation was found; use Linearizable for "proven".
	Ok bool
	// TimedOut reports that at least one block partition could not be
	// decided within the time budget: its linearizability is unknown.
	TimedOut bool
	// BadBlock is the lowest block whose partition is not linearizable
	// (or, with Err, the first block of the malformed op). Valid when !Ok.
	BadBlock uint64
	// Partitions is the number of blocks of the volume touched by any op.
	Partitions int
	// Undecided is the number of partitions that timed out or were not
	// checked because the volume's time budget was spent.
	Undecided int
	// Info is Porcupine's linearization info of the BadBlock partition,
	// for WriteHTML. It is the zero value when Ok or when Err is set.
	Info porcupine.LinearizationInfo
	// Err is non-nil, wrapping ErrMalformed, when an op of the volume
	// cannot be checked; the volume is then not checked and Ok is false.
	Err error
}

// Linearizable reports whether the volume is proven linearizable: Ok, with
// no partition timed out and no malformed op.
func (r Result) Linearizable() bool {
	return r.Ok && !r.TimedOut && r.Err == nil
}

// String summarises the result in one line.
func (r Result) String() string {
	switch {
	case r.Err != nil:
		return fmt.Sprintf("volume %d: malformed: %v", r.Volume, r.Err)
	case !r.Ok:
		return fmt.Sprintf("volume %d: NOT linearizable at block %d (%d partitions)", r.Volume, r.BadBlock, r.Partitions)
	case r.TimedOut:
		return fmt.Sprintf("volume %d: unknown, %d of %d partitions timed out", r.Volume, r.Undecided, r.Partitions)
	default:
		return fmt.Sprintf("volume %d: linearizable (%d partitions)", r.Volume, r.Partitions)
	}
}

// Check checks every volume in the history and returns one Result per
// volume, sorted by volume. Ops are split per volume, then per block: a
// multi-block op contributes one single-block operation to each block's
// partition, with the same call and return times.
//
// timeout is the time budget of each volume; 0 means no limit. Partitions
// are checked one after the other in block order, and each partition that
// needs a search gets an equal share of the volume's remaining budget, so
// time an easy partition does not use goes to the harder ones after it, and
// a hard partition cannot starve the others. Once the budget is spent, the
// remaining partitions are reported Undecided. A partition that times out
// sets TimedOut, not Ok = false. Checking a volume stops at its first (lowest)
// non-linearizable block, which is then re-checked in Porcupine's verbose
// mode to fill Info; that re-check gets a budget of its own, up to timeout.
//
// Without timeouts the result is deterministic for the same history (Info's
// internal ordering aside).
func Check(h *History, timeout time.Duration) []Result {
	c := checker{timeout: timeout, now: time.Now}
	return c.check(h)
}

// checker carries Check's parameters; now is replaceable in tests.
type checker struct {
	timeout time.Duration
	now     func() time.Time
}

func (c checker) check(h *History) []Result {
	if h == nil {
		return nil
	}
	byVolume := make(map[uint32][]int)
	for i, op := range h.ops {
		byVolume[op.Volume] = append(byVolume[op.Volume], i)
	}
	results := make([]Result, 0, len(byVolume))
	for _, v := range slices.Sorted(maps.Keys(byVolume)) {
		results = append(results, c.checkVolume(v, h.ops, byVolume[v]))
	}
	return results
}

func (c checker) checkVolume(volume uint32, all []Op, idx []int) Result {
	r := Result{Volume: volume, Ok: true}
	parts, err := splitVolume(all, idx)
	if err != nil {
		r.Ok, r.Err = false, fmt.Errorf("volume %d: %w", volume, err)
		r.BadBlock = firstBadBlock(all, idx)
		return r
	}
	r.Partitions = len(parts)

	verdicts := make([]verdict, len(parts))
	searches := 0
	for i, p := range parts {
		verdicts[i] = precheck(p.ops)
		if verdicts[i] == needsSearch {
			searches++
		}
	}

	model := blockModel()
	var deadline time.Time
	if c.timeout > 0 {
		deadline = c.now().Add(c.timeout)
	}
	// Two passes: every partition first gets an equal share of the time left; the ones
	// that needed more get what the others left over, shared among them.
	var retry []int
	for pass := 0; pass < 2; pass++ {
		order := retry
		if pass == 0 {
			order = make([]int, len(parts))
			for i := range order {
				order[i] = i
			}
		} else {
			searches = len(retry)
		}
		retry = nil
		for _, i := range order {
			p := parts[i]
			v := verdicts[i]
			if v == needsSearch {
				budget, ok := c.share(deadline, searches)
				searches--
				if ok {
					switch porcupine.CheckOperationsTimeout(model, p.ops, budget) {
					case porcupine.Ok:
						v = linearizable
					case porcupine.Illegal:
						v = violation
					}
				}
				if v == needsSearch {
					retry = append(retry, i)
					continue
				}
				verdicts[i] = v
			}
			if v == violation {
				r.Ok = false
				r.BadBlock = p.block
				r.TimedOut, r.Undecided = len(retry) > 0, len(retry)
				_, r.Info = porcupine.CheckOperationsVerbose(model, p.ops, c.timeout)
				return r
			}
		}
		if len(retry) == 0 || c.timeout <= 0 {
			break
		}
	}
	if len(retry) > 0 {
		r.TimedOut = true
		r.Undecided = len(retry)
	}
	return r
}

// share returns the budget of the next of n partitions still to search:
// an equal share of the time left before deadline. It returns false when
// the time is up. With no timeout it returns 0, Porcupine's "no limit".
func (c checker) share(deadline time.Time, n int) (time.Duration, bool) {
	if c.timeout <= 0 {
		return 0, true
	}
	left := deadline.Sub(c.now())
	if left <= 0 {
		return 0, false
	}
	budget := left / time.Duration(n)
	if budget <= 0 {
		budget = left
	}
	return budget, true
}

// firstBadBlock returns the first block of the first malformed op.
func firstBadBlock(all []Op, idx []int) uint64 {
	for _, i := range idx {
		if all[i].validate() != nil {
			return all[i].Block
		}
	}
	return 0
}
