package raft

// Read-index reads (§6.4): the leader records its commit index, confirms it is
// still the leader by a heartbeat round acknowledged by a quorum, and then
// answers with a ReadState. Rounds are numbered by a counter that never goes
// back (not even across terms), so an acknowledgement of round n confirms
// every round <= n.

type readRequest struct {
	ctx   uint64
	index uint64 // the commit index when the read was started
	round uint64 // the heartbeat round that must be confirmed
}

type readIndexState struct {
	round   uint64        // last round started
	waiting []uint64      // contexts waiting for an entry of this term to commit
	pending []readRequest // started, waiting for their round to be confirmed; ascending rounds
	out     []ReadState   // confirmed, for the next Ready
}

// reset drops unanswered requests: they never get a ReadState.
func (s *readIndexState) reset() {
	s.waiting = s.waiting[:0]
	s.pending = s.pending[:0]
}

// heartbeatContext is the round a heartbeat should carry: the latest, if any
// read waits for confirmation.
func (s *readIndexState) heartbeatContext() uint64 {
	if len(s.pending) == 0 {
		return 0
	}
	return s.round
}

// ReadIndex asks for a linearizable read point (leader only). The answer is a
// ReadState{Index, ctx} in a later Ready, once this member has both committed
// an entry of its term and confirmed with a quorum that it still leads. If it
// loses leadership first, no answer ever comes: the caller retries elsewhere.
func (r *Raft) ReadIndex(ctx uint64) error {
	if r.role != Leader {
		return ErrNotLeader
	}
	if !r.committedInTerm() {
		r.reads.waiting = append(r.reads.waiting, ctx)
		return nil
	}
	r.startRead(ctx)
	return nil
}

func (r *Raft) committedInTerm() bool {
	t, ok := r.log.term(r.log.commit)
	return ok && t == r.term
}

func (r *Raft) startRead(ctx uint64) {
	r.reads.round++
	r.reads.pending = append(r.reads.pending, readRequest{ctx: ctx, index: r.log.commit, round: r.reads.round})
	r.bcastHeartbeat(r.reads.round)
	r.releaseReads() // a single voter confirms alone
}

// startQueuedReads starts the reads that waited for the first commit of the term.
func (r *Raft) startQueuedReads() {
	if len(r.reads.waiting) == 0 || !r.committedInTerm() {
		return
	}
	r.reads.round++
	for _, ctx := range r.reads.waiting {
		r.reads.pending = append(r.reads.pending, readRequest{ctx: ctx, index: r.log.commit, round: r.reads.round})
	}
	r.reads.waiting = r.reads.waiting[:0]
	r.bcastHeartbeat(r.reads.round)
	r.releaseReads()
}

// readAck records that pr acknowledged a heartbeat of round.
func (r *Raft) readAck(pr *progress, round uint64) {
	if round > r.reads.round || round <= pr.readAck {
		return
	}
	pr.readAck = round
	r.releaseReads()
}

// releaseReads answers every pending read whose round a quorum confirmed.
func (r *Raft) releaseReads() {
	if len(r.reads.pending) == 0 || r.role != Leader {
		return
	}
	confirmed := r.quorumValue(r.reads.round, func(pr *progress) uint64 { return pr.readAck })
	n := 0
	for n < len(r.reads.pending) && r.reads.pending[n].round <= confirmed {
		q := r.reads.pending[n]
		r.reads.out = append(r.reads.out, ReadState{Index: q.index, Ctx: q.ctx})
		n++
	}
	r.reads.pending = r.reads.pending[:copy(r.reads.pending, r.reads.pending[n:])]
}
