package raft

import (
	"errors"
	"fmt"
	"slices"
)

// This file is a deterministic in-memory cluster: members driven exactly as the
// package documentation tells a driver to, a lossy reordering network,
// partitions, and crash/restart from exactly what was persisted through Ready.
// Every run is a function of its seed (or of rapid's draws). checker_test.go
// holds the safety checks it runs after every action.

// testRand is splitmix64.
type testRand struct{ s uint64 }

func (t *testRand) Uint64() uint64 {
	t.s += 0x9e3779b97f4a7c15
	z := t.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (t *testRand) intn(n int) int { return int(t.Uint64() % uint64(n)) }

type clusterOpts struct {
	n                  int // members 1..n
	seed               uint64
	election           int
	heartbeat          int
	maxMsgEntries      int
	maxInflight        int
	maxNet             int             // messages in flight beyond this are dropped, oldest first
	fixedMembership    bool            // check durability against a majority of n
	quorum             func(n int) int // test-only knob (mutation tests)
	joinWithoutMembers []uint64        // extra members created empty, without Peers, down
}

func defaultOpts(n int, seed uint64) clusterOpts {
	return clusterOpts{n: n, seed: seed, election: 10, heartbeat: 2, maxMsgEntries: 8, maxInflight: 4, maxNet: 400, fixedMembership: true}
}

type tnode struct {
	id      uint64
	r       *Raft
	up      bool
	rand    *testRand
	disk    disk
	app     app
	pending *Ready // handed out by Ready, not yet persisted: lost on a crash

	snapshotsApplied int
	readStates       []ReadState
}

type cluster struct {
	opts  clusterOpts
	peers []uint64
	nodes []*tnode // nodes[i].id == i+1
	net   []Message
	group []int // partition group of each node; messages cross no group boundary
	rng   testRand
	chk   *checker
	err   error // the first failure; every action is a no-op after it

	nextCtx  uint64
	nextProp uint64
	proposed map[string]bool
	stats    struct{ crashes, midReadyCrashes, restarts, confChanges int }
}

func newCluster(o clusterOpts) *cluster {
	c := &cluster{opts: o, rng: testRand{o.seed}, proposed: map[string]bool{}}
	c.chk = newChecker(c)
	for i := 1; i <= o.n; i++ {
		c.peers = append(c.peers, uint64(i))
	}
	total := o.n + len(o.joinWithoutMembers)
	for i := 1; i <= total; i++ {
		n := &tnode{id: uint64(i), rand: &testRand{o.seed*7919 + uint64(i)}}
		c.nodes = append(c.nodes, n)
		c.group = append(c.group, 0)
		if i <= o.n {
			c.restart(n)
		}
	}
	return c
}

func (c *cluster) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf(format, args...)
	}
}

func (c *cluster) config(id uint64) Config {
	n := c.node(id)
	cfg := Config{
		ID: id, ElectionTicks: c.opts.election, HeartbeatTicks: c.opts.heartbeat,
		MaxMsgEntries: c.opts.maxMsgEntries, MaxInflight: c.opts.maxInflight, Rand: n.rand,
	}
	if id <= uint64(c.opts.n) {
		cfg.Peers = c.peers
	}
	return cfg
}

func (c *cluster) node(id uint64) *tnode { return c.nodes[id-1] }

// restart (re)creates a member from its disk; the application restarts from
// the persisted snapshot.
func (c *cluster) restart(n *tnode) {
	if c.err != nil || n.up {
		return
	}
	r, err := New(c.config(n.id), n.disk.state())
	if err != nil {
		c.fail("restart %d: %v", n.id, err)
		return
	}
	r.testQuorum = c.opts.quorum
	n.r, n.up, n.pending = r, true, nil
	c.stats.restarts++
	n.app = app{}
	if n.disk.snap != nil {
		n.app = decodeApp(n.disk.snap.Data)
	}
	c.check()
}

// crash loses everything not persisted.
func (c *cluster) crash(n *tnode) {
	if c.err != nil || !n.up {
		return
	}
	n.up, n.r, n.pending = false, nil, nil
	c.stats.crashes++
}

// crashMidReady persists only the first parts (0..3) of the taken Ready, in
// the documented order Compacted, Snapshot, Entries, Hard, and crashes: a
// driver that does not write a Ready atomically. Nothing of it was sent.
func (c *cluster) crashMidReady(n *tnode, parts int) {
	if c.err != nil || !n.up || n.pending == nil {
		return
	}
	rd := *n.pending
	var part Ready
	if parts > 0 {
		part.Compacted = rd.Compacted
	}
	if parts > 1 {
		part.Snapshot = rd.Snapshot
	}
	if parts > 2 {
		part.Entries = rd.Entries
	}
	first, err := n.disk.persist(part)
	if err != nil {
		c.fail("node %d: persist: %v", n.id, err)
		return
	}
	c.chk.persistedPart(n, part, first)
	c.stats.midReadyCrashes++
	c.crash(n)
}

func (c *cluster) connected(a, b uint64) bool { return c.group[a-1] == c.group[b-1] }

func (c *cluster) tick(n *tnode) {
	if c.err != nil || !n.up {
		return
	}
	n.r.Tick()
	c.check()
}

func (c *cluster) tickAll() {
	for _, n := range c.nodes {
		c.tick(n)
	}
}

// take hands out a Ready and leaves it unpersisted.
func (c *cluster) take(n *tnode) {
	if c.err != nil || !n.up || n.pending != nil || !n.r.HasReady() {
		return
	}
	rd := n.r.Ready()
	n.pending = &rd
}

// finish persists, sends, applies and advances the taken Ready.
func (c *cluster) finish(n *tnode) {
	if c.err != nil || !n.up || n.pending == nil {
		return
	}
	rd := *n.pending
	n.pending = nil
	if again := n.r.Ready(); !sameReady(again, rd) {
		c.fail("node %d: Ready before Advance returned another Ready", n.id)
		return
	}
	first, err := n.disk.persist(rd)
	if err != nil {
		c.fail("node %d: persist: %v", n.id, err)
		return
	}
	c.chk.persisted(n, rd, first)
	for _, m := range rd.Messages {
		if m.From != n.id || m.To == n.id {
			c.fail("node %d emitted %v from %d to %d", n.id, m.Type, m.From, m.To)
			return
		}
		c.net = append(c.net, m)
	}
	if len(c.net) > c.opts.maxNet {
		c.net = append(c.net[:0], c.net[len(c.net)-c.opts.maxNet:]...)
	}
	if s := rd.Snapshot; s != nil {
		c.chk.appliedSnapshot(n, *s)
		n.app = decodeApp(s.Data)
		n.snapshotsApplied++
	}
	for _, e := range rd.Committed {
		c.chk.applied(n, e)
		n.app = app{applied: e.Index, hash: entryHash(n.app.hash, e)}
	}
	for _, rs := range rd.ReadStates {
		c.chk.readState(n, rs)
		n.readStates = append(n.readStates, rs)
	}
	if err := n.r.Advance(rd); err != nil {
		c.fail("node %d: Advance: %v", n.id, err)
	}
	c.check()
}

func (c *cluster) processReady(n *tnode) {
	c.take(n)
	c.finish(n)
}

func (c *cluster) readyAll() {
	for _, n := range c.nodes {
		c.processReady(n)
	}
}

// deliver hands message i of the network to its destination (or loses it if
// the destination is down or on the other side of a partition).
func (c *cluster) deliver(i int) {
	if c.err != nil || i >= len(c.net) {
		return
	}
	m := c.net[i]
	c.net = slices.Delete(c.net, i, i+1)
	if int(m.To) > len(c.nodes) {
		return
	}
	to := c.node(m.To)
	if !to.up || !c.connected(m.From, m.To) {
		return
	}
	if err := to.r.Step(m); err != nil {
		c.fail("node %d: Step(%v from %d, term %d): %v", to.id, m.Type, m.From, m.Term, err)
		return
	}
	c.check()
}

func (c *cluster) drop(i int) {
	if i < len(c.net) {
		c.net = slices.Delete(c.net, i, i+1)
	}
}

func (c *cluster) duplicate(i int) {
	if i < len(c.net) && len(c.net) < c.opts.maxNet {
		c.net = append(c.net, c.net[i])
	}
}

// partition puts the listed members in their own group, the rest together.
func (c *cluster) partition(ids ...uint64) {
	for i := range c.group {
		c.group[i] = 0
	}
	for _, id := range ids {
		c.group[id-1] = 1
	}
}

func (c *cluster) heal() { c.partition() }

// stabilize handles Readys and delivers messages until nothing moves.
func (c *cluster) stabilize() {
	for round := 0; round < 1000 && c.err == nil; round++ {
		moved := false
		for _, n := range c.nodes {
			for k := 0; k < 8 && n.up && (n.pending != nil || n.r.HasReady()); k++ {
				c.processReady(n)
				moved = true
			}
		}
		if len(c.net) > 0 {
			moved = true
			batch := len(c.net)
			for k := 0; k < batch && c.err == nil; k++ {
				c.deliver(0)
			}
		}
		if !moved {
			return
		}
	}
}

// leader returns the up member that leads the highest term, if any.
func (c *cluster) leader() *tnode {
	var best *tnode
	for _, n := range c.nodes {
		if n.up && n.r.role == Leader && (best == nil || n.r.term > best.r.term) {
			best = n
		}
	}
	return best
}

// waitLeader ticks (stabilizing in between) until a leader exists that every
// up member in its group follows, or the budget runs out.
func (c *cluster) waitLeader(maxTicks int) *tnode {
	for t := 0; t <= maxTicks && c.err == nil; t++ {
		c.stabilize()
		if l := c.leader(); l != nil && c.followedByAll(l) {
			return l
		}
		c.tickAll()
	}
	return nil
}

func (c *cluster) followedByAll(l *tnode) bool {
	for _, n := range c.nodes {
		if n.up && c.connected(n.id, l.id) && n.r.lead != l.id && slices.Contains(l.r.voters, n.id) {
			return false
		}
	}
	return true
}

func (c *cluster) propose(n *tnode) (string, uint64, error) {
	if c.err != nil || !n.up {
		return "", 0, errors.New("down")
	}
	c.nextProp++
	data := fmt.Sprintf("p%d", c.nextProp)
	idx, err := n.r.Propose([]byte(data))
	if err == nil {
		c.proposed[data] = true
	}
	return data, idx, err
}

func (c *cluster) readIndex(n *tnode) (uint64, error) {
	if c.err != nil || !n.up {
		return 0, errors.New("down")
	}
	c.nextCtx++
	ctx := c.nextCtx
	floor := max(c.chk.maxApplied(), n.r.log.commit)
	if err := n.r.ReadIndex(ctx); err != nil {
		return 0, err
	}
	c.chk.reads[ctx] = floor
	return ctx, nil
}

// compact snapshots n's application at what it has applied.
func (c *cluster) compact(n *tnode) error {
	if c.err != nil || !n.up {
		return errors.New("down")
	}
	return n.r.Compact(n.app.applied, n.app.encode())
}

// committedIndex returns where data was committed (applied anywhere), or 0.
func (c *cluster) committedIndex(data string) uint64 {
	for i, e := range c.chk.entries {
		if e.Type == EntryNormal && string(e.Data) == data {
			return uint64(i)
		}
	}
	return 0
}
