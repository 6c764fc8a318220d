package raft

import "slices"

// This file is time and elections: ticks, pre-votes, votes, role changes.

// Tick advances the logical clock by one tick.
func (r *Raft) Tick() {
	if r.role == Leader {
		r.tickLeader()
		return
	}
	if r.electionElapsed < maxTicks*4 {
		r.electionElapsed++
	}
	if r.electionElapsed >= r.randomizedTimeout && r.promotable() {
		r.electionElapsed = 0
		r.campaign(true)
	}
}

func (r *Raft) tickLeader() {
	r.heartbeatElapsed++
	r.electionElapsed++
	for i := range r.prs {
		pr := &r.prs[i]
		if pr.state != stateSnapshot {
			continue
		}
		if pr.snapTicks++; pr.snapTicks >= r.cfg.ElectionTicks {
			pr.becomeProbe() // the snapshot (or its ack) was probably lost: start over
		}
	}
	if r.electionElapsed >= r.cfg.ElectionTicks {
		r.electionElapsed = 0
		if !r.quorumActive() {
			r.becomeFollower(r.term, 0) // check-quorum: we may have been deposed
			return
		}
		for i := range r.prs {
			r.prs[i].recentActive = false
		}
	}
	if r.heartbeatElapsed >= r.cfg.HeartbeatTicks {
		r.heartbeatElapsed = 0
		r.bcastHeartbeat(r.reads.heartbeatContext())
	}
}

// promotable reports whether this member may campaign: it is a voter in its
// applied configuration and has no committed configuration change (or
// snapshot) left to apply, which could change the voter set.
func (r *Raft) promotable() bool {
	if !slices.Contains(r.voters, r.id) || r.applied < r.log.snap.Index {
		return false
	}
	for i := r.applied + 1; i <= r.log.commit; i++ { // bounded by commit - applied
		if r.log.ents[i-r.log.snap.Index-1].Type == EntryConfChange {
			return false
		}
	}
	return true
}

func (r *Raft) resetTerm(term uint64) {
	if r.term != term {
		r.term = term
		r.vote = 0
	}
	r.lead = 0
	r.electionElapsed = 0
	r.heartbeatElapsed = 0
	r.randomizedTimeout = r.cfg.ElectionTicks + int(r.cfg.Rand.Uint64()%uint64(r.cfg.ElectionTicks))
	r.votes = r.votes[:0]
	r.prs = nil
	r.pendingConfIndex = 0
	r.removingSelf = false
	r.reads.reset()
}

func (r *Raft) becomeFollower(term, lead uint64) {
	r.resetTerm(term)
	r.role = Follower
	r.lead = lead
}

func (r *Raft) becomePreCandidate() {
	// Pre-voting changes neither the term nor the vote.
	r.resetTerm(r.term)
	r.role = PreCandidate
}

func (r *Raft) becomeCandidate() {
	r.resetTerm(r.term + 1)
	r.vote = r.id
	r.role = Candidate
}

func (r *Raft) becomeLeader() {
	r.resetTerm(r.term)
	r.role = Leader
	r.lead = r.id
	next := r.log.lastIndex() + 1
	for _, v := range r.voters {
		if v != r.id {
			r.prs = append(r.prs, newProgress(v, next, r.cfg.MaxInflight))
		}
	}
	r.removingSelf = r.logRemovesSelf()
	// The no-op commits everything before it (§5.4.2) and, until it is applied,
	// blocks configuration changes (a leader must commit an entry of its term
	// before changing the configuration).
	r.appendEntry(Entry{Type: EntryNoop})
	r.pendingConfIndex = r.log.lastIndex()
	r.bcastAppend()
}

// campaign starts a pre-vote (pre) or a real election.
func (r *Raft) campaign(pre bool) {
	typ, term := MsgVote, r.term+1
	if pre {
		r.becomePreCandidate()
		typ = MsgPreVote
	} else {
		r.becomeCandidate()
		term = r.term
	}
	if r.poll(r.id, true) {
		r.wonElection(pre)
		return
	}
	for _, v := range r.voters {
		if v != r.id {
			r.send(Message{Type: typ, To: v, Term: term, Index: r.log.lastIndex(), LogTerm: r.log.lastTerm()})
		}
	}
}

func (r *Raft) wonElection(pre bool) {
	if pre {
		r.campaign(false)
	} else {
		r.becomeLeader()
	}
}

// poll records a (pre-)vote and reports whether the election is won. It
// steps down if the election is lost.
func (r *Raft) poll(id uint64, granted bool) (won bool) {
	if !slices.Contains(r.voters, id) {
		return false
	}
	for _, v := range r.votes {
		if v.id == id {
			return false // count the first answer only
		}
	}
	r.votes = append(r.votes, vote{id, granted})
	yes, no := 0, 0
	for _, v := range r.votes {
		if v.granted {
			yes++
		} else {
			no++
		}
	}
	q := r.quorum()
	if yes >= q {
		return true
	}
	if no > len(r.voters)-q {
		r.becomeFollower(r.term, 0)
	}
	return false
}
