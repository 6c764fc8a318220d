package raft

// progressState is how the leader replicates to one follower.
type progressState uint8

const (
	// stateProbe: the leader does not know where the follower's log matches;
	// it sends one MsgApp at a time and waits for the answer (or a heartbeat
	// response) before the next.
	stateProbe progressState = iota
	// stateReplicate: the follower matches up to match; the leader streams
	// MsgApps optimistically, at most MaxInflight unacknowledged.
	stateReplicate
	// stateSnapshot: the follower needs entries the leader compacted away; a
	// MsgSnap is in flight and nothing else is sent until it is acknowledged or
	// snapTicks reaches an election timeout.
	stateSnapshot
)

// progress is the leader's view of one other voter.
type progress struct {
	id           uint64
	match        uint64 // highest index known to be replicated (and durable) there
	next         uint64 // next index to send
	state        progressState
	probeSent    bool     // stateProbe: a MsgApp is unanswered
	pendingSnap  uint64   // stateSnapshot: index of the snapshot sent
	snapTicks    int      // stateSnapshot: ticks since it was sent
	inflight     []uint64 // stateReplicate: last index of each unacknowledged MsgApp, ascending
	recentActive bool     // heard from it since the last check-quorum
	readAck      uint64   // highest read-index round it acknowledged
}

func newProgress(id, next uint64, maxInflight int) progress {
	return progress{id: id, next: next, inflight: make([]uint64, 0, min(maxInflight, 64))}
}

func (p *progress) resetState(s progressState) {
	p.state = s
	p.probeSent = false
	p.pendingSnap = 0
	p.snapTicks = 0
	p.inflight = p.inflight[:0]
}

func (p *progress) becomeProbe() {
	p.resetState(stateProbe)
	p.next = p.match + 1
}

func (p *progress) becomeReplicate() {
	p.resetState(stateReplicate)
	p.next = p.match + 1
}

func (p *progress) becomeSnapshot(index uint64) {
	p.resetState(stateSnapshot)
	p.pendingSnap = index
	p.next = index + 1
}

// paused reports whether the leader must not send the follower another MsgApp now.
func (p *progress) paused(maxInflight int) bool {
	switch p.state {
	case stateProbe:
		return p.probeSent
	case stateReplicate:
		return len(p.inflight) >= maxInflight
	}
	return true
}

// maybeUpdate records an acknowledgement of index n; it reports whether match grew.
func (p *progress) maybeUpdate(n uint64) bool {
	updated := false
	if p.match < n {
		p.match = n
		p.probeSent = false
		updated = true
	}
	p.next = max(p.next, n+1)
	return updated
}

// maybeDecrTo handles a rejection of the MsgApp whose previous index was
// rejected; hint is where the follower's log may match. It reports whether
// next moved (false: the rejection is stale).
func (p *progress) maybeDecrTo(rejected, hint uint64) bool {
	if p.state == stateReplicate {
		if rejected <= p.match {
			return false
		}
		p.next = p.match + 1
		return true
	}
	if p.next == 0 || p.next-1 != rejected {
		return false
	}
	p.next = max(min(rejected, hint+1), p.match+1)
	p.probeSent = false
	return true
}

// sent records a MsgApp whose last entry is last (0: no entries).
func (p *progress) sent(last uint64) {
	switch p.state {
	case stateReplicate:
		if last > 0 {
			p.next = last + 1
			p.inflight = append(p.inflight, last)
		}
	case stateProbe:
		p.probeSent = true
	}
}

// freeTo forgets in-flight MsgApps acknowledged by an ack of index.
func (p *progress) freeTo(index uint64) {
	n := 0
	for n < len(p.inflight) && p.inflight[n] <= index {
		n++
	}
	p.inflight = p.inflight[:copy(p.inflight, p.inflight[n:])]
}

// freeFirst forgets the oldest in-flight MsgApp (it may have been lost).
func (p *progress) freeFirst() {
	if len(p.inflight) > 0 {
		p.inflight = p.inflight[:copy(p.inflight, p.inflight[1:])]
	}
}
