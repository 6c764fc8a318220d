package core

import (
	"slices"
	"testing"

	"github.com/cairnstore/cairn/core/raft"
)

// Scripted scenarios of the replicated authority cell: members 1, 2, 3 (one per zone),
// node 4 a storage node only.

func cellCluster(t *testing.T) *cluster {
	t.Helper()
	return newCluster(t, 4, func(p *Params) { p.Authorities = []Addr{1, 2, 3} })
}

func (c *cluster) adminReply(req uint64) *AuthReply {
	var last *AuthReply
	for _, m := range c.inbox {
		if r, ok := m.(*AuthReply); ok && r.ReqID == req && r.Status != StatusNotLeader {
			last = r
		}
	}
	return last
}

// Every member applies the same log: after a write of configuration, all three tables agree.
func TestCellMembersAgree(t *testing.T) {
	c := cellCluster(t)
	cfg := c.createVolume()
	c.run(200 * Millisecond)
	for a := Addr(1); a <= 3; a++ {
		got, ok := c.node(a).n.AuthorityConfig(hVol)
		if !ok || got.String() != cfg.String() {
			t.Fatalf("member %d holds %v, the leader answered %v", a, got, cfg)
		}
	}
	if _, ok := c.node(4).n.AuthorityConfig(hVol); ok {
		t.Fatal("a node outside the cell has an authority table")
	}
	// A member that is not the leader redirects.
	l := c.authLeader()
	other := Addr(1)
	if other == l {
		other = 2
	}
	c.inject(hAdmin, other, &AuthRequest{Op: OpGetConfig, ReqID: 50, Vol: hVol})
	var r *AuthReply
	for _, m := range c.inbox {
		if x, ok := m.(*AuthReply); ok && x.ReqID == 50 {
			r = x
		}
	}
	if r == nil || r.Status != StatusNotLeader || r.Leader != l {
		t.Fatalf("a follower answered %+v, want NotLeader naming %d", r, l)
	}
}

// A partitioned old leader that still believes it leads cannot change or even read a
// configuration: its requests never commit and its reads never pass the read index. The
// majority elects a new leader, which serves; after healing the old one follows.
func TestCellPartitionedOldLeader(t *testing.T) {
	c := cellCluster(t)
	cfg := c.createVolume()
	old := c.authLeader()
	c.isolate(old)
	c.cutLink(old, hAdmin)
	c.healLink(old, hAdmin) // the operator still reaches the old leader
	c.inject(hAdmin, old, &AuthRequest{Op: OpSetQoS, ReqID: 60, Vol: hVol, QoS: QoS{IOPS: 100}})
	c.inject(hAdmin, old, &AuthRequest{Op: OpGetConfig, ReqID: 61, Vol: hVol})
	c.inject(hAdmin, old, &AuthRequest{Op: OpListVolumes, ReqID: 63})
	c.runUntil(5*Second, "a new leader on the majority side", func() bool {
		l := c.authLeader()
		return l != 0 && l != old
	})
	c.run(2 * Second) // the old leader stepped down by check-quorum meanwhile
	if r := c.adminReply(60); r != nil {
		t.Fatalf("the isolated old leader answered a change: %+v", r)
	}
	if r := c.adminReply(61); r != nil && r.Status == StatusOK {
		t.Fatalf("the isolated old leader served a read: %+v", r)
	}
	if r := c.adminReply(63); r != nil && r.Status == StatusOK {
		t.Fatalf("the isolated old leader served a list: %+v", r)
	}
	if l, _, _, _ := c.node(old).n.AuthorityStatus(); l {
		t.Fatal("the isolated old leader still leads after an election timeout without a quorum")
	}
	nl := c.authLeader()
	c.inject(hAdmin, nl, &AuthRequest{Op: OpSetQoS, ReqID: 62, Vol: hVol, QoS: QoS{IOPS: 200}})
	c.run(100 * Millisecond)
	// (the volume itself may have moved on meanwhile: the old leader's node hosts a replica)
	if r := c.adminReply(62); r == nil || r.Status != StatusOK || r.Config.QoS.IOPS != 200 || r.Config.Epoch <= cfg.Epoch {
		t.Fatalf("the new leader's change: %+v", r)
	}
	for _, h := range c.nodes {
		c.healLink(old, h.addr)
	}
	c.healLink(old, hClient)
	c.run(2 * Second)
	got, _ := c.node(old).n.AuthorityConfig(hVol)
	if want := c.authCfg(); got.QoS.IOPS != 200 || got.String() != want.String() {
		t.Fatalf("after healing the old leader holds %v %+v, want the leader's %v", got, got.QoS, want)
	}
	if r := c.adminReply(60); r != nil && r.Status == StatusOK {
		t.Fatalf("the change sent to the isolated leader was answered OK: %+v", r)
	}
}

// The leader crashes in the middle of a Promote: the change either commits (and the new
// leader's answer to the retry is the same result) or is lost; never applied twice.
func TestCellLeaderChangeMidPromote(t *testing.T) {
	c := cellCluster(t)
	cfg := c.createVolume()
	l := c.authLeader()
	target := Addr(0)
	for _, r := range cfg.InSync {
		if r != cfg.Primary {
			target = r
		}
	}
	req := &AuthRequest{Op: OpPromote, ReqID: 70, Vol: hVol, FromEpoch: cfg.Epoch, Node: target, Disk: hDisk(target, 0)}
	// Hold the leader's outgoing messages: the proposal is appended but may not commit.
	for _, h := range c.nodes {
		if h.addr != l {
			c.cutLink(l, h.addr)
		}
	}
	c.inject(hAdmin, l, req)
	c.crash(l)
	for _, h := range c.nodes {
		c.healLink(l, h.addr)
	}
	c.runUntil(5*Second, "a new leader", func() bool { nl := c.authLeader(); return nl != 0 && nl != l })
	c.inject(hAdmin, c.authLeader(), req) // the requester retries with the same id
	c.run(100 * Millisecond)
	r := c.adminReply(70)
	if r == nil {
		t.Fatal("no answer to the retried promote")
	}
	switch {
	case r.Status == StatusOK && r.Config.Epoch == cfg.Epoch+1 && r.Config.Primary == target:
	default:
		t.Fatalf("retried promote: %v %v", r.Status, r.Config)
	}
	// Restart the old leader: it catches up and agrees.
	c.start(c.node(l))
	c.run(2 * Second)
	got, _ := c.node(l).n.AuthorityConfig(hVol)
	if want := c.authCfg(); got.String() != want.String() || got.Epoch < r.Config.Epoch {
		t.Fatalf("restarted old leader holds %v, the leader %v", got, want)
	}
}

// A restarted member keeps its log and vote: it rejoins from its own storage and sees
// every change committed while it was down (through the log or a snapshot after compaction).
func TestCellMemberRestartCatchesUp(t *testing.T) {
	c := newCluster(t, 4, func(p *Params) { p.Authorities = []Addr{1, 2, 3}; p.CheckpointEvery = 4 })
	cfg := c.createVolume()
	var down Addr
	for a := Addr(1); a <= 3; a++ {
		if a != c.authLeader() {
			down = a
		}
	}
	c.crash(down)
	for i := range 12 {
		l := c.authLeader()
		c.inject(hAdmin, l, &AuthRequest{Op: OpSetQoS, ReqID: uint64(80 + i), Vol: hVol, QoS: QoS{IOPS: int64(100 + i)}})
		c.run(60 * Millisecond)
	}
	c.start(c.node(down))
	c.run(3 * Second)
	got, _ := c.node(down).n.AuthorityConfig(hVol)
	if got.QoS.IOPS != 111 || got.Epoch < cfg.Epoch+12 {
		t.Fatalf("restarted member holds %v %+v, want epoch >= %d and 111 IOPS", got, got.QoS, cfg.Epoch+12)
	}
	// The leader compacted its log at its checkpoints: the member caught up from a snapshot.
	snaps := traceOf(c, func(tr traced, m *RaftMsg) bool { return tr.to == down && m.M.Type == raft.MsgSnap && !tr.dropped })
	if len(snaps) == 0 {
		t.Fatal("no snapshot reached the restarted member: the log was never compacted")
	}
}

// A member whose disk is lost restarts empty: it must not vote or count as the old member
// (it may have acknowledged entries and voted before). It takes a new identity and the
// leader replaces the old one, one change at a time: remove the old, then add the new. It
// catches up and holds the same table; the cell keeps three voters and goes on changing
// configurations throughout.
func TestCellMemberRestartWithWipedDisk(t *testing.T) {
	c := cellCluster(t)
	cfg := c.createVolume()
	var w Addr
	for a := Addr(1); a <= 3; a++ {
		if a != c.authLeader() {
			w = a
		}
	}
	oldID := memberID(w, 0)
	c.crash(w)
	h := c.node(w)
	h.st = newMemStore() // the disk is gone
	h.p.Wiped = true
	c.start(h)
	cl := h.n.auth.cell
	if cl.id == oldID || cl.voter() {
		t.Fatalf("the wiped member came back as %x, voter=%v; want a new identity outside the voter set", cl.id, cl.voter())
	}
	c.runUntil(10*Second, "the wiped member rejoining as a voter", func() bool {
		l := c.authLeader()
		return l != 0 && slices.Contains(c.node(l).n.auth.cell.r.Status().Voters, cl.id) && cl.voter()
	})
	voters := c.node(c.authLeader()).n.auth.cell.r.Status().Voters
	if len(voters) != 3 || slices.Contains(voters, oldID) {
		t.Fatalf("voters after the rejoin: %x (old identity %x)", voters, oldID)
	}
	c.inject(hAdmin, c.authLeader(), &AuthRequest{Op: OpSetQoS, ReqID: 90, Vol: hVol, QoS: QoS{IOPS: 300}})
	c.run(500 * Millisecond)
	got, _ := h.n.AuthorityConfig(hVol)
	if want := c.authCfg(); got.String() != want.String() || got.QoS.IOPS != 300 || got.Epoch <= cfg.Epoch {
		t.Fatalf("the rejoined member holds %v %+v, the leader %v", got, got.QoS, want)
	}
	// Restarted again (normally, from its new disk) it keeps the new identity.
	c.crash(w)
	h.p.Wiped = false
	c.start(h)
	if h.n.auth.cell.id != cl.id {
		t.Fatalf("after a normal restart the identity changed from %x to %x", cl.id, h.n.auth.cell.id)
	}
}

// A member gone for good is replaced by a new node at another address: the operator lists
// the new address instead of the old one and starts the newcomer as Wiped. The leader
// removes the old voter, then adds the newcomer; the cell keeps working throughout.
func TestCellReplaceGoneMember(t *testing.T) {
	c := newCluster(t, 5, func(p *Params) { p.Authorities = []Addr{1, 2, 3} })
	c.createVolume()
	gone := Addr(1)
	if gone == c.authLeader() {
		gone = 2
	}
	c.crash(gone) // never comes back
	members := []Addr{4}
	for a := Addr(1); a <= 3; a++ {
		if a != gone {
			members = append(members, a)
		}
	}
	slices.Sort(members)
	for _, h := range c.nodes { // the operator's new list, node by node (a rolling restart)
		if h.addr == gone {
			continue
		}
		c.crash(h.addr)
		h.p.Authorities = members
		h.p.Wiped = h.addr == 4
		c.start(h)
		c.run(300 * Millisecond)
	}
	c.cl = NewClient(DefaultClientParams(hClient, 8, members))
	c.runUntil(15*Second, "the newcomer a voter in place of the gone member", func() bool {
		l := c.authLeader()
		if l == 0 {
			return false
		}
		v := c.node(l).n.auth.cell.r.Status().Voters
		return len(v) == 3 && slices.Contains(v, c.node(4).n.auth.cell.id) && !slices.Contains(v, memberID(gone, 0))
	})
	c.inject(hAdmin, c.authLeader(), &AuthRequest{Op: OpSetQoS, ReqID: 95, Vol: hVol, QoS: QoS{IOPS: 500}})
	c.run(500 * Millisecond)
	if got, _ := c.node(4).n.AuthorityConfig(hVol); got.QoS.IOPS != 500 {
		t.Fatalf("the newcomer holds %v %+v", got, got.QoS)
	}
}
