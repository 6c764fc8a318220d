package histories

import (
	"fmt"
	"slices"
)

// History collects ops. It is append-only and its order is the order of
// Add, so the same sequence of Adds always gives the same history. The zero
// value is an empty history ready to use. A History is not safe for
// concurrent use.
type History struct {
	ops []Op
}

// Add appends op. Its Values slice is copied, so the caller may reuse it.
// Malformed ops are accepted here and reported by Check and Validate.
func (h *History) Add(op Op) {
	op.Values = slices.Clone(op.Values)
	h.ops = append(h.ops, op)
}

// Ops returns the ops in the order they were added. The returned slice is a
// copy, but the Values slices are shared and must not be modified.
func (h *History) Ops() []Op {
	return slices.Clone(h.ops)
}

// Len returns the number of ops added so far.
func (h *History) Len() int {
	return len(h.ops)
}

// Validate returns an error wrapping ErrMalformed for the first op that
// cannot be checked, or nil.
func (h *History) Validate() error {
	for i, op := range h.ops {
		if err := op.validate(); err != nil {
			return fmt.Errorf("op %d (%v): %w", i, op, err)
		}
	}
	return nil
}
