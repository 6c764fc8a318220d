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
		d.snap = snap
		d.entries = slices.DeleteFunc(d.entries, func(e raft.Entry) bool { return e.Index <= snap.Index })
	}
	if len(ents) > 0 {
		first := ents[0].Index
		d.entries = slices.DeleteFunc(d.entries, func(e raft.Entry) bool { return e.Index >= first })
		d.entries = append(d.entries, ents...)
	}
}

func (d *cellDisk) state() raft.State {
	return raft.State{Hard: d.hard, Snap: d.snap, Entries: d.entries}
}

// raftTicks: election after 10–20 ticks of silence, a heartbeat every tick.
const (
	electionTicks  = 10
	heartbeatTicks = 1
)

func (n *Node) raftConfig() raft.Config {
	peers := make([]uint64, len(n.p.Authorities))
	for i, a := range n.p.Authorities {
		peers[i] = uint64(a)
	}
	slices.Sort(peers)
	return raft.Config{ID: uint64(n.p.Self), Peers: peers, ElectionTicks: electionTicks, HeartbeatTicks: heartbeatTicks,
		MaxMsgEntries: 64, MaxInflight: 16, Rand: n.raftRand}
}

// startCell builds the Raft member from what the journal held and applies the table
// of its snapshot; committed entries after it are applied through the first Ready.
func (a *authority) startCell(d cellDisk) error {
	r, err := raft.New(a.n.raftConfig(), d.state())
	if err != nil {
		return fmt.Errorf("core: authority cell: %w", err)
	}
	a.cell = &cell{a: a, r: r, disk: d, replies: map[uint64]pendingReply{}, lastTick: a.n.now}
	if d.snap != nil {
		if err := a.decodeTable(d.snap.Data); err != nil {
			return err
		}
		a.cell.applied = d.snap.Index
		for _, id := range a.ids { // durable and applied: announce as issued (the checks saw every change)
			a.n.out.Issued = append(a.n.out.Issued, a.configs[id].Clone())
		}
	}
	return nil
}

func (c *cell) leading() bool { return c.r.Status().Role == raft.Leader }

func (c *cell) leaderHint() Addr { return Addr(c.r.Status().Lead) }

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
	c.process()
}

func (c *cell) step(m *RaftMsg) {
	if m.M.To != uint64(c.a.n.p.Self) {
		return
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
				n.out.Issued = append(n.out.Issued, c.a.configs[id].Clone())
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
		n.send(Addr(m.To), &RaftMsg{M: m})
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
	st, cfg := c.a.apply(cmd)
	if p, ok := c.replies[e.Index]; ok {
		delete(c.replies, e.Index)
		if p.req.ReqID == cmd.req.ReqID && p.to == cmd.from {
			c.a.n.send(p.to, &AuthReply{Op: p.req.Op, ReqID: p.req.ReqID, Status: st, Config: cfg})
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
	c.disk.add(nil, &raft.Snapshot{Index: c.applied, Term: term, Voters: c.r.Status().Voters, Data: data}, nil)
}
