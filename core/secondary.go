package core

// currentPrimaryMsg adopts cfg if newer and reports whether a message carrying it comes
// from the volume's current primary at our epoch. Older senders are told our epoch.
func (n *Node) currentPrimaryMsg(from Addr, cfg *Config) *volume {
	v := n.learnConfig(*cfg)
	if v == nil {
		return nil
	}
	if cfg.Epoch < v.cfg.Epoch {
		n.send(from, &ReplicaAck{Vol: v.cfg.Volume, Epoch: v.cfg.Epoch})
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
		EchoSentAt: echoSentAt, CommitKnown: v.commit})
}

// needSync tells the primary our log diverges, with every block we wrote after the point
// we know was committed (those must be re-fetched).
func (n *Node) needSync(v *volume) {
	if n.now-v.lastNeedSync < n.p.RetransmitTimeout {
		return
	}
	v.lastNeedSync = n.now
	var dirty []uint64
	v.index.after(v.commit, func(b uint64, _ LSN) { dirty = append(dirty, b) })
	for _, mu := range v.unapplied {
		if mu.entry != nil {
			for i := uint64(0); i < mu.entry.Count(); i++ {
				dirty = append(dirty, mu.entry.Block+i)
			}
		} else {
			for _, b := range mu.sync.Blocks {
				dirty = append(dirty, b.Block)
			}
		}
	}
	n.send(v.cfg.Primary, &ReplicaAck{Vol: v.cfg.Volume, Epoch: v.cfg.Epoch, Last: v.durable, LastEpoch: v.durableEpoch,
		NeedSync: true, CommitKnown: v.commit, Dirty: dirty})
}

func (n *Node) onHeartbeat(from Addr, m *Heartbeat) {
	v := n.currentPrimaryMsg(from, &m.Config)
	if v == nil {
		return
	}
	v.commit = max(v.commit, min(m.Commit, v.matched))
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
	v.lastHeard = n.now
	mu := &mutation{sync: s}
	v.early = nil
	v.logMutation(mu)
	v.matched = s.Upto
	v.unapplied = append(v.unapplied, mu)
	n.append(encodeRecSync(s), func() { n.mutationDurable(v, mu) })
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
		n.send(n.authGuess.To(), &AuthRequest{Op: OpPromote, ReqID: n.authReqID, Vol: v.cfg.Volume, FromEpoch: from, Node: n.p.Self})
	}
	if v.promoteFrom == from && v.promoteDurable {
		send()
		return
	}
	if v.promoteFrom < from {
		v.promoteFrom, v.promoteDurable = from, false
		n.append(encodeRecPromote(v.cfg.Volume, from), func() {
			if v.promoteFrom == from {
				v.promoteDurable = true
				if v.wantPromote && v.cfg.Epoch == from {
					send()
				}
			}
		})
	}
}

func (n *Node) secondaryTick(v *volume) {
	if !v.cfg.IsInSync(n.p.Self) {
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
	if v.healthPending && n.now-v.healthSent < n.p.ProbeTimeout*3 {
		return
	}
	v.healthPending, v.healthSent = true, n.now
	n.send(n.authGuess.To(), &HealthCheck{Vol: v.cfg.Volume, Epoch: v.cfg.Epoch})
}
