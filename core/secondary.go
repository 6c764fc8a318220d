package core

import "slices"

// currentPrimaryMsg adopts cfg if newer and reports whether a message carrying it comes
// from the volume's current primary at our epoch. Older senders are told our epoch.
func (n *Node) currentPrimaryMsg(from Addr, cfg *Config) *volume {
	v := n.learnConfig(*cfg)
	if v == nil {
		return nil
	}
	if cfg.Epoch < v.cfg.Epoch {
		n.send(from, &ReplicaAck{Vol: v.cfg.Volume, Epoch: v.cfg.Epoch, Disk: n.p.Disk})
		return nil
	}
	if v.prim != nil || from != v.cfg.Primary {
		return nil
	}
	v.lastHeard = n.now
	v.wantPromote, v.healthPending = false, false
	return v
}

// maxEarly bounds the replicates a member holds while it waits for a gap to fill.
const maxEarly = 256

func (n *Node) onReplicate(from Addr, m *Replicate) {
	v := n.currentPrimaryMsg(from, &m.Config)
	if v == nil {
		return
	}
	if v.syncing {
		// Our block store is part-way through a catch-up series: only the series' final
		// Sync makes it a state an entry can follow.
		n.needSync(v)
		return
	}
	if v.early == nil || v.earlyEpoch != v.cfg.Epoch {
		v.early, v.earlyEpoch = map[LSN]*Replicate{}, v.cfg.Epoch
	}
	n.acceptReplicate(v, m)
	// Entries that arrived early (reordering) may now follow.
	for {
		next := v.early[v.last+1]
		if next == nil {
			break
		}
		delete(v.early, v.last+1)
		if !n.acceptReplicate(v, next) {
			break
		}
	}
}

// acceptReplicate appends m's entry if it follows our log; it reports whether it did.
func (n *Node) acceptReplicate(v *volume, m *Replicate) bool {
	e := &m.Entry
	switch {
	case e.LSN == v.last+1 && m.PrevEpoch == v.lastEpoch:
		// Our log follows the primary's again: a catch-up we asked for and that has not
		// started is moot. Its answer, still in flight, would be the primary's state at an
		// LSN we have passed, and applying it would drop this entry, which the primary counts
		// as ours once we acknowledge it (seed 7001450: a write acknowledged on that count was
		// lost when this member was promoted). Forgetting the request makes us ignore it.
		if !v.syncing {
			v.series = syncSeries{}
		}
		mu := &mutation{entry: e}
		v.logMutation(mu)
		v.matched = e.LSN
		v.commit = max(v.commit, min(m.Commit, v.matched))
		v.unapplied = append(v.unapplied, mu)
		n.append(encodeRecEntry(v.cfg.Volume, v.commit, e), func() { n.mutationDurable(v, mu) })
		return true
	case e.LSN <= v.last:
		if ep, ok := v.epochAt(e.LSN); ok && ep == e.Epoch {
			v.matched = max(v.matched, e.LSN)
			v.commit = max(v.commit, min(m.Commit, v.matched))
			if v.durable >= e.LSN {
				n.sendAckToPrimary(v, 0)
			}
			return false
		}
		n.needSync(v)
	case e.LSN > v.last+1:
		// A gap (loss or reordering): hold it; the primary retransmits what is lost.
		if len(v.early) < maxEarly {
			v.early[e.LSN] = m
		} else {
			n.sendAckToPrimary(v, 0)
		}
	default:
		n.needSync(v)
	}
	return false
}

// sendAckToPrimary reports our durable log position (echoSentAt != 0: with a promise).
func (n *Node) sendAckToPrimary(v *volume, echoSentAt int64) {
	if v.prim != nil {
		return
	}
	n.send(v.cfg.Primary, &ReplicaAck{Vol: v.cfg.Volume, Epoch: v.cfg.Epoch, Last: v.durable, LastEpoch: v.durableEpoch,
		EchoSentAt: echoSentAt, CommitKnown: v.commit, Syncing: v.syncing, Disk: n.p.Disk})
}

// needSync tells the primary our log diverges or lags (rate-limited; not while a part we
// accepted is still being made durable: we ask for the next one once it is).
func (n *Node) needSync(v *volume) {
	if n.now-v.lastNeedSync < n.p.RetransmitTimeout || v.partPending {
		return
	}
	n.askSync(v)
}

// askSync sends the NeedSync ack: our catch-up series (DESIGN 2.5) and, in its first round,
// every block we wrote after the point we know was committed (those must be re-fetched),
// at or above the round's cursor.
func (n *Node) askSync(v *volume) {
	if v.prim != nil {
		return
	}
	v.lastNeedSync = n.now
	sr := &v.series
	if sr.epoch != v.cfg.Epoch || !sr.started() {
		*sr = syncSeries{epoch: v.cfg.Epoch, base: v.commit}
	}
	var dirty []uint64
	var dirtyUpto uint64
	if sr.round == 0 {
		dirty, dirtyUpto = n.dirtyBlocks(v, sr.cursor)
	}
	n.send(v.cfg.Primary, &ReplicaAck{Vol: v.cfg.Volume, Epoch: v.cfg.Epoch, Last: v.durable, LastEpoch: v.durableEpoch,
		NeedSync: true, CommitKnown: v.commit, Dirty: dirty, DirtyUpto: dirtyUpto, Syncing: v.syncing,
		SyncBase: sr.base, SyncRound: sr.round, SyncCursor: sr.cursor, SyncStart: sr.start, Disk: n.p.Disk})
}

// maxDirtyList bounds the dirty blocks a NeedSync ack lists when it lists all of them (a
// variable for tests only).
var maxDirtyList = 4096

// dirtyBlocks lists, sorted, the blocks at or above cursor that we wrote after our
// known-committed point (index LSN above it, or in a mutation not written yet). The work
// and the list are bounded: when there are more than maxDirtyList (the blocks parts wrote
// count, so after a restart in a long catch-up nearly all do), it scans block numbers from
// the cursor instead and lists only those below upto (0: the list is complete).
func (n *Node) dirtyBlocks(v *volume, cursor uint64) (dirty []uint64, upto uint64) {
	limit := max(n.p.MaxSyncBlocks, maxDirtyList)
	visited, complete := 0, true
	v.index.afterWhile(v.commit, func(b uint64, _ LSN) bool {
		if visited++; visited > limit {
			complete = false
			return false
		}
		if b >= cursor {
			dirty = append(dirty, b)
		}
		return true
	})
	pending := map[uint64]bool{}
	for _, mu := range v.unapplied {
		for _, b := range mu.blocks() {
			pending[b] = true
			if b >= cursor && complete {
				dirty = append(dirty, b)
			}
		}
	}
	if complete {
		slices.Sort(dirty)
		return slices.Compact(dirty), 0
	}
	dirty = dirty[:0]
	b := cursor
	for scanned := 0; b < v.cfg.Blocks && scanned < n.p.MaxSyncBlocks*syncScanFactor && len(dirty) < n.p.MaxSyncBlocks; scanned++ {
		if v.index.get(b) > v.commit || pending[b] {
			dirty = append(dirty, b)
		}
		b++
	}
	if b >= v.cfg.Blocks {
		return dirty, 0
	}
	return dirty, b
}

func (n *Node) onHeartbeat(from Addr, m *Heartbeat) {
	v := n.currentPrimaryMsg(from, &m.Config)
	if v == nil {
		return
	}
	if !v.syncing { // mid-series our known-committed point stays put (it is the series' anchor)
		v.commit = max(v.commit, min(m.Commit, v.matched))
	}
	v.q.peerCredits = m.Credits
	if m.WantState {
		v.lastNeedSync = 0
		n.needSync(v)
	}
	if v.cfg.Epoch <= v.promoteFrom {
		// We asked to replace this primary; that request may still win. No promise: the
		// primary's lease lapses and it shrinks us out (or we are promoted).
		n.sendAckToPrimary(v, 0)
		return
	}
	// The promise: we will not seek promotion before now + L on our clock.
	v.promiseUntil = max(v.promiseUntil, n.now+n.p.Lease)
	n.sendAckToPrimary(v, m.SentAt)
}

func (n *Node) onSync(from Addr, s *Sync) {
	v := n.vols[s.Vol]
	if v == nil || v.prim != nil || s.Epoch != v.cfg.Epoch || from != v.cfg.Primary {
		return
	}
	if sr := &v.series; sr.epoch != v.cfg.Epoch || s.Round != sr.round || s.ReqBase != sr.base || sr.cursor != 0 || v.partPending {
		return // not the answer to our current request (a duplicate, or one a part overtook)
	}
	v.lastHeard = n.now
	v.series = syncSeries{}
	v.syncing = false // the block store becomes the primary's state at Upto once this is written
	if s.Round > 0 {
		n.syncSeriesDone++
	}
	mu := &mutation{sync: s}
	v.early = nil
	v.logMutation(mu)
	v.matched = s.Upto
	v.unapplied = append(v.unapplied, mu)
	n.append(encodeRecSync(s), func() { n.mutationDurable(v, mu) })
}

// onSyncPart applies one part of a catch-up round if it answers our current request: its
// blocks go to the block store (once journaled) with the primary's LSNs; the log stays put.
func (n *Node) onSyncPart(from Addr, s *SyncPart) {
	v := n.vols[s.Vol]
	if v == nil || v.prim != nil || s.Epoch != v.cfg.Epoch || from != v.cfg.Primary {
		return
	}
	sr := &v.series
	if sr.epoch != v.cfg.Epoch || v.partPending || s.Round != sr.round || s.Cursor != sr.cursor || s.ReqBase != sr.base {
		return // a duplicate, or an answer to a request we have moved past
	}
	if sr.cursor > 0 && (s.Base != sr.base || s.Start != sr.start) {
		return
	}
	if !validPart(v, s) {
		return
	}
	if v.promoteFrom >= v.cfg.Epoch {
		return // our request to replace this primary may still win: never mix our blocks meanwhile
	}
	v.lastHeard = n.now
	v.wantPromote, v.healthPending = false, false
	v.syncing = true
	// A part's blocks are the primary's state at Start or later; lowering our known-committed
	// point to Start keeps every block whose LSN is at most it at its committed value there.
	v.commit = min(v.commit, s.Start)
	if s.End {
		*sr = syncSeries{epoch: sr.epoch, base: s.Start, round: sr.round + 1}
	} else {
		sr.base, sr.start, sr.cursor = s.Base, s.Start, s.Next
	}
	v.early = nil
	mu := &mutation{part: s}
	v.unapplied = append(v.unapplied, mu)
	v.partPending = true
	n.append(encodeRecSyncPart(s), func() { n.partDurable(v, mu) })
}

// validPart checks a part's shape: its round's points in order, its blocks ascending inside
// [Cursor, Next) (to the volume's end for a round's last part), none newer than Upto.
func validPart(v *volume, s *SyncPart) bool {
	if s.Base > s.Start || s.Start > s.Upto || (!s.End && s.Next <= s.Cursor) {
		return false
	}
	lo := s.Cursor
	for _, b := range s.Blocks {
		if b.Block < lo || b.Block >= v.cfg.Blocks || (!s.End && b.Block >= s.Next) || b.LSN > s.Upto {
			return false
		}
		lo = b.Block + 1
	}
	return true
}

// partDurable: a part is journaled; its blocks go to the block store (after everything
// logged before it) and we ask for the next part at once.
func (n *Node) partDurable(v *volume, mu *mutation) {
	if v.deleted {
		return
	}
	mu.durable = true
	v.partPending = false
	n.syncPartsApplied++
	if v.prim != nil {
		return // never: a syncing member is not promoted
	}
	n.writeDurablePrefix(v)
	n.askSync(v)
}

// healthRedirected: the member our health check went to does not lead. Ask again soon
// rather than a probe's timeout later: after a quarter of RetransmitTimeout when it named
// a leader, after RetransmitTimeout when it knows none (an election is under way). The
// spacing bounds the requests if stale hints point members at each other.
func (n *Node) healthRedirected(v *volume, hinted bool) {
	if !v.healthPending {
		return
	}
	wait := n.p.RetransmitTimeout
	if hinted {
		wait /= 4
	}
	v.healthTo = 0 // it answered
	v.healthRetry = min(v.healthRetry, v.healthSent+wait)
}

func (n *Node) onHealthResult(r *HealthResult) {
	v := n.learnConfig(r.Config)
	if v == nil || v.prim != nil || r.Epoch != v.cfg.Epoch || !v.healthPending {
		return
	}
	v.healthPending = false
	if r.Healthy {
		// The primary answers the authority: only our link to it is broken. It will shrink
		// us out; no failover.
		v.lastHeard = n.now
		return
	}
	v.wantPromote = true
}

// requestPromotion asks the authority to promote us from our epoch, once the intent is
// durable (so a restart still withholds promises at that epoch).
func (n *Node) requestPromotion(v *volume) {
	from := v.cfg.Epoch
	send := func() {
		n.authReqID++
		v.promoteReq = n.authReqID
		n.send(n.authTo(), &AuthRequest{Op: OpPromote, ReqID: n.authReqID, Vol: v.cfg.Volume, FromEpoch: from, Node: n.p.Self,
			Disk: n.p.Disk})
	}
	if v.promoteFrom == from && v.promoteDurable {
		send()
		return
	}
	if v.promoteFrom < from {
		v.promoteFrom, v.promoteDurable = from, false
		n.append(encodeRecPromote(v.cfg.Volume, from), func() {
			if v.promoteFrom == from && !v.deleted {
				v.promoteDurable = true
				if v.wantPromote && v.cfg.Epoch == from && !v.syncing {
					send()
				}
			}
		})
	}
}

func (n *Node) secondaryTick(v *volume) {
	idle := !v.cfg.IsInSync(n.p.Self) || v.syncing || n.stranger(v)
	if idle && n.now-v.lastHeard >= 3*n.p.FailTimeout && n.now-v.configAsked >= 3*n.p.FailTimeout {
		// A replica that never seeks promotion, unheard for long: the authority may have
		// taken it out of the volume while we were away, or a stale primary's message made
		// it (we then forget it).
		v.configAsked = n.now
		n.askConfig(v)
	}
	if idle {
		// (A member part-way through a catch-up series holds no consistent state: it never
		// seeks promotion. Its primary shrinks it out if it stays behind. Nor does a node
		// whose disk is not the one recorded for this replica: it holds none of the data.)
		v.wantPromote, v.healthPending = false, false
		return
	}
	if v.wantPromote {
		if n.now >= v.promiseUntil && n.now >= n.restartHold && n.now-v.promoteSent >= 3*n.p.RetransmitTimeout {
			v.promoteSent = n.now
			n.requestPromotion(v)
		}
		return
	}
	if n.now-v.lastHeard < n.p.FailTimeout {
		return
	}
	if v.healthPending && n.now < v.healthRetry && !n.authMoved(v.healthTo) {
		return
	}
	if v.healthPending {
		// Unanswered: a live leader answers within its probe's timeout and a round trip, so
		// the member asked is down or cut off (or the message was lost): ask the next one.
		n.authGuess.Unanswered(v.healthTo)
	}
	to := n.authTo()
	v.healthPending, v.healthSent, v.healthTo = true, n.now, to
	v.healthRetry = n.now + n.p.ProbeTimeout + n.p.RetransmitTimeout
	n.send(to, &HealthCheck{Vol: v.cfg.Volume, Epoch: v.cfg.Epoch})
}
