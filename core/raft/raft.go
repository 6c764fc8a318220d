package raft

import (
	"fmt"
	"slices"
)

// Raft is one member's state machine. See the package documentation for the
// driver contract.
type Raft struct {
	id  uint64
	cfg Config

	term uint64
	vote uint64
	lead uint64
	role Role
	log  raftLog

	voters  []uint64   // sorted; the configuration as of applied
	prs     []progress // leader: one per voter other than id, sorted by id
	votes   []vote     // (pre-)candidate: answers in this campaign
	applied uint64     // the application has applied (Advanced) up to here

	electionElapsed   int
	heartbeatElapsed  int
	randomizedTimeout int
	pendingConfIndex  uint64 // leader: index of the last conf change it may have in its log
	// removingSelf (leader): its log holds an unapplied change removing it. It
	// appends nothing more, so that its log ends at that change (or at its
	// no-op): then any voter that acknowledged it is as up to date as the
	// leader and can win the next election with its vote.
	removingSelf bool

	reads readIndexState

	rdy readyState

	// testQuorum, when set (by tests only), replaces the majority function.
	testQuorum func(n int) int
	scratch    []uint64 // reused by quorum computations
}

type vote struct {
	id      uint64
	granted bool
}

// New creates a member from its configuration and what it persisted. An empty
// State means a fresh member: it bootstraps from c.Peers, or, without Peers,
// waits to be added to an existing cell.
func New(c Config, st State) (*Raft, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c.Peers = sortedCopy(c.Peers)
	r := &Raft{id: c.ID, cfg: c}
	if st.empty() {
		r.bootstrap(c.Peers)
	} else if err := r.restoreState(st); err != nil {
		return nil, err
	}
	r.applied = r.log.snap.Index
	r.voters = sortedCopy(r.log.snap.Voters)
	r.rdy.nextApply = r.log.snap.Index + 1
	r.becomeFollower(r.term, 0)
	return r, nil
}

// bootstrap writes one committed AddVoter entry per peer at term 1. Every
// bootstrap member writes the same entries, and a member added later learns
// the initial voters from them. Nothing is durable yet.
func (r *Raft) bootstrap(peers []uint64) {
	r.rdy.unsentFrom = 1
	if len(peers) == 0 {
		return
	}
	r.term = 1
	for i, p := range peers {
		r.log.ents = append(r.log.ents, Entry{
			Index: uint64(i + 1), Term: 1, Type: EntryConfChange,
			Data: ConfChange{Type: AddVoter, ID: p}.Encode(),
		})
	}
	r.log.commit = uint64(len(peers))
}

// restoreState loads a persisted state; everything in it is durable.
func (r *Raft) restoreState(st State) error {
	if st.Snap != nil {
		s := *st.Snap
		if s.Index == 0 || s.Term == 0 {
			return fmt.Errorf("%w: snapshot at index %d term %d", ErrBadState, s.Index, s.Term)
		}
		if err := checkVoters(s.Voters); err != nil {
			return fmt.Errorf("%w: snapshot voters: %v", ErrBadState, err)
		}
		s.Voters = sortedCopy(s.Voters)
		r.log.snap = s
	}
	ents := st.Entries
	for len(ents) > 0 && ents[0].Index <= r.log.snap.Index { // bounded by len(ents)
		if ents[0].Index == r.log.snap.Index && ents[0].Term != r.log.snap.Term {
			return fmt.Errorf("%w: entry %d has term %d, the snapshot says %d",
				ErrBadState, ents[0].Index, ents[0].Term, r.log.snap.Term)
		}
		ents = ents[1:]
	}
	prevTerm := r.log.snap.Term
	for i, e := range ents {
		if e.Index != r.log.snap.Index+1+uint64(i) || e.Term == 0 || e.Term < prevTerm || !e.Type.valid() {
			return fmt.Errorf("%w: entry %d (index %d, term %d, type %v) does not follow index %d term %d",
				ErrBadState, i, e.Index, e.Term, e.Type, r.log.snap.Index+uint64(i), prevTerm)
		}
		prevTerm = e.Term
	}
	r.log.ents = slices.Clone(ents)
	last := r.log.lastIndex()

	// A crash between writing the parts of one Ready can leave the HardState
	// behind the entries or ahead of them; normalize instead of refusing. The
	// lost parts were never acted on: messages go out only after all of it.
	h := st.Hard
	r.term, r.vote = h.Term, h.Vote
	if lt := r.log.lastTerm(); lt > r.term {
		r.term, r.vote = lt, 0
	}
	r.log.commit = min(max(h.Commit, r.log.snap.Index), last)
	// Every configuration change before the last one in the log is committed:
	// a leader proposes a change only after applying all earlier ones. (The
	// commit index that said so may have been lost between writes.) A member
	// whose log holds two unapplied changes must not count votes with the
	// older configuration.
	r.log.commit = max(r.log.commit, r.log.earlierConfIndex())

	r.rdy.prevHard = h
	r.rdy.unsentFrom = last + 1
	r.rdy.persisted = last
	return nil
}

// quorum is the number of voters that make a majority.
func (r *Raft) quorum() int {
	n := len(r.voters)
	q := n/2 + 1
	if r.testQuorum != nil {
		q = r.testQuorum(n)
	}
	return max(1, min(q, n))
}

// send queues m for the next Ready. Messages to self or without a term are
// never emitted.
func (r *Raft) send(m Message) {
	if m.To == r.id || m.To == 0 {
		return
	}
	m.From = r.id
	if m.Term == 0 {
		m.Term = r.term
	}
	if m.Term == 0 {
		return
	}
	r.rdy.msgs = append(r.rdy.msgs, m)
}

func (r *Raft) appendEntry(e Entry) uint64 {
	e.Index = r.log.lastIndex() + 1
	e.Term = r.term
	r.log.ents = append(r.log.ents, e)
	return e.Index
}

// Propose appends data to the log (leader only) and returns its index. The
// entry is committed once it shows up in Ready.Committed at that index (with
// this term); it may also be lost if leadership changes first.
func (r *Raft) Propose(data []byte) (uint64, error) {
	if r.role != Leader {
		return 0, ErrNotLeader
	}
	if r.removingSelf {
		return 0, fmt.Errorf("%w: the leader is removing itself", ErrNotLeader)
	}
	idx := r.appendEntry(Entry{Type: EntryNormal, Data: data})
	r.replicate()
	return idx, nil
}

// Status reports the member's current state.
func (r *Raft) Status() Status {
	return Status{
		ID: r.id, Term: r.term, Lead: r.lead, Commit: r.log.commit, Applied: r.applied,
		LastIndex: r.log.lastIndex(), FirstIndex: r.log.firstIndex(),
		Role: r.role, Voters: slices.Clone(r.voters),
	}
}
