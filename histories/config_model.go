package histories

import (
	"fmt"
	"math"

	"github.com/anishathalye/porcupine"
)

// configCall is the porcupine input of a configuration operation.
type configCall struct {
	kind ConfigKind
	from uint64 // FromEpoch, for ConfigCAS
}

// configReturn is the porcupine output of a configuration operation.
type configReturn struct {
	unknown  bool
	outcome  ConfigOutcome // ignored when unknown
	out      ConfigState   // ignored when unknown
	resolved ConfigState   // only when unknown: the effect it would have had
}

// configModel returns the sequential specification of one volume's
// configuration: the state is a ConfigState, initially {0, ""} (no volume).
//
//   - Read OK: Out == state. Read NotFound: no volume.
//   - Create OK: no volume and Out.Epoch == 1; the state becomes Out. Create
//     Conflict: the volume exists and Out == state.
//   - CAS OK: the volume exists, state.Epoch == FromEpoch and Out.Epoch ==
//     FromEpoch+1; the state becomes Out. CAS Conflict: Out == state (it may
//     have failed for another reason than the epoch).
//   - Set OK: the volume exists and Out.Epoch == state.Epoch+1; the state
//     becomes Out. Set Conflict: Out == state.
//   - Grant OK or Conflict: Out == state.
//   - NotFound, any kind: no volume. Invalid, any kind: anything goes.
//   - Unknown outcome: the op did not take effect (state unchanged) or, for
//     a change with a Resolved configuration that could have applied in
//     this state (as an OK of the same kind would), the state becomes
//     Resolved.
//
// Only OK changes and unknown ones change the state, always from epoch e to
// e+1, and only Create applies to "no volume".
func configModel() porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Init:                      func() []any { return []any{ConfigState{}} },
		Step:                      stepConfig,
		Equal:                     func(a, b any) bool { return a.(ConfigState) == b.(ConfigState) },
		Hash:                      func(s any) uint64 { return hashConfigState(s.(ConfigState)) },
		DescribeOperation:         describeConfigOperation,
		DescribeState:             func(s any) string { return s.(ConfigState).String() },
		DescribeOperationMetadata: describeMetadata,
	}
	return nm.ToModel()
}

func stepConfig(state, input, output any) []any {
	s := state.(ConfigState)
	in := input.(configCall)
	out := output.(configReturn)
	if out.unknown {
		if r := out.resolved; r.Epoch != 0 && canApply(s, in, r) {
			return []any{s, r}
		}
		return []any{s}
	}
	switch out.outcome {
	case OutcomeInvalid:
		return []any{s}
	case OutcomeNotFound:
		if s.Value == "" {
			return []any{s}
		}
	case OutcomeConflict:
		if out.out == s && (in.kind != ConfigCreate || s.Value != "") {
			return []any{s}
		}
	case OutcomeOK:
		switch in.kind {
		case ConfigRead, ConfigGrant:
			if out.out == s {
				return []any{s}
			}
		default:
			if canApply(s, in, out.out) {
				return []any{out.out}
			}
		}
	}
	return nil
}

// canApply reports whether the change in can take the state s to next.
func canApply(s ConfigState, in configCall, next ConfigState) bool {
	switch in.kind {
	case ConfigCreate:
		return s.Value == "" && next.Epoch == 1
	case ConfigCAS:
		return s.Value != "" && s.Epoch == in.from && in.from < math.MaxUint64 && next.Epoch == in.from+1
	case ConfigSet:
		return s.Value != "" && s.Epoch < math.MaxUint64 && next.Epoch == s.Epoch+1
	default:
		return false
	}
}

func describeConfigOperation(input, output any) string {
	in := input.(configCall)
	out := output.(configReturn)
	call := in.kind.String() + "()"
	if in.kind == ConfigCAS {
		call = fmt.Sprintf("cas(from %d)", in.from)
	}
	switch {
	case out.unknown && in.kind.changes() && out.resolved.Epoch != 0:
		return fmt.Sprintf("%s -> ? (if applied: %v)", call, out.resolved)
	case out.unknown:
		return call + " -> ?"
	case out.outcome == OutcomeOK && (in.kind == ConfigRead || in.kind == ConfigGrant):
		return fmt.Sprintf("%s -> %v", call, out.out)
	case out.outcome == OutcomeOK || out.outcome == OutcomeConflict:
		return fmt.Sprintf("%s -> %v %v", call, out.outcome, out.out)
	default:
		return fmt.Sprintf("%s -> %v", call, out.outcome)
	}
}

// hashConfigState hashes a state (FNV-1a of the value, mixed with the epoch).
func hashConfigState(s ConfigState) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s.Value); i++ {
		h ^= uint64(s.Value[i])
		h *= 1099511628211
	}
	return mix64(h ^ mix64(s.Epoch))
}
