package raft

import (
	"fmt"
	"slices"
)

// This file is the leader's side of log replication.

func (r *Raft) progress(id uint64) *progress {
	for i := range r.prs {
		if r.prs[i].id == id {
			return &r.prs[i]
		}
	}
	return nil
}

func (r *Raft) handleAppResp(m Message) error {
	pr := r.progress(m.From)
	if pr == nil {
		return nil // not (or no longer) a voter
	}
	pr.recentActive = true
	if m.Reject {
		hint := min(m.RejectHint, r.log.lastIndex())
		if m.LogTerm > 0 {
			// Skip every entry of ours whose term the follower cannot have.
			hint, _ = r.log.findConflictByTerm(hint, m.LogTerm)
		}
		if pr.maybeDecrTo(m.Index, hint) {
			if pr.state == stateReplicate {
				pr.becomeProbe()
			}
			r.maybeSendAppend(pr, true)
		}
		return nil
	}
	if m.Index > r.log.lastIndex() {
		return fmt.Errorf("%w: MsgAppResp from %d acknowledges %d beyond our last index %d",
			ErrInvariant, m.From, m.Index, r.log.lastIndex())
	}
	wasPaused := pr.paused(r.cfg.MaxInflight)
	if !pr.maybeUpdate(m.Index) && !(pr.state == stateProbe && pr.match == m.Index) {
		return nil // stale or duplicate
	}
	switch pr.state {
	case stateProbe:
		pr.becomeReplicate()
	case stateSnapshot:
		if pr.match+1 >= r.log.firstIndex() {
			pr.becomeReplicate()
		}
	case stateReplicate:
		pr.freeTo(m.Index)
	}
	if r.maybeCommit() {
		r.bcastAppend()
	} else if wasPaused {
		r.maybeSendAppend(pr, true)
	}
	for i := 0; i < r.cfg.MaxInflight && r.maybeSendAppend(pr, false); i++ {
	}
	return nil
}

func (r *Raft) handleHeartbeatResp(m Message) {
	pr := r.progress(m.From)
	if pr == nil {
		return
	}
	pr.recentActive = true
	pr.probeSent = false
	if pr.state == stateReplicate && pr.paused(r.cfg.MaxInflight) {
		pr.freeFirst() // a MsgApp may have been lost: let one more through
	}
	if pr.match < r.log.lastIndex() {
		r.maybeSendAppend(pr, true)
	}
	if m.Context != 0 {
		r.readAck(pr, m.Context)
	}
}

// maybeSendAppend sends pr the next MsgApp (or the snapshot if the entries it
// needs are compacted). Without sendIfEmpty it sends nothing when there are no
// entries to send. It reports whether a message was sent.
func (r *Raft) maybeSendAppend(pr *progress, sendIfEmpty bool) bool {
	if pr.paused(r.cfg.MaxInflight) {
		return false
	}
	prev := pr.next - 1
	prevTerm, ok := r.log.term(prev)
	if !ok || pr.next < r.log.firstIndex() {
		return r.sendSnapshot(pr)
	}
	hi := min(r.log.lastIndex(), prev+uint64(r.cfg.MaxMsgEntries))
	ents := r.log.slice(pr.next, hi+1)
	if len(ents) == 0 && !sendIfEmpty {
		return false
	}
	r.send(Message{Type: MsgApp, To: pr.id, Index: prev, LogTerm: prevTerm, Entries: ents, Commit: r.log.commit})
	var last uint64
	if len(ents) > 0 {
		last = ents[len(ents)-1].Index
	}
	pr.sent(last)
	return true
}

func (r *Raft) sendSnapshot(pr *progress) bool {
	if !pr.recentActive || r.log.snap.Index == 0 {
		return false
	}
	s := r.log.snap
	r.send(Message{Type: MsgSnap, To: pr.id, Snapshot: &s})
	pr.becomeSnapshot(s.Index)
	return true
}

// replicate sends new entries to every follower that can take them.
func (r *Raft) replicate() {
	for i := range r.prs {
		r.maybeSendAppend(&r.prs[i], false)
	}
}

// bcastAppend sends every follower that can take one a MsgApp, even an empty
// one (it carries the commit index).
func (r *Raft) bcastAppend() {
	for i := range r.prs {
		r.maybeSendAppend(&r.prs[i], true)
	}
}

func (r *Raft) bcastHeartbeat(ctx uint64) {
	for i := range r.prs {
		pr := &r.prs[i]
		// Never tell a follower a commit index beyond what it is known to hold.
		r.send(Message{Type: MsgHeartbeat, To: pr.id, Commit: min(pr.match, r.log.commit), Context: ctx})
	}
}

// quorumValue returns the largest value that a quorum of voters has reached,
// with self's value given and the others' read from their progress (0 if none).
func (r *Raft) quorumValue(self uint64, other func(*progress) uint64) uint64 {
	vals := r.scratch[:0]
	for _, v := range r.voters {
		if v == r.id {
			vals = append(vals, self)
		} else if pr := r.progress(v); pr != nil {
			vals = append(vals, other(pr))
		} else {
			vals = append(vals, 0)
		}
	}
	r.scratch = vals
	if len(vals) == 0 {
		return 0
	}
	slices.Sort(vals)
	return vals[len(vals)-r.quorum()]
}

// maybeCommit advances the commit index to the highest entry of the current
// term that a quorum of voters has durably (the leader counts itself only for
// what it has persisted). It reports whether the commit index moved.
func (r *Raft) maybeCommit() bool {
	mci := r.quorumValue(r.rdy.persisted, func(pr *progress) uint64 { return pr.match })
	if mci <= r.log.commit {
		return false
	}
	if t, ok := r.log.term(mci); !ok || t != r.term {
		return false // only entries of the current term commit by counting (§5.4.2)
	}
	r.log.commit = mci
	r.startQueuedReads()
	return true
}

// quorumActive reports whether a quorum of voters (counting self) was heard
// from since the last check.
func (r *Raft) quorumActive() bool {
	n := 0
	for _, v := range r.voters {
		if v == r.id {
			n++
		} else if pr := r.progress(v); pr != nil && pr.recentActive {
			n++
		}
	}
	return n >= r.quorum()
}
