package core

import (
	"errors"
	"maps"
	"slices"
)

// primaryState is what a node keeps while it is a volume's primary.
type primaryState struct {
	members       map[Addr]*member // every other replica host
	reconcileUpto LSN              // reads and acks wait until this is committed
	waiters       map[LSN][]waiter // clients waiting for an entry to commit
	flushes       []flushWait      // flushes waiting for what was logged before them to commit
	acks          []waiter         // committed, waiting for a valid lease to be answered
	lastHB        int64
	growing       Addr // member whose Grow is in flight: counted in every commit
	// renewing: this epoch was not granted to this process (a restart, or the role was
	// learned from a push): it creates no entry, sends no entry or catch-up and answers
	// no client until the authority grants a new epoch (OpRenew).
	renewing   bool
	renewAfter int64 // no Renew before this time
	// handingOver: our node is leaving (drained or removed) and we asked the authority to
	// make another member primary (OpHandover): we serve nothing until it answers, so no
	// write completes at our epoch once the next one is issued (DESIGN 2.13).
	handingOver   bool
	authOp        AuthOp
	authTarget    Addr
	authReq       uint64
	authEpoch     Epoch // the epoch authReq was sent from
	authSent      int64
	lastConfigAsk int64
}

type member struct {
	match      LSN   // its log matches ours up to here
	sent       LSN   // highest LSN sent to it (pipelining); falls back to match on timeout
	progressAt int64 // last time match advanced
	lastAck    int64 // last ack at our epoch
	healthyAt  int64 // last time it was caught up or advancing
	leaseUntil int64 // its promise, on our clock
	promisedAt int64 // when its last promise arrived
	wantState  bool  // its log diverges: ask for its state
	heard      bool  // it has acknowledged since we became primary: match is meaningful
	lastSync   int64
	syncReq    syncReq // the catch-up request last answered (a repeat waits RetransmitTimeout)
	lastResend int64
	disk       uint64 // the disk identity its acks carry (0: not heard yet)
}

// stranger: the member answers from another disk than the one the configuration records
// for it (wiped or replaced): whatever it acknowledged, it holds nothing the history
// counts on. It never counts in a commit and is shrunk out of the in-sync set.
func (m *member) stranger(v *volume, r Addr) bool {
	rec := v.cfg.DiskOf(r)
	return m.disk != 0 && rec != 0 && m.disk != rec
}

// syncReq identifies a member's catch-up request: when it differs from the last one
// answered, the member made progress and is answered at once.
type syncReq struct {
	commit, base, start LSN
	round, cursor       uint64
}

type waiter struct {
	to     Addr
	client uint64
	req    uint64
	at     int64 // arrival, for the latency histogram
	class  OpClass
}

type flushWait struct {
	upto LSN
	w    waiter
}

func (n *Node) startPrimary(v *volume) {
	if n.stranger(v) {
		// The configuration names us, but our disk is not the one it records: we hold
		// nothing of this volume. We neither serve nor answer probes, so a member takes over.
		return
	}
	p := &primaryState{members: map[Addr]*member{}, reconcileUpto: v.last, waiters: map[LSN][]waiter{}}
	for _, r := range v.cfg.Replicas {
		if r != n.p.Self {
			p.members[r] = &member{lastAck: n.now, healthyAt: n.now, promisedAt: n.now}
		}
	}
	v.prim = p
	v.wantPromote, v.healthPending = false, false
	n.applyQoS(v)
	if v.growAt == v.cfg.Epoch && v.growNode != 0 && p.members[v.growNode] != nil && !v.cfg.IsInSync(v.growNode) {
		// A Grow asked for before a restart may still be granted: count the member until
		// the authority answers it again.
		p.growing, p.authOp, p.authTarget = v.growNode, OpGrow, v.growNode
	}
	if v.grantedAt == 0 || v.cfg.Epoch < v.grantedAt || unboundInSync(&v.cfg) {
		p.renewing, p.renewAfter = true, n.now
		if v.promoteReq != 0 && v.promoteFrom+1 == v.cfg.Epoch {
			// Our Promote may be what made this epoch (the push overtook the answer):
			// wait a little for the answer before asking for another epoch.
			p.renewAfter = n.now + n.p.RetransmitTimeout
		} else if n.unboundMembers(v) {
			// A new volume: its members' disks are recorded with the first Renew. Wait a
			// little for their acks so they stay in the in-sync set.
			p.renewAfter = n.now + 2*n.p.HeartbeatInterval + n.p.RetransmitTimeout
		} else if p.authOp == 0 && n.now >= v.renewHold {
			n.sendAuth(v, OpRenew, n.p.Self)
		}
	}
	n.sendHeartbeats(v)
}

func (n *Node) stepDown(v *volume) {
	v.prim = nil
	n.dropQoS(v)
	// As a secondary, every durable mutation belongs in the block store.
	n.writeDurablePrefix(v)
	v.matched = v.commit
	v.lastHeard = n.now
}

func (n *Node) primaryReconfigured(v *volume) {
	p := v.prim
	// Replicas added (a new host won a slot: it is copied in full, then grown) or dropped.
	for _, r := range v.cfg.Replicas {
		if r != n.p.Self && p.members[r] == nil {
			p.members[r] = &member{lastAck: n.now, healthyAt: n.now, promisedAt: n.now}
		}
	}
	for _, r := range slices.Sorted(maps.Keys(p.members)) {
		if !v.cfg.IsReplica(r) {
			delete(p.members, r)
		}
	}
	if p.growing != 0 && !v.cfg.IsReplica(p.growing) {
		p.growing = 0
	}
	if (p.authOp == OpGrow || p.authOp == OpShrink) && !v.cfg.IsReplica(p.authTarget) {
		// Its target left the volume: nothing to ask any more (a Grow's retransmission would
		// wait forever for the disk of a member we no longer track, seed 9900781).
		p.authOp = 0
	}
	n.checkRenewed(v)
	if p.growing != 0 && v.cfg.IsInSync(p.growing) {
		p.growing = 0
	}
	n.applyQoS(v)
	n.advanceCommit(v)
}

// unboundInSync: an in-sync replica has no disk recorded (a new volume: the first Renew
// records them).
func unboundInSync(c *Config) bool {
	for _, r := range c.InSync {
		if c.DiskOf(r) == 0 {
			return true
		}
	}
	return false
}

// unboundMembers: some other replica has no recorded disk and has not answered us yet.
func (n *Node) unboundMembers(v *volume) bool {
	for _, r := range v.cfg.Replicas {
		if r == n.p.Self || v.cfg.DiskOf(r) != 0 {
			continue
		}
		if m := v.prim.members[r]; m == nil || m.disk == 0 {
			return true
		}
	}
	return false
}

// checkRenewed ends a renewal once our epoch is one this process was granted.
func (n *Node) checkRenewed(v *volume) {
	p := v.prim
	if p.renewing && v.grantedAt != 0 && v.cfg.Epoch >= v.grantedAt && !unboundInSync(&v.cfg) {
		p.renewing = false
		if p.authOp == OpRenew {
			p.authOp = 0
		}
		n.sendHeartbeats(v) // promises at the new epoch: the lease, and members' positions
	}
}

// leaseValid: every other in-sync member, and a member whose Grow may still be granted,
// has promised not to seek promotion until after now.
func (n *Node) leaseValid(v *volume) bool {
	for _, r := range v.cfg.InSync {
		if r == n.p.Self {
			continue
		}
		if m := v.prim.members[r]; m == nil || n.now >= m.leaseUntil {
			return false
		}
	}
	if g := v.prim.growing; g != 0 {
		if m := v.prim.members[g]; m == nil || n.now >= m.leaseUntil {
			return false
		}
	}
	return true
}

func (n *Node) serving(v *volume) bool {
	return !v.prim.renewing && !v.prim.handingOver && v.commit >= v.prim.reconcileUpto && n.leaseValid(v)
}

// checkClientTarget answers requests that reached the wrong node or carry a stale epoch.
func (n *Node) checkClientTarget(from Addr, vol VolumeID, epoch Epoch, client, req uint64) *volume {
	v := n.vols[vol]
	reply := &ClientReply{Vol: vol, Client: client, Req: req}
	switch {
	case v == nil && n.tombs[vol].epoch >= epoch && n.Deleted(vol):
		reply.Status = StatusNotFound // deleted (a newer epoch: a volume recreated elsewhere)
	case v == nil:
		reply.Status = StatusNotPrimary
	case v.prim == nil:
		reply.Status, reply.HasConfig, reply.Config = StatusNotPrimary, true, v.cfg.Clone()
	case epoch < v.cfg.Epoch:
		reply.Status, reply.HasConfig, reply.Config = StatusStaleEpoch, true, v.cfg.Clone()
	case epoch > v.cfg.Epoch:
		// The client knows a newer configuration than we do: we may have been deposed.
		reply.Status = StatusUnavailable
		n.askConfig(v)
	default:
		return v
	}
	n.send(from, reply)
	return nil
}

// clientWrite handles a write that arrived at `at`; admitted is set when it comes out of
// the volume's QoS queue.
func (n *Node) clientWrite(from Addr, m *ClientWrite, at int64, admitted bool) {
	v := n.checkClientTarget(from, m.Vol, m.Epoch, m.Client, m.Req)
	if v == nil {
		return
	}
	p := v.prim
	w := waiter{to: from, client: m.Client, req: m.Req, at: at, class: ClassWrite}
	if len(m.Data) == 0 || len(m.Data)%BlockSize != 0 || !v.inRange(m.Block, uint64(len(m.Data)/BlockSize)) {
		n.send(from, &ClientReply{Vol: m.Vol, Client: m.Client, Req: m.Req, Status: StatusInvalid})
		return
	}
	if lsn, ok := v.dedup.lookup(m.Client, m.Req); ok && m.Client != 0 {
		if lsn <= v.commit {
			p.acks = append(p.acks, w)
			n.flushAcks(v)
		} else {
			p.waiters[lsn] = append(p.waiters[lsn], w)
		}
		return
	}
	if v.dedup.finished(m.Client, m.Req) {
		return // a late duplicate of a request the client has finished with
	}
	if p.renewing {
		n.send(from, &ClientReply{Vol: m.Vol, Client: m.Client, Req: m.Req, Status: StatusUnavailable})
		return
	}
	if len(v.unapplied) >= n.p.MaxPending {
		v.st.busy++
		n.send(from, &ClientReply{Vol: m.Vol, Client: m.Client, Req: m.Req, Status: StatusBusy})
		return
	}
	if !admitted && !n.admitArrival(v, queuedReq{from: from, at: at, client: m.Client, req: m.Req, epoch: m.Epoch,
		bytes: int64(len(m.Data)), write: m}) {
		return
	}
	e := &Entry{LSN: v.last + 1, Epoch: v.cfg.Epoch, Client: m.Client, Req: m.Req, Oldest: m.Oldest, Block: m.Block, Data: m.Data}
	prevEpoch := v.lastEpoch
	mu := &mutation{entry: e}
	v.logMutation(mu)
	v.unapplied = append(v.unapplied, mu)
	p.waiters[e.LSN] = append(p.waiters[e.LSN], w)
	n.append(encodeRecEntry(v.cfg.Volume, v.commit, e), func() { n.mutationDurable(v, mu) })
	for _, r := range v.cfg.Replicas {
		if mem := p.members[r]; mem != nil && mem.sent+1 == e.LSN && !mem.wantState && e.LSN-mem.match <= sendWindow {
			mem.sent = e.LSN
			n.send(r, &Replicate{Vol: v.cfg.Volume, Config: v.cfg.Clone(), Commit: v.commit, PrevEpoch: prevEpoch, Entry: *e})
		}
	}
}

// sendWindow bounds the entries in flight to one member beyond what it acknowledged.
const sendWindow = 64

// mutation durable on the primary (or on a node that has since stepped down).
func (n *Node) mutationDurable(v *volume, mu *mutation) {
	if v.deleted {
		return
	}
	mu.durable = true
	v.durable, v.durableEpoch = mu.lsn(), mutEpoch(mu)
	if v.prim == nil {
		n.writeDurablePrefix(v)
		n.sendAckToPrimary(v, 0)
		return
	}
	n.advanceCommit(v)
}

func mutEpoch(m *mutation) Epoch {
	if m.entry != nil {
		return m.entry.Epoch
	}
	return m.sync.UptoEpoch
}

// advanceCommit commits what every in-sync member (and a member being grown) holds.
func (n *Node) advanceCommit(v *volume) {
	p := v.prim
	c := v.durable
	if v.durable > v.last {
		c = v.last
	}
	for _, r := range v.cfg.InSync {
		if r == n.p.Self {
			continue
		}
		if m := p.members[r]; m.stranger(v, r) {
			c = 0 // (shrunk out at once: reconfigure)
		} else {
			c = min(c, m.match)
		}
	}
	if p.growing != 0 {
		c = min(c, p.members[p.growing].match)
	}
	if c > v.commit {
		v.commit = c
	}
	for len(p.flushes) > 0 && p.flushes[0].upto <= v.commit {
		p.acks = append(p.acks, p.flushes[0].w)
		p.flushes = slices.Delete(p.flushes, 0, 1)
	}
	for len(v.unapplied) > 0 && v.unapplied[0].durable && v.unapplied[0].lsn() <= v.commit {
		mu := v.unapplied[0]
		v.unapplied = slices.Delete(v.unapplied, 0, 1)
		if err := n.writeMutation(v, mu); err != nil {
			n.fatal(err)
			return
		}
		if mu.entry != nil {
			if ws := p.waiters[mu.entry.LSN]; len(ws) > 0 {
				p.acks = append(p.acks, ws...)
				delete(p.waiters, mu.entry.LSN)
			}
		}
	}
	n.flushAcks(v)
}

// flushAcks answers committed writes, but only under a valid lease: then no other node can
// have been promoted, so the write is acknowledged under the current epoch.
func (n *Node) flushAcks(v *volume) {
	p := v.prim
	if len(p.acks) == 0 || !n.serving(v) {
		return
	}
	for _, w := range p.acks {
		n.record(v, w.class, w.at)
		n.send(w.to, &ClientReply{Vol: v.cfg.Volume, Client: w.client, Req: w.req, Status: StatusOK, Epoch: v.cfg.Epoch})
	}
	p.acks = p.acks[:0]
}

// clientFlush answers once everything logged before it has committed (so every write the
// client saw acknowledged, and every write still in flight, is durable on all in-sync members).
func (n *Node) clientFlush(from Addr, m *ClientFlush, at int64) {
	v := n.checkClientTarget(from, m.Vol, m.Epoch, m.Client, m.Req)
	if v == nil {
		return
	}
	p := v.prim
	w := waiter{to: from, client: m.Client, req: m.Req, at: at, class: ClassFlush}
	if v.last <= v.commit {
		p.acks = append(p.acks, w)
		n.flushAcks(v)
		return
	}
	if len(p.flushes) >= n.p.MaxPending {
		v.st.busy++
		n.send(from, &ClientReply{Vol: m.Vol, Client: m.Client, Req: m.Req, Status: StatusBusy})
		return
	}
	p.flushes = append(p.flushes, flushWait{upto: v.last, w: w})
}

// clientRead handles a read that arrived at `at` (admitted: it comes out of the QoS queue).
func (n *Node) clientRead(from Addr, m *ClientRead, at int64, admitted bool) {
	v := n.checkClientTarget(from, m.Vol, m.Epoch, m.Client, m.Req)
	if v == nil {
		return
	}
	reply := &ClientReply{Vol: m.Vol, Client: m.Client, Req: m.Req}
	switch {
	case !v.inRange(m.Block, uint64(m.Count)) || uint64(m.Count)*BlockSize > MaxDataBytes:
		reply.Status = StatusInvalid
	case !n.serving(v):
		reply.Status = StatusUnavailable
	case !admitted && !n.admitArrival(v, queuedReq{from: from, at: at, client: m.Client, req: m.Req, epoch: m.Epoch,
		bytes: int64(m.Count) * BlockSize, read: m}):
		return
	case v.blockLost(m.Block, uint64(m.Count)):
		reply.Status = StatusIOError // no replica holds it intact: reported, never served
	default:
		buf := make([]byte, int(m.Count)*BlockSize)
		var ce *CorruptBlockError
		if err := n.readBlocks(v, m.Block, buf); errors.As(err, &ce) {
			reply.Status = StatusUnavailable // never served; repairing from a replica
		} else if err != nil {
			reply.Status = StatusIOError
		} else {
			reply.Status, reply.Data, reply.Epoch = StatusOK, buf, v.cfg.Epoch
			n.record(v, ClassRead, at)
		}
	}
	n.send(from, reply)
}

func (n *Node) sendHeartbeats(v *volume) {
	p := v.prim
	p.lastHB = n.now
	for _, r := range v.cfg.Replicas {
		m := p.members[r]
		if m == nil {
			continue
		}
		n.send(r, &Heartbeat{Vol: v.cfg.Volume, Config: v.cfg.Clone(), SentAt: n.now, Commit: v.commit, WantState: m.wantState,
			Credits: v.credits(n.now)})
	}
}

func (n *Node) onReplicaAck(from Addr, a *ReplicaAck) {
	v := n.vols[a.Vol]
	if v == nil {
		return
	}
	if a.Epoch > v.cfg.Epoch {
		n.askConfig(v)
		return
	}
	if v.prim == nil || a.Epoch < v.cfg.Epoch {
		return
	}
	p := v.prim
	m := p.members[from]
	if m == nil {
		return
	}
	if a.Disk != m.disk {
		if m.disk != 0 {
			// Its disk changed (wiped, or replaced): nothing it acknowledged before is there.
			m.match, m.sent, m.wantState = 0, 0, false
		}
		m.disk = a.Disk
	}
	m.lastAck, m.heard = n.now, true
	if a.EchoSentAt != 0 {
		m.leaseUntil = max(m.leaseUntil, n.p.leaseFrom(a.EchoSentAt))
		m.promisedAt = n.now
	}
	if a.NeedSync {
		n.sendSync(v, from, m, a)
		return
	}
	if a.Syncing {
		// Its block store is part-way through a catch-up series: its log position says
		// nothing about its blocks. It is not caught up (no match, no Grow) until the
		// series' final Sync.
		m.wantState = true
		return
	}
	if !v.logMatches(a.Last, a.LastEpoch) {
		m.wantState = true
		if n.now-m.lastResend >= n.p.RetransmitTimeout {
			m.lastResend = n.now
			n.send(from, &Heartbeat{Vol: v.cfg.Volume, Config: v.cfg.Clone(), SentAt: n.now, Commit: v.commit, WantState: true})
		}
		return
	}
	m.wantState = false
	if a.Last > m.match || a.Last == v.last {
		m.healthyAt, m.progressAt = n.now, n.now
	}
	m.match = max(m.match, a.Last)
	m.sent = max(m.sent, m.match)
	n.pump(v, from, m)
	n.advanceCommit(v)
}

// pump sends a member the entries after the ones already sent, within the window;
// entries it lacks that are no longer in memory need a delta instead.
func (n *Node) pump(v *volume, to Addr, m *member) {
	if m.wantState || m.sent >= v.last || !m.heard || v.prim.renewing {
		return // (a member we have not heard from yet answers the first heartbeat with its position)
	}
	if m.match < v.applied && m.sent < v.applied {
		// Not in memory any more: ask for its state, then send a delta.
		if n.now-m.lastResend >= n.p.RetransmitTimeout {
			m.lastResend = n.now
			m.wantState = true
			n.send(to, &Heartbeat{Vol: v.cfg.Volume, Config: v.cfg.Clone(), SentAt: n.now, Commit: v.commit, WantState: true})
		}
		return
	}
	for _, mu := range v.unapplied {
		if mu.entry == nil || mu.entry.LSN <= m.sent {
			continue
		}
		if mu.entry.LSN != m.sent+1 || mu.entry.LSN-m.match > sendWindow {
			break
		}
		prev, ok := v.epochAt(mu.entry.LSN - 1)
		if !ok {
			break
		}
		n.send(to, &Replicate{Vol: v.cfg.Volume, Config: v.cfg.Clone(), Commit: v.commit, PrevEpoch: prev, Entry: *mu.entry})
		m.sent = mu.entry.LSN
	}
}

// sendSync answers a member's catch-up request (DESIGN 2.5). The delta of a round is every
// block our index says changed after the round's base, plus (in the first round) the
// blocks the member wrote itself. A delta of at most MaxSyncBlocks at the start of a round
// goes in the final Sync: our block-store state at LSN applied, after which the member
// follows the log. A larger one goes in parts, MaxSyncBlocks at most each, in block order
// from the member's cursor; each part is our current state of its blocks.
func (n *Node) sendSync(v *volume, to Addr, m *member, a *ReplicaAck) {
	if v.prim.renewing {
		m.wantState = true
		return // answered once the new epoch is granted (the member asks again)
	}
	if !a.Syncing && v.logMatches(a.Last, a.LastEpoch) {
		// Its log matches ours up to a.Last: count that, so that the answer (sendFinalSync)
		// never resets it below (an acknowledgement of a.Last may be overtaken by this
		// request, or still be on its way).
		m.match = max(m.match, a.Last)
	}
	req := syncReq{commit: a.CommitKnown, base: a.SyncBase, start: a.SyncStart, round: a.SyncRound, cursor: a.SyncCursor}
	if req == m.syncReq && n.now-m.lastSync < n.p.RetransmitTimeout {
		return // a repeat: answered at most once per RetransmitTimeout
	}
	prevReq, prevAt := m.syncReq, m.lastSync
	m.syncReq, m.lastSync = req, n.now
	m.wantState = true
	held := false
	defer func() {
		if held {
			// Held back by the copy rate: not answered, so its next ask (at the next
			// heartbeat) is not taken for a repeat.
			m.syncReq, m.lastSync = prevReq, prevAt
		}
	}()
	base := a.SyncBase
	if base > v.applied {
		base = 0 // only a first request can be beyond our applied point (we are reconciling): all of it
	}
	var dirty []uint64
	if a.SyncRound == 0 {
		for _, b := range a.Dirty {
			if b < v.cfg.Blocks && b >= a.SyncCursor {
				dirty = append(dirty, b)
			}
		}
		slices.Sort(dirty)
		dirty = slices.Compact(dirty)
	}
	k := n.p.MaxSyncBlocks
	limit := v.cfg.Blocks // the member listed its dirty blocks below limit only
	if a.SyncRound == 0 && a.DirtyUpto != 0 {
		limit = min(limit, a.DirtyUpto)
	}
	if a.SyncCursor == 0 && len(dirty) <= k && limit == v.cfg.Blocks {
		var blocks []uint64
		v.index.afterWhile(base, func(b uint64, _ LSN) bool {
			blocks = append(blocks, b)
			return len(blocks) <= k
		})
		if len(blocks) <= k {
			blocks = append(blocks, dirty...)
			slices.Sort(blocks)
			blocks = slices.Compact(blocks)
			if len(blocks) <= k {
				held = n.sendFinalSync(v, to, m, a, base, blocks)
				return
			}
		}
	}
	held = n.sendSyncPart(v, to, a, base, dirty, limit)
}

// sendFinalSync reports whether the answer was held back by the copy rate.
func (n *Node) sendFinalSync(v *volume, to Addr, m *member, a *ReplicaAck, from LSN, blocks []uint64) (held bool) {
	if v.applied < m.match {
		// The member holds entries past our block store's state that we count as its (it
		// acknowledged them; we commit on them). A Sync now would reset its log to our
		// applied point and drop them behind our back (seed 9200120 lost an acknowledged
		// write so: the member was promoted later). Its log matches ours up to m.match, so
		// nothing there needs undoing: answer once our applied point has reached m.match
		// (the entries commit on its acknowledgement; it asks again meanwhile).
		return false
	}
	s := &Sync{Vol: v.cfg.Volume, Epoch: v.cfg.Epoch, From: from, Upto: v.applied, UptoEpoch: v.appliedEpoch,
		Commit: min(v.commit, v.applied), Dedup: v.dedup.upTo(v.applied), ReqBase: a.SyncBase, Round: a.SyncRound}
	if !n.copyBudget(len(blocks)) {
		return true // over the node's copy rate: the member asks again
	}
	var err error
	if s.Blocks, err = n.blockImages(v, blocks); err != nil {
		return false // a corrupt block is being repaired; the member asks again
	}
	m.wantState = false
	m.sent = max(m.match, s.Upto)
	if m.stranger(v, to) {
		n.reMirrorBytes += uint64(len(s.Blocks)) * BlockSize
	}
	n.send(to, s)
	return false
}

// syncScanFactor bounds the block numbers one part scans (MaxSyncBlocks times this), so a
// sparse delta over a large volume costs bounded work per part (a part may then hold fewer
// blocks, even none: it still moves the cursor).
const syncScanFactor = 64

// sendSyncPart reports whether the part was held back by the copy rate.
func (n *Node) sendSyncPart(v *volume, to Addr, a *ReplicaAck, base LSN, dirty []uint64, limit uint64) (held bool) {
	k := n.p.MaxSyncBlocks
	start := a.SyncStart
	if a.SyncCursor == 0 {
		start = v.applied // a new round starts at our state now
	}
	p := &SyncPart{Vol: v.cfg.Volume, Epoch: v.cfg.Epoch, ReqBase: a.SyncBase, Round: a.SyncRound, Cursor: a.SyncCursor,
		Base: base, Start: start, Upto: v.applied}
	if start > v.applied || base > start {
		return false // cannot happen: the round's points are ours, and our applied point only grows
	}
	var blocks []uint64
	b, d := a.SyncCursor, 0
	for budget := k * syncScanFactor; ; budget-- {
		if b >= limit {
			p.End = limit == v.cfg.Blocks
			break
		}
		if budget == 0 {
			break
		}
		for d < len(dirty) && dirty[d] < b {
			d++
		}
		if v.index.get(b) > base || (d < len(dirty) && dirty[d] == b) {
			if len(blocks) == k {
				break
			}
			blocks = append(blocks, b)
		}
		b++
	}
	p.Next = b
	if !n.copyBudget(len(blocks)) {
		return true // over the node's copy rate: the member asks again
	}
	var err error
	if p.Blocks, err = n.blockImages(v, blocks); err != nil {
		return false // a corrupt block is being repaired; the member asks again
	}
	n.syncPartsSent++
	if m := v.prim.members[to]; m != nil && m.stranger(v, to) {
		n.reMirrorBytes += uint64(len(p.Blocks)) * BlockSize
	}
	n.send(to, p)
	return false
}

// blockImages reads blocks (each with the LSN that last wrote it) from the block store.
func (n *Node) blockImages(v *volume, blocks []uint64) ([]BlockImage, error) {
	out := make([]BlockImage, 0, len(blocks))
	for _, b := range blocks {
		data := make([]byte, BlockSize)
		if err := n.readBlocks(v, b, data); err != nil {
			return nil, err
		}
		out = append(out, BlockImage{Block: b, LSN: v.index.get(b), Data: data})
	}
	return out, nil
}

func (n *Node) askConfig(v *volume) {
	if v.prim != nil {
		if n.now-v.prim.lastConfigAsk < n.p.RetransmitTimeout {
			return
		}
		v.prim.lastConfigAsk = n.now
	}
	n.authReqID++
	v.configReq = n.authReqID
	n.send(n.authTo(), &AuthRequest{Op: OpGetConfig, ReqID: n.authReqID, Vol: v.cfg.Volume})
}

func (n *Node) primaryTick(v *volume) {
	p := v.prim
	if n.now-p.lastHB >= n.p.HeartbeatInterval {
		n.sendHeartbeats(v)
	}
	for _, r := range v.cfg.Replicas {
		m := p.members[r]
		if m == nil {
			continue
		}
		if m.sent > m.match && n.now-m.progressAt >= n.p.RetransmitTimeout && n.now-m.lastResend >= n.p.RetransmitTimeout {
			// No progress: go back to what it acknowledged and send again.
			m.lastResend, m.progressAt = n.now, n.now
			m.sent = m.match
		}
		n.pump(v, r, m)
		if m.match == v.last {
			m.healthyAt = max(m.healthyAt, m.lastAck)
		}
	}
	if p.renewing && p.authOp == 0 {
		if (n.now >= p.renewAfter || !n.unboundMembers(v)) && n.now >= v.renewHold {
			n.sendAuth(v, OpRenew, n.p.Self)
		}
	} else if p.authOp != 0 {
		if n.now-p.authSent >= 3*n.p.RetransmitTimeout {
			n.sendAuth(v, p.authOp, p.authTarget)
		}
	} else {
		n.reconfigure(v)
	}
	n.advanceCommit(v)
}

// reconfigure shrinks out an unresponsive in-sync member, or grows in a caught-up one.
func (n *Node) reconfigure(v *volume) {
	p := v.prim
	for _, r := range v.cfg.InSync {
		if r == n.p.Self {
			continue
		}
		m := p.members[r]
		// A member that acks but withholds its promise (it asked to be promoted) keeps our
		// lease from renewing: shrink it too, after a few heartbeats without one.
		// A member answers at least every heartbeat: silence counts only past two of them
		// (with a ShrinkTimeout below the heartbeat interval an idle volume shrank and grew
		// its members in a loop).
		silent := max(n.p.ShrinkTimeout, 2*n.p.HeartbeatInterval+n.p.RetransmitTimeout)
		noPromise := n.now-m.promisedAt > silent
		if n.now-m.lastAck > silent || n.now-m.healthyAt > silent || noPromise || m.stranger(v, r) {
			n.sendAuth(v, OpShrink, r)
			return
		}
	}
	if v.commit < p.reconcileUpto {
		return
	}
	for _, r := range v.cfg.Replicas {
		m := p.members[r]
		if m == nil || v.cfg.IsInSync(r) {
			continue
		}
		if m.match >= v.commit && !m.wantState && m.disk != 0 && n.now-m.lastAck < n.p.HeartbeatInterval*2 {
			p.growing = r
			if v.growAt != v.cfg.Epoch || v.growNode != r {
				at := v.cfg.Epoch
				v.growAt, v.growNode, v.growDurable = at, r, false
				n.append(encodeRecGrow(v.cfg.Volume, at, r), func() {
					if v.growAt == at && v.growNode == r {
						v.growDurable = true
					}
				})
			}
			n.sendAuth(v, OpGrow, r)
			return
		}
	}
}

func (n *Node) sendAuth(v *volume, op AuthOp, target Addr) {
	p := v.prim
	// A request id names one exact request: a retransmission from another epoch is a new one
	// (the authority answers a repeated id with the first result).
	if p.authOp == 0 || p.authOp != op || p.authTarget != target || p.authEpoch != v.cfg.Epoch {
		n.authReqID++
		p.authReq = n.authReqID
	}
	p.authOp, p.authTarget, p.authEpoch = op, target, v.cfg.Epoch
	if op == OpGrow && !v.growDurable {
		return // sent once the intent is journaled (the retransmit path)
	}
	r := &AuthRequest{Op: op, ReqID: p.authReq, Vol: v.cfg.Volume, FromEpoch: v.cfg.Epoch, Node: target}
	switch op {
	case OpGrow:
		if m := p.members[target]; m != nil {
			r.Disk = m.disk // recorded with the member (DESIGN 2.12)
		}
		if r.Disk == 0 {
			return // sent once the member has answered (the retransmit path)
		}
	case OpRenew:
		r.Disk = n.p.Disk
		r.Disks = make([]uint64, len(v.cfg.Replicas))
		for i, x := range v.cfg.Replicas {
			if x == n.p.Self {
				r.Disks[i] = n.p.Disk
			} else if m := p.members[x]; m != nil {
				r.Disks[i] = m.disk
			}
		}
	}
	p.authSent = n.now
	n.send(n.authTo(), r)
}

func (n *Node) onAuthReply(r *AuthReply) {
	switch r.Op {
	case OpNodeBeat:
		if r.Status == StatusOK {
			n.onBeatReply(r)
		}
		return
	case OpJoinNode:
		n.onJoinReply(r)
		return
	case OpListNodes, OpRemoveNode, OpDrainNode:
		return // (asked by clients, not nodes)
	}
	v := n.vols[r.Config.Volume]
	if v != nil && r.Status == StatusNotFound && (r.ReqID == v.configReq || v.prim != nil && r.ReqID == v.prim.authReq) {
		// Asked while we held the replica (a configuration read, or a change our primary
		// asked for, both answered from the authority's log): the volume was deleted since,
		// and we were not told (we had been taken out of it, or a stale primary's message
		// made this replica after the deletion was pushed; seed 10000004).
		n.leaveVolume(v, Config{Volume: v.cfg.Volume, Epoch: v.cfg.Epoch + 1})
		return
	}
	if v != nil && r.Status == StatusOK && r.Config.Primary == n.p.Self &&
		(r.Op == OpRenew && v.prim != nil && v.prim.authOp == OpRenew && r.ReqID == v.prim.authReq ||
			r.Op == OpPromote && r.ReqID == v.promoteReq && v.promoteReq != 0) {
		// Our own request made this epoch, after this process started: we may act at it.
		v.grantedAt = max(v.grantedAt, r.Config.Epoch)
	}
	if r.Status == StatusOK || r.Status == StatusConflict {
		v = n.learnConfig(r.Config)
	}
	if v == nil {
		return
	}
	if v.prim != nil {
		n.checkRenewed(v)
	}
	if p := v.prim; p != nil && p.authOp != 0 && r.ReqID == p.authReq {
		if p.authOp == OpGrow && p.growing != 0 && !v.cfg.IsInSync(p.growing) {
			p.growing = 0
		}
		if p.authOp == OpHandover {
			p.handingOver = false // refused (granted, we are no longer primary)
		}
		p.authOp = 0
		n.advanceCommit(v)
	}
	if r.Op == OpPromote && v.prim == nil {
		v.wantPromote = false
	}
}

// writeDurablePrefix writes every durable mutation at the head of the unapplied queue.
func (n *Node) writeDurablePrefix(v *volume) {
	for len(v.unapplied) > 0 && v.unapplied[0].durable {
		mu := v.unapplied[0]
		v.unapplied = slices.Delete(v.unapplied, 0, 1)
		if err := n.writeMutation(v, mu); err != nil {
			n.fatal(err)
			return
		}
	}
}
