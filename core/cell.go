package core

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cairnstore/cairn/core/raft"
)

// cell drives this node's Raft member of the authority cell (core/raft) the way
// etcd-raft's drivers do: Tick and Step in, then Ready: persist the hard state, entries
// and snapshot as one journal record, send the messages once that record is durable,
// apply committed entries to the authority's table, serve read-index reads, Advance.
// One Ready is in flight at a time. Member IDs are node addresses.
type cell struct {
	a          *authority
	id         uint64 // this member's Raft identity (memberID)
	lastJoin   int64
	r          *raft.Raft
	disk       cellDisk // what has been handed to storage, for checkpoints
	persisting bool
	applied    uint64 // last log index applied to the table
	lastTick   int64
	wasLeader  bool

	replies map[uint64]pendingReply // leader: index -> the requester of that command
	reads   []pendingRead
	readCtx uint64
}

type pendingReply struct {
	to  Addr
	req AuthRequest
}

type pendingRead struct {
	ctx   uint64
	index uint64 // 0 until the read index is known
	serve func()
}

// maxPendingReads bounds reads waiting for a read index.
const maxPendingReads = 4096

// cellDisk mirrors the Raft state this node has issued to its journal.
type cellDisk struct {
	inc     uint32 // this member's incarnation (0: one of the members that bootstrapped)
	hard    raft.HardState
	snap    *raft.Snapshot
	entries []raft.Entry
}

// add folds one persisted Ready (or replayed record) into the mirror.
func (d *cellDisk) add(hard *raft.HardState, snap *raft.Snapshot, ents []raft.Entry) {
	if hard != nil {
		d.hard = *hard
	}
	if snap != nil {
		// A snapshot from the leader replaces the whole log (raft's contract: drop every
		// persisted entry). Keeping the entries past its index kept a deposed leader's
		// entries of an older term after it, and the member could not restart (seed 10000418).
		d.snap = snap
		d.entries = nil
	}
	if len(ents) > 0 {
		first := ents[0].Index
		d.entries = slices.DeleteFunc(d.entries, func(e raft.Entry) bool { return e.Index >= first })
		d.entries = append(d.entries, ents...)
	}
}

// compactTo makes snap (taken locally, at an applied index) the snapshot: entries up to its
// index are dropped, those after it kept.
func (d *cellDisk) compactTo(snap *raft.Snapshot) {
	d.snap = snap
	d.entries = slices.DeleteFunc(d.entries, func(e raft.Entry) bool { return e.Index <= snap.Index })
}

func (d *cellDisk) state() raft.State {
	return raft.State{Hard: d.hard, Snap: d.snap, Entries: d.entries}
}

// raftTicks: election after 10–20 ticks of silence, a heartbeat every tick.
const (
	electionTicks  = 10
	heartbeatTicks = 1
)

// memberID is a cell member's Raft identity: its address and an incarnation. The
// members that bootstrap the cell are incarnation 0; a member whose disk was lost rejoins
// under a new incarnation, so nothing it voted for or acknowledged before is ever counted
// again (the cell removes the old identity and adds the new one, one change at a time).
func memberID(a Addr, inc uint32) uint64 { return uint64(a)<<32 | uint64(inc) }

func memberAddr(id uint64) Addr { return Addr(id >> 32) }

func (n *Node) raftConfig(inc uint32, bootstrap bool) raft.Config {
	var peers []uint64
	if bootstrap {
		for _, a := range n.p.Authorities {
			peers = append(peers, memberID(a, 0))
		}
		slices.Sort(peers)
	}
	return raft.Config{ID: memberID(n.p.Self, inc), Peers: peers, ElectionTicks: electionTicks, HeartbeatTicks: heartbeatTicks,
		MaxMsgEntries: 64, MaxInflight: 16, Rand: n.raftRand}
}

// startCell builds the Raft member from what the journal held and applies the table
// of its snapshot; committed entries after it are applied through the first Ready. A
// member with nothing on disk bootstraps the cell, unless Params.Wiped says its disk was
// lost: then it takes a new incarnation, journals it, and asks the cell to replace its old
// identity (join).
func (a *authority) startCell(d cellDisk) error {
	n := a.n
	empty := d.inc == 0 && d.snap == nil && len(d.entries) == 0 && d.hard == (raft.HardState{})
	joining := empty && n.p.Wiped
	if joining {
		d.inc = uint32(n.raftRand.Uint64()) | 1
		n.append(encodeRecCellID(d.inc), nil)
	}
	r, err := raft.New(n.raftConfig(d.inc, empty && !n.p.Wiped), d.state())
	if err != nil {
		return fmt.Errorf("core: authority cell: %w", err)
	}
	a.cell = &cell{a: a, r: r, disk: d, replies: map[uint64]pendingReply{}, lastTick: n.now, id: memberID(n.p.Self, d.inc)}
	if d.snap != nil {
		if err := a.decodeTable(d.snap.Data); err != nil {
			return err
		}
		a.cell.applied = d.snap.Index
		for _, id := range a.ids { // durable and applied: announce as issued (the checks saw every change)
			a.n.out.Issued = append(a.n.out.Issued, IssuedConfig{Config: a.configs[id].Clone()})
		}
	}
	return nil
}

func (c *cell) leading() bool { return c.r.Status().Role == raft.Leader }

func (c *cell) leaderHint() Addr { return memberAddr(c.r.Status().Lead) }

// voter reports whether this member is in the cell's voter set as it knows it.
func (c *cell) voter() bool { return slices.Contains(c.r.Status().Voters, c.id) }

// joinInterval: how often a member outside the voter set asks to be (re)admitted.
const joinInterval = Second

// maybeJoin: a member that is not a voter (a new incarnation after a lost disk) asks the
// leader to replace its old identity with the new one until it is a voter.
func (c *cell) maybeJoin() {
	n := c.a.n
	if c.voter() || n.now-c.lastJoin < joinInterval {
		return
	}
	c.lastJoin = n.now
	n.authReqID++
	n.send(n.authGuess.To(), &AuthRequest{Op: OpJoinCell, ReqID: n.authReqID, Node: n.p.Self, Member: c.id})
}

// join, on the leader: one step of replacing the requester's old identity with its new
// one (remove the old voter, then add the new); the requester asks again until the
// second step is applied. One configuration change at a time. The same path replaces a
// member that is gone for good: the operator lists the new member's address instead of
// the old one in every node's Authorities and starts the new member with Wiped; voters
// whose address is no longer listed are removed before the newcomer is added.
func (c *cell) join(from Addr, r *AuthRequest) {
	n := c.a.n
	reply := func(st Status) {
		n.send(from, &AuthReply{Op: r.Op, ReqID: r.ReqID, Status: st, Config: Config{Volume: r.Vol}})
	}
	if memberAddr(r.Member) != r.Node || r.Node != from || !slices.Contains(n.p.Authorities, r.Node) {
		reply(StatusInvalid)
		return
	}
	voters := c.r.Status().Voters
	if slices.Contains(voters, r.Member) {
		reply(StatusOK)
		return
	}
	var cc raft.ConfChange
	cc.Type, cc.ID = raft.AddVoter, r.Member
	for _, v := range voters {
		if memberAddr(v) == r.Node || !slices.Contains(n.p.Authorities, memberAddr(v)) {
			cc.Type, cc.ID = raft.RemoveVoter, v // the lost incarnation (or member) first
		}
	}
	if _, err := c.r.ProposeConfChange(cc); err == nil {
		c.process()
	}
	reply(StatusUnavailable) // not yet: ask again
}

// tick advances Raft's logical clock by the ticks elapsed on the node's clock.
func (c *cell) tick() {
	n := c.a.n
	for i := 0; i < 100 && n.now-c.lastTick >= n.p.RaftTick; i++ {
		c.lastTick += n.p.RaftTick
		c.r.Tick()
	}
	if n.now-c.lastTick >= n.p.RaftTick { // a long pause: do not replay every tick
		c.lastTick = n.now
	}
	c.maybeJoin()
	c.process()
}

func (c *cell) step(m *RaftMsg) {
	if m.M.To != c.id {
		return // for an identity this node no longer has (its disk was lost)
	}
	if err := c.r.Step(m.M); err != nil && errors.Is(err, raft.ErrInvariant) {
		c.a.n.fatal(fmt.Errorf("core: authority cell: %w", err))
		return
	}
	c.process()
}

// propose appends a command; the requester hears the result once it is applied.
func (c *cell) propose(data []byte, from Addr, r *AuthRequest) bool {
	idx, err := c.r.Propose(data)
	if err != nil {
		return false
	}
	c.replies[idx] = pendingReply{to: from, req: *r}
	c.process()
	return true
}

// proposeInternal appends a command of the leader's own (no requester waits for it).
func (c *cell) proposeInternal(data []byte) {
	if _, err := c.r.Propose(data); err == nil {
		c.process()
	}
}

// read runs serve once a read index confirmed this member still leads and the table
// has applied everything committed before the read began (linearizable reads).
func (c *cell) read(serve func()) {
	if len(c.reads) >= maxPendingReads {
		return // the requester retries
	}
	c.readCtx++
	if err := c.r.ReadIndex(c.readCtx); err != nil {
		return
	}
	c.reads = append(c.reads, pendingRead{ctx: c.readCtx, serve: serve})
	c.process()
}

// process handles Readies until one is waiting for storage.
func (c *cell) process() {
	n := c.a.n
	for i := 0; i < 64 && !c.persisting && c.r.HasReady(); i++ {
		rd := c.r.Ready()
		if rd.Snapshot != nil {
			if err := c.a.decodeTable(rd.Snapshot.Data); err != nil {
				n.fatal(err)
				return
			}
			c.applied = rd.Snapshot.Index
			for _, id := range c.a.ids {
				n.out.Issued = append(n.out.Issued, IssuedConfig{Config: c.a.configs[id].Clone()})
			}
		}
		for _, e := range rd.Committed {
			c.applyEntry(e)
		}
		for _, rs := range rd.ReadStates {
			for j := range c.reads {
				if c.reads[j].ctx == rs.Ctx {
					c.reads[j].index = rs.Index
				}
			}
		}
		c.serveReads()
		if rd.Hard == nil && len(rd.Entries) == 0 && rd.Snapshot == nil {
			c.finish(rd)
			continue
		}
		c.disk.add(rd.Hard, rd.Snapshot, rd.Entries)
		c.persisting = true
		n.append(encodeRecRaft(rd.Hard, rd.Snapshot, rd.Entries), func() {
			c.persisting = false
			c.finish(rd)
			c.process()
		})
	}
	leading := c.leading()
	if leading && !c.wasLeader {
		c.a.announceAll()
	}
	if !leading {
		clear(c.replies)
		c.reads = c.reads[:0] // their requesters retry at the member that leads
	}
	c.wasLeader = leading
}

// finish sends a durable Ready's messages and tells Raft it is done.
func (c *cell) finish(rd raft.Ready) {
	n := c.a.n
	for _, m := range rd.Messages {
		n.send(memberAddr(m.To), &RaftMsg{M: m})
	}
	if err := c.r.Advance(rd); err != nil {
		n.fatal(fmt.Errorf("core: authority cell: %w", err))
	}
}

func (c *cell) applyEntry(e raft.Entry) {
	if e.Index <= c.applied {
		return
	}
	c.applied = e.Index
	if e.Type != raft.EntryNormal {
		return // no-ops; membership changes are Raft's own
	}
	cmd, err := decodeAuthCmd(e.Data)
	if err != nil {
		c.a.n.fatal(err) // the leader encoded it: a corrupt log
		return
	}
	st, cfg, name := c.a.apply(cmd)
	if p, ok := c.replies[e.Index]; ok {
		delete(c.replies, e.Index)
		if p.req.ReqID == cmd.req.ReqID && p.to == cmd.from {
			c.a.n.send(p.to, &AuthReply{Op: p.req.Op, ReqID: p.req.ReqID, Status: st, Config: cfg, Name: name})
		}
	}
}

func (c *cell) serveReads() {
	for len(c.reads) > 0 && c.reads[0].index != 0 && c.reads[0].index <= c.applied {
		r := c.reads[0]
		c.reads = slices.Delete(c.reads, 0, 1)
		r.serve()
	}
}

// compact makes the applied table the cell's snapshot (at a node checkpoint), so the
// log stays short; lagging members get the snapshot.
func (c *cell) compact() {
	if c.persisting || c.disk.snap != nil && c.applied <= c.disk.snap.Index || c.applied == 0 {
		return
	}
	data := c.a.encodeTable()
	if err := c.r.Compact(c.applied, data); err != nil {
		return // not advanced yet: next time
	}
	term := uint64(0)
	for _, e := range c.disk.entries {
		if e.Index == c.applied {
			term = e.Term
		}
	}
	if term == 0 {
		return // the applied entry is not in the mirror (cannot happen after Advance); keep the log
	}
	c.disk.compactTo(&raft.Snapshot{Index: c.applied, Term: term, Voters: c.r.Status().Voters, Data: data})
}
