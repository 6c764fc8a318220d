package core

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cairnstore/cairn/core/qos"
)

// Envelope is an outgoing message.
type Envelope struct {
	To  Addr
	Msg Message
}

// Output is everything a node asks its driver to do after a call.
type Output struct {
	Msgs []Envelope
	Ops  []StorageOp
	// Issued lists configurations the authority made durable and announced (for the simulator's checks).
	Issued []IssuedConfig
	// Peers: nodes that joined the running cluster, with the addresses to reach them at,
	// learned from the authority (the driver adds them to its address book).
	Peers []NodeEntry
	// Fatal is set when the node cannot go on (a storage error): the driver must stop it
	// and may restart it from its storage.
	Fatal error
}

// IssuedConfig is a configuration the authority applied and the request that made it
// (From and ReqID 0: re-announced from a snapshot), so a checker can tell exactly which
// unanswered request took effect.
type IssuedConfig struct {
	Config Config
	From   Addr
	ReqID  uint64
}

// Node is one storage node's state machine. It is not safe for concurrent use: one
// driver goroutine calls it.
type Node struct {
	p   Params
	st  Storage
	rng *Rand
	now int64

	vols   map[VolumeID]*volume
	volIDs []VolumeID // sorted, for deterministic iteration

	// tombs: volumes this node deleted, so nothing of them is accepted again (a late
	// message from a primary that has not heard yet cannot bring one back). Bounded:
	// tombOrder is oldest first. deleting counts deletions whose record is not yet durable:
	// no checkpoint is taken meanwhile (their blocks are freed once the record is durable,
	// and a checkpoint must cover that).
	tombs     map[VolumeID]hostTomb
	tombOrder []VolumeID
	deleting  int

	auth   *authority
	global *qos.Global // node-wide adaptive admission

	out      Output
	opSeq    uint64
	inflight []opWait // issued storage ops, FIFO

	sinceCheckpoint int
	checkpointing   bool
	restartHold     int64 // no promotion before this local time (promises made before a crash)
	authReqID       uint64
	authGuess       LeaderGuess // where authority requests go
	cellDisk        cellDisk    // the cell's Raft state while the journal is replayed
	raftRand        *Rand
	tickCount       uint64

	lastBeat  int64           // last OpNodeBeat (or OpJoinNode) sent
	joined    bool            // Params.Join: the authority admitted us
	peersSeen map[Addr]string // joined nodes' addresses already passed to the driver
	// The copy budget (copyBudget): tokens in bytes, as of copyAt; copyWaits counts the
	// catch-up answers it held back (NodeStats).
	copyTokens, copyAt int64
	copyWaits          uint64
	hostAsked          map[VolumeID]int64 // open slots this node asked for, and when (bounded by maxInvites per beat)

	syncPartsSent, syncPartsApplied, syncSeriesDone uint64 // NodeStats
	reMirrorBytes                                   uint64 // NodeStats
}

type opWait struct {
	seq  uint64
	kind OpKind
	at   int64 // issued (local clock): the node's storage latency feeds its admission rate
	done func()
}

// NewNode builds a node; call Start before anything else.
func NewNode(p Params, st Storage, rng *Rand) (*Node, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	g, err := qos.NewGlobal(p.Global, 0)
	if err != nil {
		return nil, fmt.Errorf("core: %w", err)
	}
	n := &Node{p: p, st: st, rng: rng, vols: map[VolumeID]*volume{}, tombs: map[VolumeID]hostTomb{}, hostAsked: map[VolumeID]int64{}, peersSeen: map[Addr]string{}, global: g,
		authGuess: NewLeaderGuess(p.Authorities)}
	if slices.Contains(p.Authorities, p.Self) {
		n.auth = newAuthority(n)
		n.raftRand = NewRand(rng.Uint64()) // election jitter: its own stream of the node's seed
	}
	return n, nil
}

// Start recovers the node's durable state (replaying the journal onto the block store).
func (n *Node) Start(now int64) error {
	n.now = now
	// Authority request ids start at the clock, so a restarted node never reuses one (the
	// authority remembers results by sender and id).
	n.authReqID = uint64(max(now, 0))
	snap, recs, err := n.st.Load()
	if err != nil {
		return fmt.Errorf("core: load storage: %w", err)
	}
	if snap != nil {
		r, err := decodeRecord(snap)
		if err != nil || r.kind != recSnapshot {
			return fmt.Errorf("core: bad snapshot: %w", errors.Join(err, ErrDecode))
		}
		if err := n.restoreSnapshot(r.snap); err != nil {
			return err
		}
	}
	for i, b := range recs {
		r, err := decodeRecord(b)
		if err != nil {
			return fmt.Errorf("core: journal record %d: %w", i, err)
		}
		if err := n.replay(r); err != nil {
			return fmt.Errorf("core: replay record %d: %w", i, err)
		}
	}
	n.sinceCheckpoint = len(recs)
	if n.auth != nil {
		if err := n.auth.startCell(n.cellDisk); err != nil {
			return err
		}
		n.cellDisk = cellDisk{}
	}
	// Any promise made before the crash expired at most one lease after it was made.
	n.restartHold = now + n.p.Lease
	for _, id := range n.volIDs {
		v := n.vols[id]
		v.lastHeard = now
		if v.cfg.Primary == n.p.Self {
			n.startPrimary(v)
		}
	}
	if n.auth != nil {
		n.auth.cell.process() // committed entries after the snapshot are applied again
	}
	return nil
}

func (n *Node) restoreSnapshot(s *snapshot) error {
	for i := range s.vols {
		vs := &s.vols[i]
		v := n.addVolume(vs.cfg)
		v.last, v.lastEpoch, v.commit, v.promoteFrom = vs.last, vs.lastEpoch, vs.commit, vs.promote
		v.promoteDurable = true
		v.growAt, v.growNode, v.growDurable = vs.growAt, vs.growNode, true
		v.durable, v.durableEpoch = vs.last, vs.lastEpoch
		for _, b := range vs.index {
			v.index.set(b.Block, b.LSN)
		}
		v.dedup.replace(vs.dedup)
		for _, e := range vs.epochs {
			v.epochs.set(e.LSN, Epoch(e.Req))
		}
		// The block store holds the state at the checkpoint; the snapshot's unapplied
		// mutations come after it.
		v.applied, v.appliedEpoch = vs.last, vs.lastEpoch
		for j := range vs.unapplied {
			if err := n.writeMutation(v, &vs.unapplied[j]); err != nil {
				return err
			}
		}
		v.applied, v.appliedEpoch = vs.last, vs.lastEpoch
	}
	for _, id := range s.syncing {
		v := n.vols[id]
		if v == nil {
			return fmt.Errorf("core: snapshot says unknown volume %d is syncing", id)
		}
		v.syncing = true
	}
	if s.cell != nil {
		if n.auth == nil {
			return fmt.Errorf("core: snapshot holds authority cell state, but this node is not a member")
		}
		n.cellDisk = *s.cell
	}
	for _, t := range s.tombs {
		if n.vols[t.vol] != nil {
			return fmt.Errorf("core: snapshot holds volume %d and its tombstone", t.vol)
		}
		n.setTomb(t.vol, t.epoch, true)
	}
	return nil
}

func (n *Node) replay(r *record) error {
	switch r.kind {
	case recConfig:
		if v := n.vols[r.vol]; v != nil {
			if r.cfg.Epoch > v.cfg.Epoch {
				v.cfg = r.cfg
			}
		} else if t, ok := n.tombs[r.vol]; !ok || r.cfg.Epoch > t.epoch {
			n.dropTomb(r.vol) // a new volume under a deleted one's id
			n.addVolume(r.cfg)
		}
	case recDelete:
		if v := n.vols[r.vol]; v != nil {
			n.forgetVolume(v)
		}
		if err := n.st.DeleteVolume(r.vol); err != nil {
			return fmt.Errorf("core: delete volume %d: %w", r.vol, err)
		}
		n.setTomb(r.vol, r.epoch, true)
	case recEntry, recSync:
		v := n.vols[r.vol]
		if v == nil {
			return fmt.Errorf("record for unknown volume %d", r.vol)
		}
		m := &mutation{entry: r.entry, sync: r.sync, durable: true}
		if r.sync != nil {
			v.syncing = false // a series' final Sync: the block store is the primary's state again
		}
		v.logMutation(m)
		if r.entry != nil {
			v.commit = max(v.commit, min(r.commit, r.entry.LSN))
		}
		v.durable, v.durableEpoch = v.last, v.lastEpoch
		if err := n.writeMutation(v, m); err != nil {
			return err
		}
	case recSyncPart:
		v := n.vols[r.vol]
		if v == nil {
			return fmt.Errorf("record for unknown volume %d", r.vol)
		}
		m := &mutation{part: r.part, durable: true}
		v.syncing = true
		v.commit = min(v.commit, r.part.Start)
		if err := n.writeMutation(v, m); err != nil {
			return err
		}
	case recPromote:
		if v := n.vols[r.vol]; v != nil {
			v.promoteFrom, v.promoteDurable = max(v.promoteFrom, r.epoch), true
		}
	case recGrow:
		if v := n.vols[r.vol]; v != nil && r.epoch >= v.growAt {
			v.growAt, v.growNode, v.growDurable = r.epoch, r.member, true
		}
	case recRaft:
		if n.auth == nil {
			return fmt.Errorf("authority cell record on a node that is not a member")
		}
		n.cellDisk.add(r.hard, r.rsnap, r.rents)
	case recCellID:
		if n.auth == nil {
			return fmt.Errorf("authority cell identity on a node that is not a member")
		}
		n.cellDisk.inc = r.inc
	case recSnapshot:
		return fmt.Errorf("snapshot record inside the journal")
	}
	return nil
}

// Drain returns and clears the accumulated output.
func (n *Node) Drain() Output {
	o := n.out
	n.out = Output{}
	return o
}

func (n *Node) send(to Addr, m Message) {
	n.out.Msgs = append(n.out.Msgs, Envelope{To: to, Msg: m})
}

// append issues a journal append; done runs when it is durable.
func (n *Node) append(rec []byte, done func()) {
	n.opSeq++
	n.out.Ops = append(n.out.Ops, StorageOp{Seq: n.opSeq, Kind: OpAppend, Data: rec})
	n.inflight = append(n.inflight, opWait{seq: n.opSeq, kind: OpAppend, at: n.now, done: done})
	n.sinceCheckpoint++
}

func (n *Node) fatal(err error) {
	if n.out.Fatal == nil {
		n.out.Fatal = err
	}
}

// StorageDone reports the completion of storage op seq.
func (n *Node) StorageDone(now int64, seq uint64, err error) {
	n.now = max(n.now, now)
	if len(n.inflight) == 0 || n.inflight[0].seq != seq {
		n.fatal(fmt.Errorf("core: storage completion %d out of order", seq))
		return
	}
	w := n.inflight[0]
	n.inflight = slices.Delete(n.inflight, 0, 1)
	if err != nil {
		n.fatal(fmt.Errorf("core: storage op %d: %w", seq, err))
		return
	}
	if w.kind == OpCheckpoint {
		n.checkpointing = false
	} else {
		n.global.Observe(n.now - w.at)
	}
	if w.done != nil {
		w.done()
	}
}

// authTo is where an authority request goes: the cell's leader when this node is a
// member of the cell that knows one (its Raft state follows elections, fresher than any
// guess: a secondary whose guess named a dead leader waited for three of its requests to
// go unanswered), else the guess.
func (n *Node) authTo() Addr {
	if n.auth != nil && n.auth.cell != nil {
		if l := n.auth.cell.leaderHint(); l != 0 {
			return l
		}
	}
	return n.authGuess.To()
}

// authMoved reports whether this node, a member of the cell, now follows a leader other
// than to, the member a pending request went to (to 0: it answered NotLeader): a new
// leader was elected meanwhile (to was the leader that died). Such a request is sent again
// at once; it is never answered by a member that no longer leads.
func (n *Node) authMoved(to Addr) bool {
	if to == 0 || n.auth == nil || n.auth.cell == nil {
		return false
	}
	l := n.auth.cell.leaderHint()
	return l != 0 && l != to
}

// Step handles one message from another endpoint.
func (n *Node) Step(now int64, from Addr, m Message) {
	n.now = max(n.now, now)
	switch m := m.(type) {
	case *ClientWrite:
		n.clientWrite(from, m, n.now, false)
	case *ClientRead:
		n.clientRead(from, m, n.now, false)
	case *ClientFlush:
		n.clientFlush(from, m, n.now)
	case *Replicate:
		n.onReplicate(from, m)
	case *Heartbeat:
		n.onHeartbeat(from, m)
	case *ReplicaAck:
		n.onReplicaAck(from, m)
	case *Sync:
		n.onSync(from, m)
	case *SyncPart:
		n.onSyncPart(from, m)
	case *Probe:
		// Only a node acting as the volume's primary answers: a wiped or stranger node that
		// the configuration still names must let its members fail over.
		if v := n.vols[m.Vol]; v != nil && v.prim != nil {
			n.send(from, &ProbeAck{Vol: m.Vol, Nonce: m.Nonce})
		}
	case *HealthResult:
		n.authGuess.Heard(from)
		n.onHealthResult(m)
	case *ConfigPush:
		if m.Deleted {
			n.onDeletePush(from, m.Config)
			return
		}
		n.learnConfig(m.Config)
		n.send(from, &ConfigPushAck{Vol: m.Config.Volume, Epoch: m.Config.Epoch})
	case *AuthReply:
		if m.Status == StatusNotLeader {
			n.authGuess.Redirected(m.Leader)
			if v := n.vols[m.Config.Volume]; v != nil && m.Op == 0 {
				// The answer to a health check (the only request answered with no op).
				n.healthRedirected(v, m.Leader != 0 && m.Leader != from)
			}
			return // the request is resent (retransmission) to the member named
		}
		n.authGuess.Heard(from)
		n.onAuthReply(m)
	case *RepairRequest:
		n.onRepairRequest(from, m)
	case *RepairReply:
		n.onRepairReply(m)
	case *AuthRequest, *HealthCheck, *ProbeAck, *ConfigPushAck:
		if n.auth != nil {
			n.auth.step(from, m)
		}
	case *RaftMsg:
		if n.auth != nil {
			n.auth.cell.step(m)
		}
	}
}

// Tick advances time: heartbeats, timeouts, retransmissions, checkpoints.
func (n *Node) Tick(now int64) {
	n.now = max(n.now, now)
	n.global.Tick(n.now, len(n.inflight))
	// Waiting requests compete for the node's tokens: start with a different volume each
	// tick so none is always first.
	n.tickCount++
	for i := range n.volIDs {
		v := n.vols[n.volIDs[(i+int(n.tickCount%uint64(len(n.volIDs))))%len(n.volIDs)]]
		if v.prim != nil {
			n.drainQueue(v)
		}
	}
	for _, id := range n.volIDs {
		v := n.vols[id]
		if v.prim != nil {
			n.primaryTick(v)
		} else {
			n.secondaryTick(v)
		}
		n.scrub(v)
	}
	if n.auth != nil {
		n.auth.cell.tick()
		n.auth.tick()
	}
	n.beat()
	n.maybeCheckpoint()
}

func (n *Node) maybeCheckpoint() {
	if n.checkpointing || n.deleting > 0 || n.sinceCheckpoint < n.p.CheckpointEvery {
		return
	}
	s := &snapshot{}
	for _, id := range n.volIDs {
		v := n.vols[id]
		vs := volSnap{cfg: v.cfg.Clone(), last: v.last, lastEpoch: v.lastEpoch, commit: v.commit, promote: v.promoteFrom,
			growAt: v.growAt, growNode: v.growNode,
			index: v.index.all(), dedup: v.dedup.upTo(^LSN(0)), epochs: v.epochs.list()}
		for _, m := range v.unapplied {
			vs.unapplied = append(vs.unapplied, *m)
		}
		s.vols = append(s.vols, vs)
		if v.syncing {
			s.syncing = append(s.syncing, id)
		}
	}
	if n.auth != nil {
		n.auth.cell.compact()
		d := n.auth.cell.disk
		s.cell = &d
	}
	for _, id := range n.tombOrder {
		s.tombs = append(s.tombs, tombRec{vol: id, epoch: n.tombs[id].epoch})
	}
	n.opSeq++
	n.out.Ops = append(n.out.Ops, StorageOp{Seq: n.opSeq, Kind: OpCheckpoint, Data: encodeSnapshot(s)})
	n.inflight = append(n.inflight, opWait{seq: n.opSeq, kind: OpCheckpoint})
	n.checkpointing = true
	n.sinceCheckpoint = 0
}

func (n *Node) addVolume(cfg Config) *volume {
	v := newVolume(cfg)
	n.vols[cfg.Volume] = v
	i, _ := slices.BinarySearch(n.volIDs, cfg.Volume)
	n.volIDs = slices.Insert(n.volIDs, i, cfg.Volume)
	return v
}

// writeMutation puts a durable mutation's blocks into the block store.
func (n *Node) writeMutation(v *volume, m *mutation) error {
	if m.entry != nil {
		e := m.entry
		if err := n.st.WriteBlocks(v.cfg.Volume, e.Block, e.Data); err != nil {
			return fmt.Errorf("core: write blocks: %w", err)
		}
		for i := uint64(0); i < e.Count(); i++ {
			v.index.set(e.Block+i, e.LSN)
			delete(v.repairs, e.Block+i) // rewritten whole
		}
		v.applied, v.appliedEpoch = e.LSN, e.Epoch
		return nil
	}
	blocks := func(bs []BlockImage) error {
		for _, b := range bs {
			if err := n.st.WriteBlocks(v.cfg.Volume, b.Block, b.Data); err != nil {
				return fmt.Errorf("core: write blocks: %w", err)
			}
			v.index.set(b.Block, b.LSN)
			delete(v.repairs, b.Block)
		}
		return nil
	}
	if p := m.part; p != nil {
		// The primary's images with its LSNs; the log (and applied) stay where they are.
		return blocks(p.Blocks)
	}
	s := m.sync
	if err := blocks(s.Blocks); err != nil {
		return err
	}
	v.applied, v.appliedEpoch = s.Upto, s.UptoEpoch
	return nil
}

// stranger reports whether this node's disk is not the one the configuration records for
// its replica of v: the disk was wiped or replaced, so it holds nothing the volume's history
// counts on (DESIGN 2.12).
func (n *Node) stranger(v *volume) bool {
	d := v.cfg.DiskOf(n.p.Self)
	return d != 0 && d != n.p.Disk
}

// learnConfig adopts cfg if it is newer than what this node knows, creating the replica
// if this node hosts it. It returns the volume (nil if not hosted here).
func (n *Node) learnConfig(cfg Config) *volume {
	if cfg.check() != nil {
		return n.vols[cfg.Volume]
	}
	v := n.vols[cfg.Volume]
	if v == nil {
		if !cfg.IsReplica(n.p.Self) {
			return nil
		}
		if t, ok := n.tombs[cfg.Volume]; ok {
			if cfg.Epoch <= t.epoch || !t.durable {
				return nil // the deleted volume (or a deletion still being journaled)
			}
			n.dropTomb(cfg.Volume) // a new volume under the deleted one's id
		}
		v = n.addVolume(cfg.Clone())
		v.lastHeard = n.now
		n.append(encodeRecConfig(&v.cfg), nil)
		if cfg.Primary == n.p.Self {
			n.startPrimary(v)
		}
		return v
	}
	if cfg.Epoch <= v.cfg.Epoch {
		return v
	}
	if !cfg.IsReplica(n.p.Self) {
		n.leaveVolume(v, cfg)
		return nil
	}
	old := v.cfg
	v.cfg = cfg.Clone()
	n.append(encodeRecConfig(&v.cfg), nil)
	wasPrimary := v.prim != nil
	switch {
	case wasPrimary && cfg.Primary == n.p.Self:
		n.primaryReconfigured(v)
	case wasPrimary:
		n.stepDown(v)
	case cfg.Primary == n.p.Self:
		// (A Promote waited for these already; a handover did not.)
		v.renewHold = max(v.promiseUntil, n.restartHold)
		n.startPrimary(v)
	default:
		if old.Primary != cfg.Primary {
			// A new primary: our log matches it up to what we know was committed.
			v.matched = v.commit
			v.lastHeard = n.now
			v.wantPromote = false
			v.healthPending = false
		}
	}
	return v
}
