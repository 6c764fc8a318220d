package histories

import (
	"errors"
	"fmt"
	"math"
)

// Kind is the kind of a client operation.
type Kind uint8

const (
	// Read reads Count consecutive blocks.
	Read Kind = 1
	// Write writes Count consecutive blocks.
	Write Kind = 2
)

// String returns "read", "write" or "kind(N)" for an invalid kind.
func (k Kind) String() string {
	switch k {
	case Read:
		return "read"
	case Write:
		return "write"
	default:
		return fmt.Sprintf("kind(%d)", uint8(k))
	}
}

// Corrupt is the value a reader records when a block's bytes did not match
// any value's pattern. The model never accepts a read of Corrupt, and a write
// of Corrupt is malformed.
const Corrupt uint64 = math.MaxUint64

// ErrMalformed is wrapped by the error reported for an operation that cannot
// be checked (invalid kind, wrong number of values, Return before Call, ...).
var ErrMalformed = errors.New("histories: malformed op")

// Op is one client operation on a volume, as the client saw it. Times are
// simulated nanoseconds.
//
// A write of Count blocks starting at Block writes Values[i] to block
// Block+i (len(Values) == Count), whether or not its outcome is known.
// A read's Values are what it returned (len(Values) == Count) when Unknown
// is false; they are ignored when Unknown is true.
//
// Unknown means the outcome is unknown (timeout, crashed client): Return is
// then ignored and treated as +infinity, and a read with an unknown outcome
// constrains nothing (it is still kept in the history).
type Op struct {
	Client  uint64
	Volume  uint32
	Kind    Kind
	Block   uint64
	Count   uint32
	Values  []uint64
	Call    int64
	Return  int64
	Unknown bool
}

// String describes the op compactly, for logs and error messages.
func (op Op) String() string {
	ret := fmt.Sprintf("%d", op.Return)
	if op.Unknown {
		ret = "?"
	}
	return fmt.Sprintf("client %d vol %d %s blocks [%d,+%d) values %v at [%d,%s]",
		op.Client, op.Volume, op.Kind, op.Block, op.Count, op.Values, op.Call, ret)
}

// validate reports why op cannot be checked, or nil.
func (op Op) validate() error {
	switch {
	case op.Kind != Read && op.Kind != Write:
		return fmt.Errorf("%w: invalid kind %d", ErrMalformed, op.Kind)
	case op.Count > 0 && op.Block > math.MaxUint64-uint64(op.Count-1):
		return fmt.Errorf("%w: block range [%d,+%d) overflows", ErrMalformed, op.Block, op.Count)
	case !op.Unknown && op.Return < op.Call:
		return fmt.Errorf("%w: returns at %d before its call at %d", ErrMalformed, op.Return, op.Call)
	}
	if op.Kind == Read && op.Unknown {
		return nil // values of an unknown read are ignored
	}
	if len(op.Values) != int(op.Count) {
		return fmt.Errorf("%w: %d values for %d blocks", ErrMalformed, len(op.Values), op.Count)
	}
	if op.Kind == Write {
		for i, v := range op.Values {
			if v == Corrupt {
				return fmt.Errorf("%w: writes the Corrupt sentinel to block %d", ErrMalformed, op.Block+uint64(i))
			}
		}
	}
	return nil
}
