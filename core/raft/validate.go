package raft

import (
	"fmt"
	"math"
)

// checkMessage rejects messages Step must not act on: addressed elsewhere,
// from nobody or ourselves, without a term, or internally inconsistent.
func (r *Raft) checkMessage(m Message) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %v from %d: %s", ErrBadMessage, m.Type, m.From, fmt.Sprintf(format, args...))
	}
	switch {
	case !m.Type.valid():
		return bad("unknown type")
	case m.To != r.id:
		return bad("addressed to %d, this is %d", m.To, r.id)
	case m.From == 0 || m.From == r.id:
		return bad("bad sender")
	case m.Term == 0:
		return bad("term 0")
	}
	switch m.Type {
	case MsgPreVote, MsgVote:
		if m.LogTerm > m.Term {
			return bad("last log term %d above term %d", m.LogTerm, m.Term)
		}
	case MsgApp:
		return checkEntries(m, bad)
	case MsgSnap:
		s := m.Snapshot
		if s == nil || s.Index == 0 || s.Term == 0 || s.Term > m.Term {
			return bad("missing or inconsistent snapshot")
		}
		if err := checkVoters(s.Voters); err != nil || len(s.Voters) == 0 {
			return bad("snapshot voters %v", s.Voters)
		}
	}
	return nil
}

// checkEntries requires a MsgApp's entries to follow (Index, LogTerm)
// contiguously with non-decreasing terms no larger than the message's term.
func checkEntries(m Message, bad func(string, ...any) error) error {
	if m.LogTerm > m.Term || (m.Index == 0 && m.LogTerm != 0) {
		return bad("previous entry %d term %d", m.Index, m.LogTerm)
	}
	if uint64(len(m.Entries)) > math.MaxUint64-m.Index {
		return bad("index overflow")
	}
	prevTerm := m.LogTerm
	for i, e := range m.Entries {
		if e.Index != m.Index+1+uint64(i) || e.Term < prevTerm || e.Term == 0 || e.Term > m.Term || !e.Type.valid() {
			return bad("entry %d (index %d, term %d) does not follow %d/%d", i, e.Index, e.Term, m.Index, m.LogTerm)
		}
		prevTerm = e.Term
	}
	return nil
}
