package core

import (
	"bytes"
	"slices"
	"testing"
)

// Catch-up in parts (DESIGN 2.5): a member behind by more than MaxSyncBlocks blocks is
// brought up to date by rounds of bounded SyncParts and a final Sync. Scenarios on the
// harness of harness_test.go (see scenario_test.go for the roles).

// behindMember crashes the non-authority member s, writes every block (twice for the first
// ones) while it is down, so it misses all hBlocks of them, and restarts it with storage
// completions under the test's control (h.manual): each completeOps lets it take one part.
func behindMember(t *testing.T, k int) (c *cluster, p, a, s Addr) {
	t.Helper()
	c, _, p, m := setup(t, func(p *Params) { p.MaxSyncBlocks = k; p.CheckpointEvery = 6 })
	a, s = m[0], m[1]
	c.writeOK(0, fill(1, 1))
	c.crash(s)
	for b := range hBlocks {
		c.writeOK(b, fill(byte(0x10+b), 1))
	}
	c.writeOK(0, fill(0x30, 2)) // a two-block write: one entry, two blocks
	if ac := c.authCfg(); ac.IsInSync(s) {
		t.Fatalf("crashed member still in sync: %v", ac)
	}
	h := c.node(s)
	h.manual = true
	c.start(h)
	return c, p, a, s
}

// completeOps completes every storage op node a has issued so far (the next ones wait).
func (c *cluster) completeOps(a Addr) {
	h := c.node(a)
	for n := len(h.st.inflight); n > 0 && h.up; n-- {
		c.completeOne(h)
		out := h.n.Drain()
		if out.Fatal != nil {
			c.t.Fatalf("node %d fatal: %v", a, out.Fatal)
		}
		for _, e := range out.Msgs {
			c.post(h.addr, e.To, e.Msg)
		}
		h.st.inflight = append(h.st.inflight, out.Ops...)
	}
	c.deliverAll()
}

func partsTo(c *cluster, s Addr) int {
	return len(traceOf(c, func(tr traced, _ *SyncPart) bool { return tr.to == s && !tr.dropped }))
}

func finalSyncsTo(c *cluster, s Addr) []traced {
	return traceOf(c, func(tr traced, m *Sync) bool { return tr.to == s && !tr.dropped && m.Round > 0 })
}

// caughtUp waits until s is in the in-sync set, not syncing, and holds exactly ref's blocks.
func (c *cluster) caughtUp(s, ref Addr, limit int64) {
	c.t.Helper()
	c.runUntil(limit, "member back in sync with identical blocks", func() bool {
		v, ac := c.vol(s), c.authCfg()
		return ac.IsInSync(s) && v != nil && !v.syncing && v.last == c.vol(ref).last &&
			bytes.Equal(c.stored(s, 0, int(hBlocks)), c.stored(ref, 0, int(hBlocks)))
	})
}

// A member that missed every block catches up in several parts while writes go on, and
// ends byte-identical; its log does not move until the final Sync.
func TestScenarioCatchUpInParts(t *testing.T) {
	c, p, _, s := behindMember(t, 2)
	lastBefore := c.vol(s).last
	wrote := 0
	for i := 0; partsTo(c, s) < 20 && i < 200; i++ {
		c.run(hStep)
		c.completeOps(s)
		v := c.vol(s)
		if v.syncing && v.last != lastBefore {
			t.Fatalf("log moved mid-series: last %d, was %d", v.last, lastBefore)
		}
		if v.syncing && i%2 == 0 {
			// Writes go on; some land behind the member's cursor, some ahead of it.
			c.writeOK(uint64(i)%hBlocks, fill(byte(0x80+i), 1))
			wrote++
		}
		if !v.syncing && len(finalSyncsTo(c, s)) > 0 {
			break
		}
	}
	if n := partsTo(c, s); n < int(hBlocks)/2 {
		t.Fatalf("%d parts delivered; a member behind by %d blocks with MaxSyncBlocks 2 needs at least %d", n, hBlocks, hBlocks/2)
	}
	for _, tr := range traceOf(c, func(tr traced, m *SyncPart) bool { return tr.to == s }) {
		if n := len(tr.msg.(*SyncPart).Blocks); n > 2 {
			t.Fatalf("a part carries %d blocks, above MaxSyncBlocks", n)
		}
	}
	if wrote == 0 {
		t.Fatal("no write went on during the catch-up")
	}
	c.node(s).manual = false
	c.completeOps(s)
	c.caughtUp(s, p, 5*Second)
	if len(finalSyncsTo(c, s)) == 0 {
		t.Fatal("no final Sync of a multi-part series")
	}
	c.writeOK(3, fill(0xEE, 1))
	if !bytes.Equal(c.stored(s, 3, 1), fill(0xEE, 1)) {
		t.Fatal("member does not follow the log after the catch-up")
	}
	c.readOK(0, c.stored(p, 0, int(hBlocks)))
}

// A crash mid-series: the applied parts survive (journaled), the restarted member knows it
// is syncing (it must not be promoted or follow replicates), starts a new series and ends
// consistent. A checkpoint mid-series keeps the syncing mark too.
func TestScenarioCatchUpMemberCrashMidSeries(t *testing.T) {
	// After the restart the blocks the parts wrote are dirty: with a tiny list bound the
	// member reports them a window of block numbers at a time.
	old := maxDirtyList
	maxDirtyList = 1
	t.Cleanup(func() { maxDirtyList = old })
	c, p, _, s := behindMember(t, 2)
	for i := 0; partsTo(c, s) < 3 && i < 100; i++ {
		c.run(hStep)
		c.completeOps(s)
	}
	if v := c.vol(s); !v.syncing || partsTo(c, s) < 3 {
		t.Fatalf("member not mid-series: syncing %v, %d parts", v.syncing, partsTo(c, s))
	}
	c.writeOK(15, fill(0x99, 1))
	c.crash(s)
	h := c.node(s)
	h.manual = false
	c.start(h)
	if v := c.vol(s); !v.syncing || v.series.epoch != 0 {
		t.Fatalf("restarted member: syncing %v series %+v; want syncing with a fresh series", v.syncing, v.series)
	}
	c.caughtUp(s, p, 5*Second)
	windowed := traceOf(c, func(tr traced, m *ReplicaAck) bool { return tr.from == s && m.NeedSync && m.DirtyUpto != 0 })
	if len(windowed) == 0 {
		t.Fatal("the restarted member never reported its dirty blocks a window at a time")
	}
	for _, tr := range windowed {
		if m := tr.msg.(*ReplicaAck); len(m.Dirty) > 2 {
			t.Fatalf("a windowed dirty list of %d blocks (bound: MaxSyncBlocks 2)", len(m.Dirty))
		}
	}

	// The same with a checkpoint in the middle: the snapshot carries the syncing mark.
	c.crash(s)
	for b := range hBlocks {
		c.writeOK(b, fill(byte(0xA0+b), 1))
	}
	h.manual = true
	c.start(h)
	for i := 0; (!c.vol(s).syncing || c.node(s).st.snapshot == nil || len(c.node(s).st.journal) > 0) && i < 300; i++ {
		c.run(hStep)
		c.completeOps(s)
		if c.vol(s).syncing && partsTo(c, s) > 0 {
			h.n.sinceCheckpoint = h.p.CheckpointEvery // a checkpoint at the next tick
		}
	}
	if !c.vol(s).syncing || len(c.node(s).st.journal) > 0 {
		t.Fatal("no checkpoint taken mid-series")
	}
	c.crash(s)
	h.manual = false
	c.start(h)
	if !c.vol(s).syncing {
		t.Fatal("restart from a mid-series snapshot forgot the member is syncing")
	}
	c.caughtUp(s, p, 5*Second)
}

// The primary fails mid-series: the other in-sync member is promoted, the syncing member
// starts over with it (every block the parts wrote is re-fetched) and ends consistent.
func TestScenarioCatchUpPrimaryChangeMidSeries(t *testing.T) {
	c, p, a, s := behindMember(t, 2)
	for i := 0; partsTo(c, s) < 3 && i < 100; i++ {
		c.run(hStep)
		c.completeOps(s)
	}
	if !c.vol(s).syncing {
		t.Fatal("member not mid-series")
	}
	c.crash(p)
	c.node(s).manual = false
	c.completeOps(s)
	c.runUntil(5*Second, "promotion of the other in-sync member", func() bool { return c.authCfg().Primary == a })
	c.writeOK(2, fill(0x77, 1))
	c.caughtUp(s, a, 5*Second)
	c.start(c.node(p))
	c.caughtUp(p, a, 5*Second)
	c.readOK(2, fill(0x77, 1))
}

// A member of the in-sync set that is part-way through a series holds no consistent state:
// with its primary gone it never asks to be promoted; it waits, and finishes when the
// primary is back.
func TestScenarioSyncingMemberNotPromoted(t *testing.T) {
	c, cfg0, p, m := setup(t, func(p *Params) { p.MaxSyncBlocks = 1 })
	holder, lacker := m[0], m[1] // holder gets a divergent three-block entry, lacker becomes primary
	c.writeOK(0, fill(1, 4))
	c.drop = func(from, to Addr, m Message) bool { _, ok := m.(*Replicate); return ok && from == p && to == lacker }
	c.inject(hRaw, p, &ClientWrite{Vol: hVol, Epoch: cfg0.Epoch, Client: 55, Req: 1, Block: 1, Data: fill(0xBB, 3)})
	if h := c.vol(holder); h.last != 2 || !bytes.Equal(c.stored(holder, 1, 3), fill(0xBB, 3)) {
		t.Fatalf("holder did not take the divergent entry: last %d", h.last)
	}
	c.crash(p)
	// Only lacker may win the promotion; the holder then takes one part and no more.
	parts := 0
	c.drop = func(from, to Addr, m Message) bool {
		if r, ok := m.(*AuthRequest); ok && r.Op == OpPromote && from == holder {
			return true
		}
		if _, ok := m.(*SyncPart); ok && to == holder {
			parts++
			return parts > 1
		}
		return false
	}
	c.runUntil(5*Second, "promotion", func() bool { return c.authCfg().Primary == lacker && c.vol(holder).syncing })
	if ac := c.authCfg(); !ac.IsInSync(holder) {
		t.Fatalf("holder shrunk before the test could start: %v", ac)
	}
	c.crash(lacker)
	c.drop = nil
	from := len(c.trace)
	c.run(5 * Second)
	for _, tr := range c.trace[from:] {
		if r, ok := tr.msg.(*AuthRequest); ok && tr.from == holder && (r.Op == OpPromote) {
			t.Fatalf("a syncing member asked to be promoted: %+v", r)
		}
		if _, ok := tr.msg.(*HealthCheck); ok && tr.from == holder {
			t.Fatal("a syncing member ran a health check")
		}
	}
	if ac := c.authCfg(); ac.Primary != lacker || !c.vol(holder).syncing {
		t.Fatalf("config %v, holder syncing %v", ac, c.vol(holder).syncing)
	}
	c.start(c.node(lacker))
	c.caughtUp(holder, lacker, 5*Second)
	if !bytes.Equal(c.stored(holder, 0, 4), fill(1, 4)) {
		t.Fatal("the divergent entry survived on the holder")
	}
	c.writeOK(2, fill(0x22, 1))
	c.readOK(0, append(fill(1, 2), append(fill(0x22, 1), fill(1, 1)...)...))
}

// dirtyBlocks lists every dirty block when there are few, and a bounded window of block
// numbers when there are many (a restart in the middle of a long catch-up).
func TestDirtyBlocksBounded(t *testing.T) {
	p := DefaultParams(1, 0, []Addr{1}, []NodeInfo{{Addr: 1}})
	p.Disk = hDisk(1, 0)
	p.MaxSyncBlocks = 8
	n, err := NewNode(p, newMemStore(), NewRand(1))
	if err != nil {
		t.Fatal(err)
	}
	v := n.addVolume(Config{Volume: 1, Blocks: 1 << 20, RF: 1, Epoch: 1, Primary: 1, InSync: []Addr{1}, Replicas: []Addr{1}})
	v.commit = 100
	for b := range uint64(11) {
		v.index.set(b*1000, 200-LSN(b)) // dirty: after the commit point
		v.index.set(b*1000+1, 50)       // clean
	}
	v.unapplied = []*mutation{{entry: &Entry{LSN: 300, Block: 7, Data: make([]byte, 2*BlockSize)}}}
	got, upto := n.dirtyBlocks(v, 0)
	want := []uint64{0, 7, 8, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000}
	if upto != 0 || !slices.Equal(got, want) {
		t.Fatalf("few dirty blocks: %v upto %d, want %v upto 0", got, upto, want)
	}
	if got, upto = n.dirtyBlocks(v, 5000); upto != 0 || !slices.Equal(got, want[7:]) {
		t.Fatalf("from cursor 5000: %v upto %d", got, upto)
	}
	for b := range uint64(10_000) {
		v.index.set(b, 101+LSN(b%7)) // parts wrote them (the primary's LSNs, above our commit point)
	}
	if got, upto = n.dirtyBlocks(v, 0); upto != 8 || !slices.Equal(got, []uint64{0, 1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("many dirty blocks from 0: %v upto %d, want 0..7 upto 8", got, upto)
	}
	// Sparse beyond 10,000: the scan stops after 8×64 block numbers.
	if got, upto = n.dirtyBlocks(v, 9995); upto != 9995+8*syncScanFactor || !slices.Equal(got, []uint64{9995, 9996, 9997, 9998, 9999, 10000}) {
		t.Fatalf("many dirty blocks from 9995: %v upto %d", got, upto)
	}
	// Up to the volume's end: complete again.
	if got, upto = n.dirtyBlocks(v, 1<<20-10); upto != 0 || len(got) != 0 {
		t.Fatalf("at the volume's end: %v upto %d", got, upto)
	}
}
