package core

import (
	"bytes"
	"slices"
	"testing"
)

// Scripted interaction scenarios on the harness in harness_test.go: 4 nodes, one RF=3
// volume. With the harness's seeds the authority (node 1) places the volume on
// replicas [1 3 4] with primary 3; each scenario looks the roles up and checks what it needs.

// setup creates the volume and returns its config, the primary and its two members
// (the one that is not the authority last).
func setup(t *testing.T, tweak func(*Params)) (c *cluster, cfg Config, p Addr, m []Addr) {
	t.Helper()
	c = newCluster(t, 4, tweak)
	cfg = c.createVolume()
	p = cfg.Primary
	if p == hAuth {
		t.Fatalf("scenario needs a primary other than the authority: %v", cfg)
	}
	m = others(cfg, p)
	slices.SortFunc(m, func(a, b Addr) int { return boolInt(a != hAuth) - boolInt(b != hAuth) })
	return c, cfg, p, m
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// 1. Create, write, read back; every replica's storage holds the block after commit.
func TestScenarioCreateWriteRead(t *testing.T) {
	c, cfg, p, _ := setup(t, nil)
	// Epoch 1 at creation, 2 once the primary renewed it (DESIGN 2.4).
	if cfg.Epoch != 2 || len(cfg.Replicas) != 3 || !slices.Equal(cfg.InSync, cfg.Replicas) {
		t.Fatalf("created config %v", cfg)
	}
	for _, r := range cfg.Replicas {
		if v := c.vol(r); v == nil || v.cfg.Epoch != cfg.Epoch || (v.prim != nil) != (r == p) {
			t.Fatalf("replica %d did not adopt the config as expected", r)
		}
	}
	for _, h := range c.nodes {
		if !cfg.IsReplica(h.addr) && c.vol(h.addr) != nil {
			t.Fatalf("non-replica %d hosts the volume", h.addr)
		}
	}

	data := fill(0xA1, 2)
	d := c.writeOK(3, data)
	if d.Epoch != cfg.Epoch || d.Primary != p {
		t.Fatalf("write completion %+v", d)
	}
	if v := c.vol(p); v.last != 1 || v.commit != 1 {
		t.Fatalf("primary: last=%d commit=%d, want 1/1", v.last, v.commit)
	}
	for _, r := range cfg.Replicas {
		if v := c.vol(r); v.last != 1 || v.durable != 1 {
			t.Fatalf("replica %d: last=%d durable=%d, want 1/1", r, v.last, v.durable)
		}
		if !bytes.Equal(c.stored(r, 3, 2), data) {
			t.Fatalf("replica %d's store lacks the committed blocks", r)
		}
	}
	c.run(c.node(p).p.HeartbeatInterval) // members learn the commit point from the next heartbeat
	for _, r := range cfg.Replicas {
		if v := c.vol(r); v.commit != 1 {
			t.Fatalf("replica %d: commit=%d after a heartbeat, want 1", r, v.commit)
		}
	}
	c.readOK(3, data)
	c.readOK(0, fill(0, 1)) // never written: zeros
}

// 2. A member whose inbound link is dropped is shrunk out; writes go on being acknowledged.
func TestScenarioShrinkSilentMember(t *testing.T) {
	c, cfg0, p, m := setup(t, nil)
	e0 := cfg0.Epoch
	other, silent := m[0], m[1]
	c.writeOK(0, fill(1, 1))

	for _, h := range c.nodes {
		c.cut[[2]Addr{h.addr, silent}] = true
	}
	w := c.write(1, fill(2, 1))
	c.run(c.node(p).p.ShrinkTimeout / 2)
	if _, ok := c.done[w]; ok {
		t.Fatal("write acknowledged while a silent member was still in sync")
	}
	d := c.waitOK(w, 2*Second)
	ac := c.authCfg()
	if ac.Epoch != e0+1 || ac.Primary != p || ac.IsInSync(silent) || !ac.IsReplica(silent) || !ac.IsInSync(other) {
		t.Fatalf("after shrink: %v", ac)
	}
	if d.Epoch != e0+1 {
		t.Fatalf("write acknowledged at epoch %d, want %d (after the shrink)", d.Epoch, e0+1)
	}
	if n := len(traceOf(c, func(tr traced, r *AuthRequest) bool { return r.Op == OpShrink && r.Node == silent && tr.from == p })); n == 0 {
		t.Fatal("primary never asked to shrink the silent member")
	}
	// Later writes no longer wait for it.
	start := c.now
	c.writeOK(2, fill(3, 1))
	if c.now != start {
		t.Fatalf("write after the shrink took %dms", (c.now-start)/Millisecond)
	}
	if v := c.vol(silent); v.cfg.Epoch != e0 || v.last != 1 {
		t.Fatalf("silent member: epoch %d last %d, want %d/1 (it hears nothing)", v.cfg.Epoch, v.last, e0)
	}
	if v := c.vol(other); v.last != 3 || !bytes.Equal(c.stored(other, 2, 1), fill(3, 1)) {
		t.Fatalf("in-sync member: last %d", v.last)
	}
}

// 3. Primary crash: health check through the authority, promise waited out, promotion;
// the client follows and its retried write takes effect once.
func TestScenarioPrimaryCrashFailover(t *testing.T) {
	// A lease longer than FailTimeout+ProbeTimeout, so waiting out the promise is visible.
	c, cfg0, p, _ := setup(t, func(p *Params) { p.Lease = 2 * Second })
	e0 := cfg0.Epoch
	c.writeOK(0, fill(0x11, 1))
	lastBefore := map[Addr]LSN{}
	for _, r := range others(c.authCfg(), p) {
		lastBefore[r] = c.vol(r).last
	}

	// W commits on every replica, but the primary's answer is lost, then the primary crashes.
	c.drop = func(from, to Addr, _ Message) bool { return from == p && to == hClient }
	w := c.write(1, fill(0x22, 1))
	if _, ok := c.done[w]; ok || c.vol(p).commit != 2 {
		t.Fatalf("W: done=%v primary commit=%d, want unanswered and committed at 2", ok, c.vol(p).commit)
	}
	c.drop = nil
	crashAt := c.now
	c.crash(p)

	c.runUntil(5*Second, "promotion", func() bool { return c.authCfg().Primary != p })
	ac := c.authCfg()
	np := ac.Primary
	if ac.Epoch != e0+1 || ac.IsInSync(p) || !ac.IsInSync(np) {
		t.Fatalf("after promotion: %v", ac)
	}
	// The path to promotion: HealthCheck -> Probe (lost) -> unhealthy -> wait for promise -> Promote.
	hc := traceOf(c, func(tr traced, _ *HealthCheck) bool { return tr.from == np && !tr.dropped })
	probes := traceOf(c, func(tr traced, _ *Probe) bool { return tr.from == hAuth && tr.to == p })
	res := traceOf(c, func(tr traced, r *HealthResult) bool { return tr.to == np && !r.Healthy && !tr.dropped })
	prom := traceOf(c, func(tr traced, r *AuthRequest) bool { return r.Op == OpPromote && tr.from == np })
	if len(hc) == 0 || len(probes) == 0 || len(res) == 0 || len(prom) == 0 {
		t.Fatalf("health checks %d, probes %d, unhealthy results %d, promotes %d", len(hc), len(probes), len(res), len(prom))
	}
	fail := c.node(np).p.FailTimeout
	if hc[0].at-crashAt < fail-c.node(p).p.HeartbeatInterval {
		t.Fatalf("health check %dms after the crash, before FailTimeout", (hc[0].at-crashAt)/Millisecond)
	}
	promise := c.vol(np).promiseUntil
	if hBase+res[0].at >= promise || hBase+prom[0].at < promise {
		t.Fatalf("unhealthy at %d, promote at %d, promise until %d: want unhealthy < promise <= promote",
			hBase+res[0].at, hBase+prom[0].at, promise)
	}

	// The client's retry of W reaches the new primary and is answered, not reapplied.
	d := c.waitOK(w, 4*Second)
	if d.Primary != np || d.Epoch < e0+1 {
		t.Fatalf("W completed by %d at epoch %d, want new primary %d", d.Primary, d.Epoch, np)
	}
	if len(traceOf(c, func(tr traced, m *ClientWrite) bool { return tr.to == np && m.Req == w && !tr.dropped })) == 0 {
		t.Fatal("the retried write never reached the new primary")
	}
	if got, want := c.vol(np).last, lastBefore[np]+1; got != want {
		t.Fatalf("new primary's log at %d after W, want %d (exactly one entry for W)", got, want)
	}
	if lsn, ok := c.vol(np).dedup.lookup(7, w); !ok || lsn != lastBefore[np]+1 {
		t.Fatalf("dedup for W: %d %v", lsn, ok)
	}
	c.readOK(0, fill(0x11, 1))
	c.readOK(1, fill(0x22, 1))
	if cfg, _ := c.cl.Config(hVol); cfg.Primary != np {
		t.Fatalf("client's cached primary %d, want %d", cfg.Primary, np)
	}
}

// 4. L2: only primary<->member is cut. The member's health check finds the primary
// healthy, nobody is promoted, the member is shrunk out, then caught up and grown back.
func TestScenarioLinkCutShrinksNotPromotes(t *testing.T) {
	c, cfg0, p, m := setup(t, nil)
	e0 := cfg0.Epoch
	s := m[1] // not the authority: it reaches the authority over its own link
	c.writeOK(0, fill(1, 1))
	c.cutLink(p, s)
	// Hold the primary's shrink back long enough for the member's health check to run.
	c.drop = func(from, to Addr, m Message) bool {
		r, ok := m.(*AuthRequest)
		return ok && r.Op == OpShrink
	}
	c.runUntil(3*Second, "healthy answer to the member's health check", func() bool {
		return len(traceOf(c, func(tr traced, r *HealthResult) bool { return tr.to == s && r.Healthy && !tr.dropped })) > 0
	})
	if len(traceOf(c, func(tr traced, m *ProbeAck) bool { return tr.from == p && !tr.dropped })) == 0 {
		t.Fatal("no probe answered by the primary")
	}
	c.drop = nil
	w := c.write(1, fill(2, 1))
	c.waitOK(w, 2*Second)
	ac := c.authCfg()
	if ac.Epoch != e0+1 || ac.Primary != p || ac.IsInSync(s) {
		t.Fatalf("after shrink: %v", ac)
	}
	// Several lease lengths with the link still cut, writing all along: no failover.
	for i := range 4 {
		c.writeOK(2+uint64(i), fill(byte(3+i), 1))
		c.run(c.node(p).p.Lease)
	}
	for _, cfg := range c.issued {
		if cfg.Primary != p {
			t.Fatalf("authority issued %v with another primary", cfg)
		}
	}
	if n := len(traceOf(c, func(_ traced, r *AuthRequest) bool { return r.Op == OpPromote })); n != 0 {
		t.Fatalf("%d promotion requests", n)
	}
	if c.vol(s).cfg.IsInSync(s) {
		t.Fatal("shrunk member still believes it is in sync")
	}

	c.healLink(p, s)
	c.runUntil(3*Second, "grow", func() bool { ac := c.authCfg(); return ac.IsInSync(s) })
	ac = c.authCfg()
	if ac.Primary != p || ac.Epoch != e0+2 {
		t.Fatalf("after grow: %v", ac)
	}
	if len(traceOf(c, func(tr traced, _ *Sync) bool { return tr.from == p && tr.to == s && !tr.dropped })) == 0 {
		t.Fatal("member was not caught up with a Sync")
	}
	if a, b := c.vol(p), c.vol(s); a.last != b.last || a.commit != b.commit {
		t.Fatalf("primary last/commit %d/%d, member %d/%d", a.last, a.commit, b.last, b.commit)
	}
	if !bytes.Equal(c.stored(p, 0, int(hBlocks)), c.stored(s, 0, int(hBlocks))) {
		t.Fatal("member's blocks differ from the primary's")
	}
	c.writeOK(9, fill(9, 1)) // writes commit with it back in the set
	if !bytes.Equal(c.stored(s, 9, 1), fill(9, 1)) {
		t.Fatal("grown member lacks a new write")
	}
}

// 5. Restarts: a member recovers its log and data from its journal and snapshot; a
// restarted primary refuses reads until it holds fresh promises.
func TestScenarioRestartRecovers(t *testing.T) {
	c, cfg, p, m := setup(t, func(p *Params) { p.CheckpointEvery = 3 }) // recovery uses snapshot + journal
	for i := range 5 {
		c.writeOK(uint64(i), fill(byte(0x40+i), 1))
		if i < 3 {
			c.run(hStep) // checkpoints start on a tick: the last two writes stay in the journal
		}
	}
	want := fill(0x40, 1)
	for i := 1; i < 5; i++ {
		want = append(want, fill(byte(0x40+i), 1)...)
	}

	s := m[1]
	before := *c.vol(s)
	if st := c.node(s).st; st.snapshot == nil || len(st.journal) == 0 {
		t.Fatalf("member storage: snapshot %v, %d journal records; want both", st.snapshot != nil, len(st.journal))
	}
	c.crash(s)
	if bytes.Equal(c.stored(s, 0, 5), want) {
		t.Fatal("crash lost no block writes: recovery would not be exercised")
	}
	c.start(c.node(s))
	v := c.vol(s)
	if v.last != before.last || v.lastEpoch != before.lastEpoch || v.cfg.Epoch != before.cfg.Epoch || v.last != 5 {
		t.Fatalf("member after restart: last %d/%d epoch %d, before %d/%d epoch %d",
			v.last, v.lastEpoch, v.cfg.Epoch, before.last, before.lastEpoch, before.cfg.Epoch)
	}
	if !bytes.Equal(c.stored(s, 0, 5), want) {
		t.Fatal("member's blocks not recovered")
	}

	// An append the member never completed is lost in its next crash; the write waits,
	// and after the restart the primary's retransmission fills the gap.
	h := c.node(s)
	h.manual = true
	w := c.write(5, fill(0x45, 1))
	if v := c.vol(s); v.last != 6 || v.durable != 5 || len(h.st.inflight) != 1 {
		t.Fatalf("member with a pending append: last %d durable %d, %d ops pending", v.last, v.durable, len(h.st.inflight))
	}
	if _, ok := c.done[w]; ok {
		t.Fatal("write acknowledged before the member's append was durable")
	}
	c.crash(s)
	h.manual = false
	c.start(h)
	if v := c.vol(s); v.last != 5 {
		t.Fatalf("member kept an append that never completed: last %d", v.last)
	}
	c.waitOK(w, Second)
	want = append(want, fill(0x45, 1)...)
	if v := c.vol(s); v.last != 6 || !bytes.Equal(c.stored(s, 0, 6), want) {
		t.Fatalf("member did not catch up after restart: last %d", v.last)
	}

	// Primary restart with its members' inboxes held: no promises yet.
	for _, r := range m {
		c.held[r] = true
	}
	c.crash(p)
	c.start(c.node(p))
	if v := c.vol(p); v.prim == nil || v.last != 6 || !bytes.Equal(c.stored(p, 0, 6), want) {
		t.Fatal("primary did not recover its log, data and role")
	}
	r := c.read(0, 6)
	unavail := traceOf(c, func(tr traced, m *ClientReply) bool { return tr.from == p && m.Req == r })
	if len(unavail) != 1 || unavail[0].msg.(*ClientReply).Status != StatusUnavailable {
		t.Fatalf("read right after restart: %d replies, want one StatusUnavailable", len(unavail))
	}
	for _, a := range m {
		delete(c.held, a)
	}
	d := c.waitOK(r, Second)
	if !bytes.Equal(d.Data, want) || d.Primary != p {
		t.Fatal("read after promises: wrong data or server")
	}
	// The restarted primary renewed its epoch (DESIGN 2.4); nothing else changed.
	if ac := c.authCfg(); ac.Epoch != cfg.Epoch+1 || ac.Primary != p || !slices.Equal(ac.InSync, cfg.InSync) {
		t.Fatalf("restart changed the configuration: %v", ac)
	}
	c.writeOK(6, fill(0x50, 1))
}

// 6. Stale epoch fencing: a deposed primary's Replicate and Heartbeat are answered with
// the member's higher epoch and not applied; reconnected, it steps down.
func TestScenarioStaleEpochFenced(t *testing.T) {
	c, old, p, _ := setup(t, nil)
	c.writeOK(0, fill(1, 1))
	c.isolate(p)
	c.runUntil(5*Second, "promotion", func() bool { return c.authCfg().Primary != p })
	ac := c.authCfg()
	np := ac.Primary
	mem := others(ac, np)
	mem = slices.DeleteFunc(mem, func(a Addr) bool { return a == p })
	c.run(100 * Millisecond)
	s := mem[0]
	v := c.vol(s)
	if v.cfg.Epoch != ac.Epoch || v.cfg.Primary != np {
		t.Fatalf("member %d has %v, authority %v", s, v.cfg, ac)
	}
	last, promise, data := v.last, v.promiseUntil, c.stored(s, 0, 2)

	c.healLink(p, s) // only this link, for the injected messages' answers
	c.inject(p, s, &Replicate{Vol: hVol, Config: old, Commit: 1, PrevEpoch: old.Epoch,
		Entry: Entry{LSN: last + 1, Epoch: old.Epoch, Client: 99, Req: 1, Block: 1, Data: fill(0xEE, 1)}})
	c.inject(p, s, &Heartbeat{Vol: hVol, Config: old, SentAt: hBase + c.now, Commit: 1})
	acks := traceOf(c, func(tr traced, a *ReplicaAck) bool { return tr.from == s && tr.to == p })
	if len(acks) < 2 {
		t.Fatalf("%d answers to the stale messages, want 2", len(acks))
	}
	for _, tr := range acks[len(acks)-2:] {
		if a := tr.msg.(*ReplicaAck); a.Epoch != ac.Epoch || a.EchoSentAt != 0 || tr.dropped {
			t.Fatalf("answer to stale message: %+v", a)
		}
	}
	if v.last != last || v.promiseUntil != promise || v.cfg.Epoch != ac.Epoch || !bytes.Equal(c.stored(s, 0, 2), data) {
		t.Fatal("stale message was applied")
	}

	// The deposed primary, still unaware, takes a write: it logs it but cannot answer
	// (no promises), and its members refuse it.
	c.inject(hRaw, p, &ClientWrite{Vol: hVol, Epoch: old.Epoch, Client: 55, Req: 1, Block: 1, Data: fill(0xDD, 1)})
	if c.vol(p).last != 2 || v.last != last {
		t.Fatalf("deposed primary last %d, member last %d", c.vol(p).last, v.last)
	}
	// Reconnected, the old primary hears the higher epoch, steps down, drops its
	// divergent write and is grown back in.
	for _, h := range c.nodes {
		c.healLink(p, h.addr)
	}
	c.healLink(p, hClient)
	c.runUntil(2*Second, "old primary steps down", func() bool { return c.vol(p).prim == nil })
	if c.authCfg().Primary != np || c.vol(p).cfg.Primary != np {
		t.Fatalf("after reconnect: authority %v, old primary knows %v", c.authCfg(), c.vol(p).cfg)
	}
	c.writeOK(2, fill(2, 1))
	c.runUntil(2*Second, "old primary grown back", func() bool { ac := c.authCfg(); return ac.IsInSync(p) })
	for _, m := range c.inbox {
		if r, ok := m.(*ClientReply); ok && r.Client == 55 {
			t.Fatalf("deposed primary answered a write: %v", r.Status)
		}
	}
	if !bytes.Equal(c.stored(p, 0, int(hBlocks)), c.stored(np, 0, int(hBlocks))) || c.vol(p).last != c.vol(np).last {
		t.Fatal("old primary's contents differ from the new primary's")
	}
	c.readOK(1, fill(0, 1))
}

// 7. Reconciliation: a member holding an entry the new primary never got ends with the
// new primary's contents.
func TestScenarioDivergentTailReconciled(t *testing.T) {
	c, cfg0, p, m := setup(t, nil)
	holder, lacker := m[0], m[1] // holder gets the last entry, lacker becomes the new primary
	c.writeOK(0, fill(1, 1))
	c.writeOK(1, fill(2, 1))

	// W3 (a raw client: no retries) reaches only holder; then the primary crashes.
	c.drop = func(from, to Addr, m Message) bool { _, ok := m.(*Replicate); return ok && from == p && to == lacker }
	c.inject(hRaw, p, &ClientWrite{Vol: hVol, Epoch: cfg0.Epoch, Client: 55, Req: 1, Block: 1, Data: fill(0xBB, 1)})
	if h, l := c.vol(holder), c.vol(lacker); h.last != 3 || h.durable != 3 || l.last != 2 {
		t.Fatalf("holder last %d durable %d, lacker last %d: want 3/3/2", h.last, h.durable, l.last)
	}
	if !bytes.Equal(c.stored(holder, 1, 1), fill(0xBB, 1)) {
		t.Fatal("holder did not write the divergent entry")
	}
	for _, m := range c.inbox {
		if r, ok := m.(*ClientReply); ok && r.Client == 55 {
			t.Fatalf("divergent write was answered: %v", r.Status)
		}
	}
	c.crash(p)
	// Only lacker may win the promotion.
	c.drop = func(from, to Addr, m Message) bool {
		r, ok := m.(*AuthRequest)
		return ok && r.Op == OpPromote && from == holder
	}
	c.runUntil(5*Second, "promotion", func() bool { return c.authCfg().Primary != p })
	if np := c.authCfg().Primary; np != lacker {
		t.Fatalf("promoted %d, want %d", np, lacker)
	}
	c.drop = nil
	c.runUntil(2*Second, "holder reconciled", func() bool { return c.vol(holder).last == c.vol(lacker).last })
	c.run(200 * Millisecond)
	h, l := c.vol(holder), c.vol(lacker)
	if ac := c.authCfg(); h.last != 2 || l.last != 2 || h.commit != l.commit || !ac.IsInSync(holder) {
		t.Fatalf("holder last/commit %d/%d, new primary %d/%d, config %v", h.last, h.commit, l.last, l.commit, c.authCfg())
	}
	if !bytes.Equal(c.stored(holder, 0, int(hBlocks)), c.stored(lacker, 0, int(hBlocks))) ||
		!bytes.Equal(c.stored(holder, 1, 1), fill(2, 1)) {
		t.Fatal("holder's blocks differ from the new primary's")
	}
	if _, ok := h.dedup.lookup(55, 1); ok {
		t.Fatal("holder still remembers the divergent write")
	}
	c.readOK(1, fill(2, 1))
	c.writeOK(1, fill(3, 1))
	if !bytes.Equal(c.stored(holder, 1, 1), fill(3, 1)) {
		t.Fatal("holder did not take a write after reconciliation")
	}
}

// A primary that restarts within its epoch, having sent an entry it never made durable,
// renews its epoch before it creates another (seed 880038): the members' copy of the lost
// entry can never pass for the new entry at that LSN, and is undone.
func TestScenarioRestartedPrimaryRenews(t *testing.T) {
	c, cfg, p, m := setup(t, nil)
	c.writeOK(0, fill(1, 1))
	h := c.node(p)
	h.manual = true // the primary's own append of the next entry never completes
	c.inject(hRaw, p, &ClientWrite{Vol: hVol, Epoch: cfg.Epoch, Client: 55, Req: 1, Block: 1, Data: fill(0xBB, 1)})
	for _, r := range m {
		if v := c.vol(r); v.durable != 2 || v.lastEpoch != cfg.Epoch {
			t.Fatalf("member %d: durable %d, want the sent entry 2", r, v.durable)
		}
	}
	c.crash(p)
	h.manual = false
	c.start(h)
	v := c.vol(p)
	if v.last != 1 || v.prim == nil || !v.prim.renewing {
		t.Fatalf("restarted primary: last %d, renewing %v; want 1 and renewing", v.last, v.prim != nil && v.prim.renewing)
	}
	c.inject(hRaw, p, &ClientWrite{Vol: hVol, Epoch: cfg.Epoch, Client: 56, Req: 1, Block: 2, Data: fill(0xCC, 1)})
	if v.last != 1 {
		t.Fatalf("a renewing primary logged a write: last %d", v.last)
	}
	c.runUntil(2*Second, "renewal", func() bool { return !v.prim.renewing })
	if ac := c.authCfg(); ac.Epoch != cfg.Epoch+1 || ac.Primary != p || !slices.Equal(ac.InSync, cfg.InSync) {
		t.Fatalf("after renewal: %v", ac)
	}
	d := c.writeOK(3, fill(0xDD, 1))
	if d.Epoch != cfg.Epoch+1 || v.lastEpoch != cfg.Epoch+1 {
		t.Fatalf("write after renewal at epoch %d (log epoch %d), want %d", d.Epoch, v.lastEpoch, cfg.Epoch+1)
	}
	c.runUntil(2*Second, "members reconciled", func() bool {
		for _, r := range m {
			if c.vol(r).last != v.last || c.vol(r).lastEpoch != v.lastEpoch {
				return false
			}
		}
		return true
	})
	for _, r := range m {
		if !bytes.Equal(c.stored(r, 0, 4), c.stored(p, 0, 4)) {
			t.Fatalf("member %d differs from the primary", r)
		}
	}
	c.readOK(1, fill(0, 1)) // the lost entry was never acknowledged and is undone everywhere
}

// A member that asked for a catch-up and then follows the primary's log again ignores the
// catch-up's late answer: applying it would roll its log back below an entry the primary
// already counts as its (seed 7001450 lost an acknowledged write that way).
func TestScenarioLateSyncIgnored(t *testing.T) {
	c, cfg, p, m := setup(t, nil)
	s := m[1]
	c.writeOK(0, fill(1, 1))
	c.run(c.node(p).p.HeartbeatInterval) // the member learns the commit point
	v := c.vol(s)
	last := v.last
	// The primary wants the member's state: the member asks for a catch-up from its log
	// (held back: the answer below is the one we send).
	c.drop = func(from, to Addr, _ Message) bool { return from == s && to == p }
	c.inject(p, s, &Heartbeat{Vol: hVol, Config: cfg, SentAt: hBase + c.now, Commit: last, WantState: true})
	if v.series.epoch != cfg.Epoch {
		t.Fatalf("the member did not ask for a catch-up: series %+v", v.series)
	}
	base := v.series.base
	// It then takes the next entry in order, so its log follows the primary's again.
	c.inject(p, s, &Replicate{Vol: hVol, Config: cfg, Commit: last, PrevEpoch: v.lastEpoch,
		Entry: Entry{LSN: last + 1, Epoch: cfg.Epoch, Client: 77, Req: 1, Oldest: 1, Block: 1, Data: fill(0x77, 1)}})
	if v.last != last+1 {
		t.Fatalf("member did not take the entry: last %d", v.last)
	}
	// The answer to its request arrives late: the primary's state at the old point.
	c.inject(p, s, &Sync{Vol: hVol, Epoch: cfg.Epoch, From: base, Upto: last, UptoEpoch: v.lastEpoch, Commit: last, ReqBase: base})
	if v.last != last+1 || !bytes.Equal(c.stored(s, 1, 1), fill(0x77, 1)) {
		t.Fatalf("a late Sync rolled the member back: last %d (want %d)", v.last, last+1)
	}
}

// The primary never answers a catch-up request with a Sync below what it counts as the
// member's: the Sync would reset the member's log and drop entries the primary commits on
// (seed 9200120 lost an acknowledged write when that member was promoted).
func TestScenarioSyncNeverBelowMatch(t *testing.T) {
	c, cfg, p, m := setup(t, nil)
	s, other := m[1], m[0]
	c.writeOK(0, fill(1, 1))
	// The other member's appends hang: the next write is on s but not committed.
	c.node(other).manual = true
	w := c.write(1, fill(2, 1))
	pv, sv := c.vol(p), c.vol(s)
	if sv.durable != pv.last || pv.applied >= pv.last {
		t.Fatalf("setup: member durable %d, primary last %d applied %d", sv.durable, pv.last, pv.applied)
	}
	// A catch-up request from s that its log overtook (its ack of the new entry came first).
	c.inject(s, p, &ReplicaAck{Vol: hVol, Epoch: cfg.Epoch, Last: sv.durable, LastEpoch: sv.durableEpoch, NeedSync: true,
		CommitKnown: pv.applied, Dirty: []uint64{1}, SyncBase: pv.applied, Disk: hDisk(s, 0)})
	for _, tr := range traceOf(c, func(tr traced, x *Sync) bool { return tr.from == p && tr.to == s }) {
		if x := tr.msg.(*Sync); x.Upto < sv.durable {
			t.Fatalf("the primary answered with a Sync to %d, below the member's %d it counts", x.Upto, sv.durable)
		}
	}
	// Once the entry commits, the member is answered and stays whole.
	h := c.node(other)
	h.manual = false
	for len(h.st.inflight) > 0 {
		c.completeOne(h)
		c.flush(h)
	}
	c.waitOK(w, 2*Second)
	c.run(Second)
	if !bytes.Equal(c.stored(s, 0, 2), c.stored(p, 0, 2)) || sv.last != pv.last {
		t.Fatalf("member differs from the primary: last %d vs %d", sv.last, pv.last)
	}
}
