package histories

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// ConfigResult is the outcome of checking one volume's configuration history.
type ConfigResult struct {
	// Volume is the volume checked.
	Volume uint32
	// Ok is false only when a violation was proven (or the volume's ops are
	// malformed, see Err). When TimedOut is also true, Ok means only that
	// no violation was found; use Linearizable for "proven".
	Ok bool
	// TimedOut reports that the volume could not be decided within its share
	// of the time budget: its linearizability is unknown.
	TimedOut bool
	// Info is Porcupine's linearization info of the volume, for
	// WriteConfigHTML. It is the zero value unless a violation was proven.
	Info porcupine.LinearizationInfo
	// Err is non-nil, wrapping ErrMalformed, when an op of the volume cannot
	// be checked; the volume is then not checked and Ok is false.
	Err error
}

// Linearizable reports whether the volume is proven linearizable: Ok, not
// timed out and no malformed op.
func (r ConfigResult) Linearizable() bool {
	return r.Ok && !r.TimedOut && r.Err == nil
}

// String summarises the result in one line.
func (r ConfigResult) String() string {
	switch {
	case r.Err != nil:
		return fmt.Sprintf("volume %d config: malformed: %v", r.Volume, r.Err)
	case !r.Ok:
		return fmt.Sprintf("volume %d config: NOT linearizable", r.Volume)
	case r.TimedOut:
		return fmt.Sprintf("volume %d config: unknown, timed out", r.Volume)
	default:
		return fmt.Sprintf("volume %d config: linearizable", r.Volume)
	}
}

// CheckConfigs checks every volume's configuration history and returns one
// ConfigResult per volume, sorted by volume. Each volume is one partition (a
// register) checked against configModel.
//
// timeout is the time budget of the whole call, shared among the volumes as
// Check shares a volume's budget among its blocks; 0 means no limit. Volumes
// are searched one after the other in volume order, each getting an equal
// share of the budget left; in a second pass the volumes that timed out share
// what the others left over. A volume still undecided then is reported
// TimedOut (with Ok true). Malformed volumes are reported with Err and not
// checked; they do not stop the others. Each volume proven non-linearizable
// is then re-checked in Porcupine's verbose mode to fill Info, with a budget
// of its own, up to timeout.
//
// Without timeouts the result is deterministic for the same history (Info's
// internal ordering aside).
func CheckConfigs(h *ConfigHistory, timeout time.Duration) []ConfigResult {
	c := checker{timeout: timeout, now: time.Now}
	return c.checkConfigs(h)
}

func (c checker) checkConfigs(h *ConfigHistory) []ConfigResult {
	if h == nil {
		return nil
	}
	byVolume := make(map[uint32][]int)
	for i, op := range h.ops {
		byVolume[op.Volume] = append(byVolume[op.Volume], i)
	}
	volumes := slices.Sorted(maps.Keys(byVolume))
	results := make([]ConfigResult, len(volumes))
	parts := make([][]porcupine.Operation, len(volumes))
	var pending []int // volumes that need a search
	for i, v := range volumes {
		results[i] = ConfigResult{Volume: v, Ok: true}
		ops, err := configPartition(h.ops, byVolume[v])
		if err != nil {
			results[i].Ok, results[i].Err = false, fmt.Errorf("volume %d: %w", v, err)
			continue
		}
		if len(ops) > 0 {
			parts[i] = ops
			pending = append(pending, i)
		}
	}

	model := configModel()
	var deadline time.Time
	if c.timeout > 0 {
		deadline = c.now().Add(c.timeout)
	}
	var bad []int
	// Two passes: every volume first gets an equal share of the time left; the ones that
	// needed more get what the others left over, shared among them.
	for pass := 0; pass < 2 && len(pending) > 0; pass++ {
		var retry []int
		n := len(pending)
		for _, i := range pending {
			budget, ok := c.share(deadline, n)
			n--
			res := porcupine.Unknown
			if ok {
				res = porcupine.CheckOperationsTimeout(model, parts[i], budget)
			}
			switch res {
			case porcupine.Ok:
			case porcupine.Illegal:
				results[i].Ok = false
				bad = append(bad, i)
			default:
				retry = append(retry, i)
			}
		}
		pending = retry
		if c.timeout <= 0 {
			break
		}
	}
	for _, i := range pending {
		results[i].TimedOut = true
	}
	for _, i := range bad {
		_, results[i].Info = porcupine.CheckOperationsVerbose(model, parts[i], c.timeout)
	}
	return results
}

// configPartition validates the ops of one volume (given as indices into all,
// in history order) and returns them as Porcupine operations, rewritten by
// tightenConfigOps.
func configPartition(all []ConfigOp, idx []int) ([]porcupine.Operation, error) {
	for _, i := range idx {
		if err := all[i].validate(); err != nil {
			return nil, fmt.Errorf("config op %d (%v): %w", i, all[i], err)
		}
	}
	return buildConfigOps(all, tightenConfigOps(all, idx)), nil
}

// buildConfigOps turns the kept ops into Porcupine operations.
func buildConfigOps(all []ConfigOp, kept []keptConfigOp) []porcupine.Operation {
	ops := make([]porcupine.Operation, 0, len(kept))
	for _, k := range kept {
		op := all[k.index]
		out := configReturn{unknown: op.Unknown}
		if op.Unknown {
			out.resolved = op.Resolved
		} else {
			out.outcome, out.out = op.Outcome, op.Out
		}
		ops = append(ops, porcupine.Operation{
			Input:    configCall{kind: op.Kind, from: op.FromEpoch},
			Call:     op.Call,
			Output:   out,
			Return:   k.ret,
			Metadata: opMeta{client: op.Client, index: k.index},
		})
	}
	assignClientIDs(ops)
	return ops
}

// keptConfigOp is an op that tightenConfigOps keeps, with the return time
// Porcupine is to use.
type keptConfigOp struct {
	index int
	ret   int64
}

// tightenConfigOps returns the valid ops of one volume to check, in history
// order, with rewrites that give exactly the same verdict but spare Porcupine
// most operations pending forever (each multiplies the search). They rest on
// one fact of the model (with the ops validated): a volume's state moves only
// from epoch e to e+1, starting from epoch 0 (no volume). So reaching epoch N
// takes exactly one producer of each epoch 1..N, and a known op that needs
// the state to be at epoch N >= E before it steps (its "need") comes after
// the producer of E.
//
// Dropped, as they step without changing the state in every state they may be
// linearized in, so that they can always be linearized as no-ops:
//   - known ops refused as Invalid;
//   - unknown reads and grants, unknown changes with no Resolved
//     configuration, and unknown changes whose Resolved configuration could
//     not apply in any reachable state (a Create not to epoch 1, a CAS not to
//     FromEpoch+1, a CAS from epoch 0 or a Set to epoch 1: epoch 0 is only
//     ever "no volume");
//   - an unknown change to epoch E when a known OK change claims to produce
//     E: in any linearization the known one produced E, so the unknown one
//     did not take effect;
//   - an unknown change to an epoch E no known op needs: once the state
//     reaches E no known op can follow, so the unknown ops from there on can
//     all be linearized as not taking effect;
//   - an unknown change to the same configuration as another one called no
//     later: whichever took effect, the earlier one can take its place.
//
// Tightened: a remaining unknown change to epoch E either took effect, and
// then before every known op needing an epoch >= E, or did not, and then it
// can be linearized anywhere after its call. Either way it can be linearized
// before the earliest return T of the known ops needing E or more, which
// becomes its return, unless T is before its call (then it cannot have been
// what produced E, and it is left pending).
func tightenConfigOps(all []ConfigOp, idx []int) []keptConfigOp {
	var known, unknown []int
	claimed := make(map[uint64]bool) // epochs produced by known OK changes
	type needRet struct {
		need uint64
		ret  int64
	}
	var needs []needRet
	for _, i := range idx {
		op := all[i]
		switch {
		case !op.Unknown && op.Outcome == OutcomeInvalid:
		case !op.Unknown:
			known = append(known, i)
			needs = append(needs, needRet{configNeed(op), op.Return})
			if op.Outcome == OutcomeOK && op.Kind.changes() {
				claimed[op.Out.Epoch] = true
			}
		case op.Kind.changes() && mayApply(op):
			unknown = append(unknown, i)
		}
	}
	// minRet[k] is the earliest return of the known ops needing needs[k].need or more.
	sort.Slice(needs, func(a, b int) bool { return needs[a].need < needs[b].need })
	minRet := make([]int64, len(needs))
	for k := len(needs) - 1; k >= 0; k-- {
		minRet[k] = needs[k].ret
		if k+1 < len(needs) {
			minRet[k] = min(minRet[k], minRet[k+1])
		}
	}
	var maxNeed uint64
	if len(needs) > 0 {
		maxNeed = needs[len(needs)-1].need
	}

	first := make(map[ConfigState]int) // configuration -> earliest-called unknown change to it
	for _, i := range unknown {
		r := all[i].Resolved
		if claimed[r.Epoch] || r.Epoch > maxNeed {
			continue
		}
		if j, ok := first[r]; !ok || all[i].Call < all[j].Call {
			first[r] = i
		}
	}
	kept := make([]keptConfigOp, 0, len(known)+len(first))
	for _, i := range known {
		kept = append(kept, keptConfigOp{index: i, ret: all[i].Return})
	}
	for r, i := range first {
		ret := int64(math.MaxInt64)
		// r.Epoch <= maxNeed: some known op needs r.Epoch or more.
		if k := sort.Search(len(needs), func(k int) bool { return needs[k].need >= r.Epoch }); minRet[k] >= all[i].Call {
			ret = minRet[k]
		}
		kept = append(kept, keptConfigOp{index: i, ret: ret})
	}
	slices.SortFunc(kept, func(a, b keptConfigOp) int { return a.index - b.index })
	return kept
}

// configNeed returns the epoch the state must have for the known, not
// Invalid, op to step.
func configNeed(op ConfigOp) uint64 {
	switch {
	case op.Outcome == OutcomeNotFound:
		return 0
	case op.Outcome == OutcomeConflict:
		return op.Out.Epoch
	}
	switch op.Kind {
	case ConfigCreate:
		return 0
	case ConfigCAS:
		return op.FromEpoch
	case ConfigSet:
		if op.Out.Epoch == 0 {
			return 0 // never steps
		}
		return op.Out.Epoch - 1
	default: // read, grant
		return op.Out.Epoch
	}
}

// mayApply reports whether the unknown change op could take effect in some
// reachable state: states at epoch 0 are "no volume", all others exist.
func mayApply(op ConfigOp) bool {
	r := op.Resolved
	switch op.Kind {
	case ConfigCreate:
		return r.Epoch == 1
	case ConfigCAS:
		return op.FromEpoch >= 1 && r.Epoch == op.FromEpoch+1
	case ConfigSet:
		return r.Epoch >= 2
	default:
		return false
	}
}

// WriteConfigHTML writes Porcupine's HTML visualisation of a failing config
// result's volume to the file at path, creating or truncating it.
func WriteConfigHTML(r ConfigResult, path string) error {
	if len(r.Info.PartialLinearizations()) == 0 {
		return fmt.Errorf("write %s: volume %d config: %w", path, r.Volume, ErrNoInfo)
	}
	if err := porcupine.VisualizePath(configModel(), r.Info, path); err != nil {
		return fmt.Errorf("write %s: volume %d config: %w", path, r.Volume, err)
	}
	return nil
}
