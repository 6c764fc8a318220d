package histories

import (
	"fmt"
	"math"
	"slices"
)

// This file holds the second history the package checks: the authority's
// configuration store. Per volume, the authority keeps one configuration
// with an epoch; every change is a compare-and-set on the epoch and moves it
// to epoch+1. Each volume is one register, checked on its own (see
// CheckConfigs and configModel).

// ConfigKind is what a configuration operation did.
type ConfigKind uint8

const (
	// ConfigRead reads the current configuration.
	ConfigRead ConfigKind = iota + 1
	// ConfigCreate creates the volume: it applies only if the volume does
	// not exist, and gives epoch 1.
	ConfigCreate
	// ConfigCAS changes the configuration from FromEpoch to FromEpoch+1
	// (promote, shrink, grow, set-QoS with a FromEpoch).
	ConfigCAS
	// ConfigSet changes the configuration unconditionally to the current
	// epoch + 1 (set-QoS with FromEpoch 0).
	ConfigSet
	// ConfigGrant is a hosting grant: it does not change the configuration
	// and returns it.
	ConfigGrant
)

// String returns the kind's name, or "configkind(N)" for an invalid kind.
func (k ConfigKind) String() string {
	switch k {
	case ConfigRead:
		return "read"
	case ConfigCreate:
		return "create"
	case ConfigCAS:
		return "cas"
	case ConfigSet:
		return "set"
	case ConfigGrant:
		return "grant"
	default:
		return fmt.Sprintf("configkind(%d)", uint8(k))
	}
}

// changes reports whether the kind changes the configuration when it applies.
func (k ConfigKind) changes() bool {
	return k == ConfigCreate || k == ConfigCAS || k == ConfigSet
}

// ConfigOutcome is how the authority answered a configuration operation.
type ConfigOutcome uint8

const (
	// OutcomeOK: the operation applied (a change) or succeeded (a read, a
	// grant); Out is the configuration after it.
	OutcomeOK ConfigOutcome = iota + 1
	// OutcomeConflict: the change failed (for a Create: the volume exists);
	// Out is the current configuration. A grant may also answer Conflict,
	// with the current configuration. A read cannot: a read with this
	// outcome is malformed.
	OutcomeConflict
	// OutcomeNotFound: the volume does not exist.
	OutcomeNotFound
	// OutcomeInvalid: refused as malformed; no constraint on the state, no
	// change.
	OutcomeInvalid
)

// String returns the outcome's name, or "outcome(N)" for an invalid one.
func (o ConfigOutcome) String() string {
	switch o {
	case OutcomeOK:
		return "ok"
	case OutcomeConflict:
		return "conflict"
	case OutcomeNotFound:
		return "not found"
	case OutcomeInvalid:
		return "invalid"
	default:
		return fmt.Sprintf("outcome(%d)", uint8(o))
	}
}

// ConfigState is a configuration as the model compares it: two
// configurations are the same iff both fields are equal.
type ConfigState struct {
	Epoch uint64
	// Value is the whole configuration rendered as a string (it includes
	// the epoch); "" means there is no volume.
	Value string
}

// String describes the state for logs and the visualisation.
func (s ConfigState) String() string {
	if s.Value == "" && s.Epoch == 0 {
		return "no volume"
	}
	return fmt.Sprintf("e%d %q", s.Epoch, s.Value)
}

// ConfigOp is one logical request to the authority's configuration store, as
// its client saw it. Times are simulated nanoseconds.
type ConfigOp struct {
	// Client is who sent it.
	Client uint64
	Volume uint32
	Kind   ConfigKind
	// FromEpoch is the epoch a ConfigCAS expects; ignored for other kinds.
	FromEpoch uint64
	// Call and Return bound the request; Return is ignored (and treated as
	// +infinity) when Unknown.
	Call, Return int64
	// Unknown means no reply came: the op may or may not have taken effect,
	// at any time after its call. Outcome and Out are then ignored.
	Unknown bool
	Outcome ConfigOutcome
	// Out is the configuration in the reply (OK, Conflict).
	Out ConfigState
	// Resolved is, for an Unknown change (Create, CAS, Set), the
	// configuration it would have produced if it took effect. Epoch 0 means
	// none is known: the op can then only be linearized as not having taken
	// effect. Ignored for known ops and for reads and grants.
	Resolved ConfigState
}

// String describes the op compactly, for logs and error messages.
func (op ConfigOp) String() string {
	call := op.Kind.String()
	if op.Kind == ConfigCAS {
		call = fmt.Sprintf("cas(from %d)", op.FromEpoch)
	}
	if op.Unknown {
		res := "?"
		if op.Kind.changes() && op.Resolved.Epoch != 0 {
			res = fmt.Sprintf("? (would give %v)", op.Resolved)
		}
		return fmt.Sprintf("client %d vol %d %s -> %s at [%d,?]", op.Client, op.Volume, call, res, op.Call)
	}
	res := op.Outcome.String()
	if op.Outcome == OutcomeOK || op.Outcome == OutcomeConflict {
		res += " " + op.Out.String()
	}
	return fmt.Sprintf("client %d vol %d %s -> %s at [%d,%d]", op.Client, op.Volume, call, res, op.Call, op.Return)
}

// validate reports why op cannot be checked, or nil. Besides the ranges of
// Kind and Outcome and Return >= Call, it refuses the ops whose meaning is
// contradictory (a read that conflicts, a change that applied or would
// apply giving "no volume", a CAS from the largest epoch): the model, and
// the rewrites of CheckConfigs, rely on every change moving a volume that
// exists (or, for Create, not yet) from epoch e to e+1.
func (op ConfigOp) validate() error {
	switch {
	case op.Kind < ConfigRead || op.Kind > ConfigGrant:
		return fmt.Errorf("%w: invalid config kind %d", ErrMalformed, op.Kind)
	case op.Kind == ConfigCAS && op.FromEpoch == math.MaxUint64:
		return fmt.Errorf("%w: cas from epoch %d overflows", ErrMalformed, op.FromEpoch)
	case op.Unknown:
		if op.Outcome > OutcomeInvalid {
			return fmt.Errorf("%w: invalid outcome %d", ErrMalformed, op.Outcome)
		}
		if op.Kind.changes() && op.Resolved.Epoch != 0 && op.Resolved.Value == "" {
			return fmt.Errorf("%w: resolved to epoch %d with no configuration", ErrMalformed, op.Resolved.Epoch)
		}
		return nil
	case op.Return < op.Call:
		return fmt.Errorf("%w: returns at %d before its call at %d", ErrMalformed, op.Return, op.Call)
	case op.Outcome < OutcomeOK || op.Outcome > OutcomeInvalid:
		return fmt.Errorf("%w: invalid outcome %d", ErrMalformed, op.Outcome)
	case op.Kind == ConfigRead && op.Outcome == OutcomeConflict:
		return fmt.Errorf("%w: a read cannot conflict", ErrMalformed)
	case op.Kind.changes() && op.Outcome == OutcomeOK && op.Out.Value == "":
		return fmt.Errorf("%w: applied %s gave no configuration", ErrMalformed, op.Kind)
	}
	return nil
}

// ConfigHistory collects configuration ops. It is append-only and its order
// is the order of Add. The zero value is an empty history ready to use. A
// ConfigHistory is not safe for concurrent use.
type ConfigHistory struct {
	ops []ConfigOp
}

// Add appends op. Malformed ops are accepted here and reported by
// CheckConfigs and Validate.
func (h *ConfigHistory) Add(op ConfigOp) {
	h.ops = append(h.ops, op)
}

// Len returns the number of ops added so far.
func (h *ConfigHistory) Len() int {
	return len(h.ops)
}

// Ops returns a copy of the ops in the order they were added.
func (h *ConfigHistory) Ops() []ConfigOp {
	return slices.Clone(h.ops)
}

// Validate returns an error wrapping ErrMalformed for the first op that
// cannot be checked, or nil.
func (h *ConfigHistory) Validate() error {
	for i, op := range h.ops {
		if err := op.validate(); err != nil {
			return fmt.Errorf("config op %d (%v): %w", i, op, err)
		}
	}
	return nil
}
