package raft

// raftLog is the in-memory log: a snapshot followed by entries. It holds
// everything, persisted or not; the Ready bookkeeping in ready.go tracks which
// part is durable.
//
// Slices handed out (slice) are capped, and truncation always reallocates, so
// a slice given to the driver or put in a message never changes afterwards.
type raftLog struct {
	snap   Snapshot // the latest snapshot; Index 0 is the empty log's origin
	ents   []Entry  // ents[i].Index == snap.Index+1+i
	commit uint64   // invariant: snap.Index <= commit <= lastIndex()
}

func (l *raftLog) firstIndex() uint64 { return l.snap.Index + 1 }

func (l *raftLog) lastIndex() uint64 { return l.snap.Index + uint64(len(l.ents)) }

func (l *raftLog) lastTerm() uint64 {
	if len(l.ents) == 0 {
		return l.snap.Term
	}
	return l.ents[len(l.ents)-1].Term
}

// term returns the term of entry i; ok is false if i is compacted away (below
// the snapshot) or beyond the last entry.
func (l *raftLog) term(i uint64) (t uint64, ok bool) {
	switch {
	case i == l.snap.Index:
		return l.snap.Term, true
	case i < l.snap.Index || i > l.lastIndex():
		return 0, false
	}
	return l.ents[i-l.snap.Index-1].Term, true
}

func (l *raftLog) matchTerm(i, t uint64) bool {
	lt, ok := l.term(i)
	return ok && lt == t
}

// isUpToDate reports whether a log ending at (index, term) is at least as up
// to date as this one (§5.4.1).
func (l *raftLog) isUpToDate(index, term uint64) bool {
	lt := l.lastTerm()
	return term > lt || (term == lt && index >= l.lastIndex())
}

// slice returns entries [lo, hi). The caller guarantees
// firstIndex() <= lo <= hi <= lastIndex()+1. The result's capacity equals its
// length, so appending to it never writes into the log.
func (l *raftLog) slice(lo, hi uint64) []Entry {
	if lo >= hi {
		return nil
	}
	a, b := lo-l.snap.Index-1, hi-l.snap.Index-1
	return l.ents[a:b:b]
}

// findConflict returns the index of the first entry of ents that is not in the
// log (different term, or beyond the end), or 0 if all are present.
func (l *raftLog) findConflict(ents []Entry) uint64 {
	for _, e := range ents {
		if !l.matchTerm(e.Index, e.Term) {
			return e.Index
		}
	}
	return 0
}

// findConflictByTerm returns the largest index <= index whose term is <= term,
// and that term; it stops at the snapshot. Used for fast backtracking on both
// sides of a rejected MsgApp.
func (l *raftLog) findConflictByTerm(index, term uint64) (uint64, uint64) {
	index = min(index, l.lastIndex())
	for ; index > l.snap.Index; index-- { // bounded by len(l.ents)
		if t := l.ents[index-l.snap.Index-1].Term; t <= term {
			return index, t
		}
	}
	return l.snap.Index, l.snap.Term
}

// earlierConfIndex returns the index of the second-to-last configuration
// change in the log (0 if there are fewer than two after the snapshot).
func (l *raftLog) earlierConfIndex() uint64 {
	seen := 0
	for i := len(l.ents) - 1; i >= 0; i-- {
		if l.ents[i].Type == EntryConfChange {
			if seen++; seen == 2 {
				return l.ents[i].Index
			}
		}
	}
	return 0
}

// truncateAndAppend writes ents (contiguous, ents[0].Index in
// [firstIndex, lastIndex+1]) over the log from ents[0].Index on.
func (l *raftLog) truncateAndAppend(ents []Entry) {
	if len(ents) == 0 {
		return
	}
	keep := int(ents[0].Index - l.snap.Index - 1)
	if keep == len(l.ents) {
		l.ents = append(l.ents, ents...)
		return
	}
	// Reallocate: slices handed out earlier share the old array.
	n := make([]Entry, keep, keep+len(ents))
	copy(n, l.ents[:keep])
	l.ents = append(n, ents...)
}

// compactTo makes s (s.Index in [firstIndex, lastIndex], s.Term its term) the
// snapshot and drops the entries it covers.
func (l *raftLog) compactTo(s Snapshot) {
	rest := l.ents[s.Index-l.snap.Index:]
	l.ents = append(make([]Entry, 0, len(rest)), rest...)
	l.snap = s
}

// restore replaces the whole log by snapshot s.
func (l *raftLog) restore(s Snapshot) {
	l.snap = s
	l.ents = nil
	l.commit = s.Index
}
