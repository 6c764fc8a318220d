package core

// volume is one replica of a volume on this node: its log position, block index,
// deduplication table and, by role, primary or secondary state.
type volume struct {
	cfg Config

	last         LSN // highest LSN in the log (issued to the journal)
	lastEpoch    Epoch
	durable      LSN // LSN of the latest completed append (follows the log, including resets by a Sync)
	durableEpoch Epoch
	commit       LSN // primary: committed; secondary: known committed
	applied      LSN // highest LSN whose blocks are in the block store
	appliedEpoch Epoch

	index  *blockIndex
	dedup  *dedupTable
	epochs *epochLog

	// unapplied: log mutations whose blocks are not in the block store yet, in log order.
	// A secondary writes them as soon as they are durable; a primary when they commit.
	unapplied []*mutation

	prim *primaryState // non-nil while this node acts as primary
	q    volQoS        // admission (on the primary)
	st   *volStats     // latency and admission figures, from the first promotion on

	// secondary state
	matched       LSN   // our log matches the current primary's up to here
	lastHeard     int64 // last heartbeat or replicate from the current primary
	promiseUntil  int64 // we promised not to seek promotion before this time
	healthPending bool
	healthSent    int64
	healthRetry   int64 // ask again if no answer came by then
	healthTo      Addr  // where the pending health check went (0: it answered NotLeader)
	wantPromote   bool
	promoteSent   int64
	// promoteFrom: the highest epoch we asked to be promoted from (journaled before the
	// request is sent). A request may still win while it is in flight, so we never promise
	// to a primary at that epoch or an older one.
	promoteFrom Epoch
	// growAt/growNode: a Grow this node (as primary) asked for, journaled before it is
	// sent. Until the authority's epoch moves past growAt the request may still be
	// granted, so the member counts in commits and in the lease.
	// grantedAt: the epoch this process's own Promote or Renew was granted (0: none yet).
	// The node acts as primary only at an epoch at or above it (DESIGN 2.4): such an epoch
	// was issued after the process started, so no earlier incarnation sent entries under it.
	grantedAt  Epoch
	promoteReq uint64 // the request id of the last Promote sent
	// renewHold: when our last promise to the volume's previous primary runs out (0 if we
	// were its primary). A node made primary by the authority rather than by its own
	// Promote (a handover, DESIGN 2.13) renews only after it.
	renewHold      int64
	configAsked    int64  // a secondary left out of the in-sync set last asked for the configuration
	configReq      uint64 // the request id of the last OpGetConfig sent for the volume
	growAt         Epoch
	growNode       Addr
	growDurable    bool
	promoteDurable bool
	lastNeedSync   int64
	early          map[LSN]*Replicate // replicates ahead of our log, waiting for a gap to fill
	repairs        map[uint64]*repair // corrupt blocks being repaired
	scrubNext      uint64             // next block the scrubber verifies
	earlyEpoch     Epoch
	// Catch-up in parts (DESIGN 2.5). syncing: the block store mixes states (a part was
	// accepted, the series' final Sync not yet): never promoted, never counted as caught
	// up; durable (part records set it, a Sync clears it, snapshots keep it). series: the
	// volatile state of the current series (reset by a restart or an epoch change).
	// partPending: an accepted part is not durable yet (the next is asked for once it is).
	syncing     bool
	series      syncSeries
	partPending bool
	// deleted: the volume was deleted on this node; completions still pending for it
	// (journal appends issued before) must not touch its blocks or send anything.
	deleted bool
}

func newVolume(cfg Config) *volume {
	return &volume{cfg: cfg, index: newBlockIndex(), dedup: newDedupTable(), epochs: newEpochLog(), q: volQoS{peerCredits: -1}}
}

// logMutation records m in the log's in-memory description (position, epochs, dedup).
func (v *volume) logMutation(m *mutation) {
	if e := m.entry; e != nil {
		v.last, v.lastEpoch = e.LSN, e.Epoch
		v.epochs.set(e.LSN, e.Epoch)
		if e.Client != 0 {
			v.dedup.add(DedupRec{Client: e.Client, Req: e.Req, LSN: e.LSN, Oldest: e.Oldest})
		}
		return
	}
	s := m.sync
	v.last, v.lastEpoch = s.Upto, s.UptoEpoch
	v.epochs.reset(s.Upto, s.UptoEpoch)
	v.dedup.replace(s.Dedup)
	v.commit = max(min(v.commit, s.Upto), min(s.Commit, s.Upto))
}

func (v *volume) epochAt(n LSN) (Epoch, bool) {
	if n == v.last {
		return v.lastEpoch, true
	}
	return v.epochs.get(n)
}

// logMatches: our log holds an entry at LSN last created at epoch (so, by log matching, a
// log ending there agrees with ours up to it).
func (v *volume) logMatches(last LSN, epoch Epoch) bool {
	e, ok := v.epochAt(last)
	return ok && last <= v.last && e == epoch
}

func (v *volume) inRange(block uint64, count uint64) bool {
	return count > 0 && block < v.cfg.Blocks && count <= v.cfg.Blocks-block
}

// syncSeries is a member's catch-up series with its primary at one epoch (DESIGN 2.5).
type syncSeries struct {
	epoch  Epoch  // 0: none (fresh after a restart)
	base   LSN    // the round's base: blocks whose LSN on the primary is <= base are current here
	round  uint64 // 0: the first round (Dirty is reported)
	cursor uint64 // the next block number the round needs (0: not started)
	start  LSN    // the round's start (set by its first part)
}

// started reports whether a part of the series was accepted (the base is then fixed).
func (s *syncSeries) started() bool { return s.round > 0 || s.cursor > 0 }
