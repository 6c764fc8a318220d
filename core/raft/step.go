package raft

import "fmt"

// Step processes one message from the network. Malformed messages, messages
// for another member and messages that would break a protocol invariant are
// ignored and reported as an error (wrapping ErrBadMessage or ErrInvariant);
// Step never panics on input.
func (r *Raft) Step(m Message) error {
	if err := r.checkMessage(m); err != nil {
		return err
	}
	switch {
	case m.Term > r.term:
		if (m.Type == MsgPreVote || m.Type == MsgVote) && r.inLease() {
			// Leader stickiness: we heard from a leader within the minimum
			// election timeout, so this candidate is not needed; ignore it
			// without adopting its term.
			return nil
		}
		switch {
		case m.Type == MsgPreVote:
			// A pre-vote never changes our term.
		case m.Type == MsgPreVoteResp && !m.Reject:
			// A granted pre-vote carries the term we would campaign at.
		case m.Type == MsgApp || m.Type == MsgHeartbeat || m.Type == MsgSnap:
			r.becomeFollower(m.Term, m.From)
		default:
			r.becomeFollower(m.Term, 0)
		}
	case m.Term < r.term:
		switch m.Type {
		case MsgApp, MsgHeartbeat, MsgSnap:
			// A stale leader (or one cut off while we moved on). Tell it our
			// term so it steps down: with pre-vote and check-quorum it may never
			// learn it otherwise.
			r.send(Message{Type: MsgAppResp, To: m.From})
		case MsgPreVote:
			r.send(Message{Type: MsgPreVoteResp, To: m.From, Reject: true})
		}
		return nil
	}

	if m.Type == MsgPreVote || m.Type == MsgVote {
		r.handleVote(m)
		return nil
	}
	switch r.role {
	case Leader:
		return r.stepLeader(m)
	case PreCandidate, Candidate:
		return r.stepCandidate(m)
	}
	return r.stepFollower(m)
}

// inLease reports whether we heard from a leader (or are it) within the
// minimum election timeout.
func (r *Raft) inLease() bool {
	return r.lead != 0 && r.electionElapsed < r.cfg.ElectionTicks
}

func (r *Raft) handleVote(m Message) {
	resp := MsgVoteResp
	if m.Type == MsgPreVote {
		resp = MsgPreVoteResp
	}
	canVote := r.vote == m.From || // a repeated request
		(r.vote == 0 && r.lead == 0) || // free in this term
		(m.Type == MsgPreVote && m.Term > r.term) // a pre-vote for a future term
	if canVote && r.log.isUpToDate(m.Index, m.LogTerm) {
		r.send(Message{Type: resp, To: m.From, Term: m.Term})
		if m.Type == MsgVote {
			r.electionElapsed = 0
			r.vote = m.From
		}
		return
	}
	r.send(Message{Type: resp, To: m.From, Reject: true})
}

func (r *Raft) stepLeader(m Message) error {
	switch m.Type {
	case MsgAppResp:
		return r.handleAppResp(m)
	case MsgHeartbeatResp:
		r.handleHeartbeatResp(m)
	case MsgApp, MsgHeartbeat, MsgSnap:
		return fmt.Errorf("%w: %v from %d claims leadership of term %d, led by %d", ErrInvariant, m.Type, m.From, m.Term, r.id)
	}
	return nil
}

func (r *Raft) stepCandidate(m Message) error {
	switch m.Type {
	case MsgApp, MsgHeartbeat, MsgSnap:
		r.becomeFollower(m.Term, m.From) // someone won this term
		return r.stepFollower(m)
	case MsgPreVoteResp:
		// Granted pre-votes carry term+1; rejections carry the voter's term,
		// which is ours here (higher ones made us a follower above).
		if r.role == PreCandidate && (m.Reject || m.Term == r.term+1) && r.poll(m.From, !m.Reject) {
			r.wonElection(true)
		}
	case MsgVoteResp:
		if r.role == Candidate && r.poll(m.From, !m.Reject) {
			r.wonElection(false)
		}
	}
	return nil
}

func (r *Raft) stepFollower(m Message) error {
	switch m.Type {
	case MsgApp, MsgHeartbeat, MsgSnap:
	default:
		return nil
	}
	if r.lead != 0 && r.lead != m.From {
		return fmt.Errorf("%w: %v from %d in term %d, whose leader is %d", ErrInvariant, m.Type, m.From, m.Term, r.lead)
	}
	r.electionElapsed = 0
	r.lead = m.From
	switch m.Type {
	case MsgApp:
		return r.handleAppend(m)
	case MsgHeartbeat:
		r.log.commit = max(r.log.commit, min(m.Commit, r.log.lastIndex()))
		r.send(Message{Type: MsgHeartbeatResp, To: m.From, Context: m.Context})
	case MsgSnap:
		r.handleSnapshot(m)
	}
	return nil
}

func (r *Raft) handleAppend(m Message) error {
	if m.Index < r.log.commit {
		// Everything up to our commit index matches any leader's log.
		r.send(Message{Type: MsgAppResp, To: m.From, Index: r.log.commit})
		return nil
	}
	if !r.log.matchTerm(m.Index, m.LogTerm) {
		hint, hintTerm := r.log.findConflictByTerm(min(m.Index, r.log.lastIndex()), m.LogTerm)
		r.send(Message{Type: MsgAppResp, To: m.From, Index: m.Index, Reject: true, RejectHint: hint, LogTerm: hintTerm})
		return nil
	}
	if c := r.log.findConflict(m.Entries); c != 0 {
		if c <= r.log.commit {
			return fmt.Errorf("%w: MsgApp from %d conflicts with committed entry %d (commit %d)", ErrInvariant, m.From, c, r.log.commit)
		}
		r.log.truncateAndAppend(m.Entries[c-m.Index-1:])
		r.rdy.noteWrite(c)
	}
	lastNew := m.Index + uint64(len(m.Entries))
	r.log.commit = max(r.log.commit, min(m.Commit, lastNew))
	r.send(Message{Type: MsgAppResp, To: m.From, Index: lastNew})
	return nil
}

func (r *Raft) handleSnapshot(m Message) {
	s := *m.Snapshot
	switch {
	case s.Index <= r.log.commit:
		// Nothing new: acknowledge what we have committed.
	case r.log.matchTerm(s.Index, s.Term):
		// We already have the entries: just learn that they are committed.
		r.log.commit = s.Index
	default:
		s.Voters = sortedCopy(s.Voters)
		r.log.restore(s)
		r.rdy.noteRestore(s)
	}
	r.send(Message{Type: MsgAppResp, To: m.From, Index: r.log.commit})
}
