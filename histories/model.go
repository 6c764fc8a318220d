package histories

import (
	"fmt"

	"github.com/anishathalye/porcupine"
)

// blockCall is the porcupine input of a single-block operation.
type blockCall struct {
	kind  Kind
	block uint64
	value uint64 // the value written; unused for reads
}

// blockReturn is the porcupine output of a single-block operation.
type blockReturn struct {
	value   uint64 // the value read; unused for writes
	unknown bool   // the outcome is unknown
}

// opMeta is the porcupine metadata of a single-block operation: where it
// came from, for the visualisation.
type opMeta struct {
	client uint64
	index  int // position of the op in the History
}

// blockModel returns the sequential specification of one block: the state
// is the block's uint64 value, initially 0. A write always succeeds and sets
// the state; a read with a known outcome succeeds iff it returned the state
// (and never when it returned Corrupt); a read with an unknown outcome
// succeeds in every state. Nothing but the state changes.
func blockModel() porcupine.Model {
	return porcupine.Model{
		Init:                      func() any { return uint64(0) },
		Step:                      stepBlock,
		Equal:                     func(a, b any) bool { return a.(uint64) == b.(uint64) },
		Hash:                      func(s any) uint64 { return mix64(s.(uint64)) },
		DescribeOperation:         describeOperation,
		DescribeState:             describeState,
		DescribeOperationMetadata: describeMetadata,
	}
}

func stepBlock(state, input, output any) (bool, any) {
	s := state.(uint64)
	in := input.(blockCall)
	out := output.(blockReturn)
	switch in.kind {
	case Write:
		return true, in.value
	case Read:
		if out.unknown {
			return true, s
		}
		return out.value != Corrupt && out.value == s, s
	default:
		return false, s
	}
}

func describeOperation(input, output any) string {
	in := input.(blockCall)
	out := output.(blockReturn)
	var s string
	switch in.kind {
	case Write:
		s = fmt.Sprintf("b%d write(%s)", in.block, describeValue(in.value))
		if out.unknown {
			s += " -> ?"
		}
	case Read:
		if out.unknown {
			s = fmt.Sprintf("b%d read() -> ?", in.block)
		} else {
			s = fmt.Sprintf("b%d read() -> %s", in.block, describeValue(out.value))
		}
	default:
		s = fmt.Sprintf("b%d %v", in.block, in.kind)
	}
	return s
}

func describeState(state any) string {
	return describeValue(state.(uint64))
}

func describeValue(v uint64) string {
	switch v {
	case 0:
		return "0 (unwritten)"
	case Corrupt:
		return "CORRUPT"
	default:
		return fmt.Sprintf("%d", v)
	}
}

func describeMetadata(meta any) string {
	m, ok := meta.(opMeta)
	if !ok {
		return ""
	}
	return fmt.Sprintf("client %d, history op #%d", m.client, m.index)
}

// mix64 is the splitmix64 finaliser, used to hash states.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
