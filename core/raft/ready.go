package raft

import (
	"fmt"
	"math"
)

// Ready is a batch of work for the driver; see the package documentation for
// the order in which to handle it. All slices are read-only.
type Ready struct {
	Hard *HardState // persist if non-nil (changed since the last Ready)
	// Entries: persist by appending, replacing any persisted entries from
	// Entries[0].Index on.
	Entries []Entry
	// Snapshot was received from the leader: persist it as the local snapshot
	// (dropping every persisted entry) and apply it; Entries follow it.
	Snapshot *Snapshot
	// Compacted is the snapshot made by Compact: persist it as the local
	// snapshot and drop persisted entries <= Compacted.Index. Do NOT apply it:
	// the application is already past it.
	Compacted *Snapshot
	// Messages: send only after Hard, Entries, Snapshot and Compacted of this
	// Ready are durable.
	Messages []Message
	// Committed: apply in order, after Snapshot. They are already persisted here.
	Committed []Entry
	// ReadStates: serve each read once the application applied its Index.
	ReadStates []ReadState
}

// readyState tracks what has been handed to the driver and what is durable.
type readyState struct {
	prevHard   HardState // the HardState last handed out
	unsentFrom uint64    // first log index not yet handed out in Entries
	// persisted: the log up to here is durable and equal to the in-memory log
	// (as of the last Advance). Committed entries are handed out only up to it,
	// and a leader counts itself in quorums only up to it.
	persisted uint64
	nextApply uint64 // first index not yet handed out in Committed

	msgs       []Message
	snap       *Snapshot // received, not yet handed out
	compacted  *Snapshot // from Compact, not yet handed out
	restoreGen uint64    // bumped by every snapshot restore
	out        *outstandingReady
}

// outstandingReady is the Ready handed out and not yet Advanced.
type outstandingReady struct {
	rd  Ready
	gen uint64 // restoreGen when handed out
	// truncFloor: the log was rewritten after this Ready was handed out from
	// index truncFloor+1 on, so its Entries past truncFloor are stale once
	// persisted.
	truncFloor uint64
}

// noteWrite records that the log was (re)written from index i on.
func (s *readyState) noteWrite(i uint64) {
	s.unsentFrom = min(s.unsentFrom, i)
	s.persisted = min(s.persisted, i-1)
	if s.out != nil {
		s.out.truncFloor = min(s.out.truncFloor, i-1)
	}
}

// noteRestore records that the log was replaced by snapshot s.
func (s *readyState) noteRestore(snap Snapshot) {
	s.snap = &snap
	s.compacted = nil // superseded
	s.unsentFrom = snap.Index + 1
	s.nextApply = snap.Index + 1
	s.persisted = 0 // nothing of the new log is durable until its Ready is Advanced
	s.restoreGen++
}

func (r *Raft) hardState() HardState {
	return HardState{Term: r.term, Vote: r.vote, Commit: r.log.commit}
}

// applyLimit is the last index that may be handed out in Committed.
func (r *Raft) applyLimit() uint64 {
	if r.rdy.snap != nil {
		return 0 // the snapshot goes first
	}
	return min(r.log.commit, r.rdy.persisted)
}

// HasReady reports whether Ready would return anything new. It is false while
// a Ready is outstanding (handed out, not yet Advanced).
func (r *Raft) HasReady() bool {
	s := &r.rdy
	if s.out != nil {
		return false
	}
	return r.hardState() != s.prevHard || s.snap != nil || s.compacted != nil ||
		s.unsentFrom <= r.log.lastIndex() || len(s.msgs) > 0 || len(r.reads.out) > 0 ||
		s.nextApply <= r.applyLimit()
}

// Ready returns everything pending since the last Ready and marks it handed
// out. The driver must handle it and call Advance(rd) before the next Ready;
// until then Ready returns the same Ready again.
func (r *Raft) Ready() Ready {
	s := &r.rdy
	if s.out != nil {
		return s.out.rd
	}
	var rd Ready
	if hs := r.hardState(); hs != s.prevHard {
		rd.Hard = &hs
		s.prevHard = hs
	}
	rd.Snapshot, s.snap = s.snap, nil
	rd.Compacted, s.compacted = s.compacted, nil
	if last := r.log.lastIndex(); s.unsentFrom <= last {
		rd.Entries = r.log.slice(s.unsentFrom, last+1)
		s.unsentFrom = last + 1
	}
	rd.Messages, s.msgs = s.msgs, nil
	rd.ReadStates, r.reads.out = r.reads.out, nil
	if rd.Snapshot == nil {
		if hi := r.applyLimit(); s.nextApply <= hi {
			rd.Committed = r.log.slice(s.nextApply, hi+1)
			s.nextApply = hi + 1
		}
	}
	s.out = &outstandingReady{rd: rd, gen: s.restoreGen, truncFloor: math.MaxUint64}
	return rd
}

// Advance tells Raft that the driver persisted, sent and applied rd, which must
// be the Ready last returned by Ready.
func (r *Raft) Advance(rd Ready) error {
	s := &r.rdy
	o := s.out
	if o == nil || !sameReady(o.rd, rd) {
		return ErrNoReady
	}
	s.out = nil
	if o.gen == s.restoreGen { // else a newer snapshot replaced what rd persisted
		p := s.persisted
		if rd.Snapshot != nil {
			p = max(p, rd.Snapshot.Index)
		}
		if n := len(rd.Entries); n > 0 {
			p = max(p, min(rd.Entries[n-1].Index, o.truncFloor))
		}
		s.persisted = min(p, r.log.lastIndex())
	}
	if rd.Snapshot != nil && rd.Snapshot.Index > r.applied {
		r.applied = rd.Snapshot.Index
		r.voters = sortedCopy(rd.Snapshot.Voters)
		if r.role == Leader {
			r.syncProgress() // cannot happen (a leader never restores), but keep prs consistent
		}
	}
	for _, e := range rd.Committed {
		if e.Index <= r.applied {
			continue
		}
		r.applied = e.Index
		if e.Type == EntryConfChange {
			r.applyConfChange(e)
		}
	}
	if r.role == Leader && r.maybeCommit() {
		r.bcastAppend()
	}
	return nil
}

func sameReady(a, b Ready) bool {
	return (a.Hard == nil) == (b.Hard == nil) && a.Snapshot == b.Snapshot && a.Compacted == b.Compacted &&
		len(a.Entries) == len(b.Entries) && len(a.Messages) == len(b.Messages) &&
		len(a.Committed) == len(b.Committed) && len(a.ReadStates) == len(b.ReadStates) &&
		(len(a.Entries) == 0 || a.Entries[0].Index == b.Entries[0].Index) &&
		(len(a.Committed) == 0 || a.Committed[0].Index == b.Committed[0].Index)
}

// Compact makes the application's state at index (which it has applied and
// Advanced past) the snapshot: log entries up to index are dropped, and a
// follower that needs them gets the snapshot instead. The snapshot comes back
// in Ready.Compacted for the driver to persist. Raft keeps data; nobody may
// modify it afterwards.
func (r *Raft) Compact(index uint64, data []byte) error {
	if index <= r.log.snap.Index {
		return fmt.Errorf("%w: index %d, snapshot at %d", ErrCompacted, index, r.log.snap.Index)
	}
	if index > r.applied {
		return fmt.Errorf("%w: index %d, applied %d", ErrNotApplied, index, r.applied)
	}
	t, _ := r.log.term(index) // snap.Index < index <= applied <= lastIndex
	s := Snapshot{Index: index, Term: t, Voters: r.votersAt(index), Data: data}
	r.log.compactTo(s)
	r.rdy.compacted = &s
	return nil
}
