package core

import (
	"bytes"
	"testing"
)

// A member whose disk was wiped comes back empty under a new disk identity: the primary
// takes it out of the in-sync set instead of counting what the old disk acknowledged,
// copies the whole volume to it, and grows it back in with its new disk recorded.
func TestScenarioWipedMemberRebuilt(t *testing.T) {
	c, cfg, p, m := setup(t, nil)
	s := m[1] // not the authority
	for b := range uint64(6) {
		c.writeOK(b, fill(byte(0x30+b), 1))
	}
	if cfg.DiskOf(s) != hDisk(s, 0) || cfg.DiskOf(p) != hDisk(p, 0) {
		t.Fatalf("created volume's disks: %v", cfg)
	}
	c.wipe(s, 1)
	c.start(c.node(s))
	shrunk := false
	c.runUntil(5*Second, "wiped member rebuilt", func() bool {
		ac := c.authCfg()
		shrunk = shrunk || !ac.IsInSync(s)
		return ac.IsInSync(s) && ac.DiskOf(s) == hDisk(s, 1)
	})
	if !shrunk {
		t.Fatal("the wiped member never left the in-sync set")
	}
	c.writeOK(6, fill(0x40, 1))
	c.runUntil(2*Second, "member caught up", func() bool { return c.vol(s).last == c.vol(p).last })
	if !bytes.Equal(c.stored(s, 0, int(hBlocks)), c.stored(p, 0, int(hBlocks))) {
		t.Fatal("the rebuilt member differs from the primary")
	}
	// The rebuilt member now holds the data: with the primary gone it may take over.
	c.crash(p)
	c.runUntil(5*Second, "failover", func() bool { return c.authCfg().Primary != p })
	for b := range uint64(6) {
		c.readOK(b, fill(byte(0x30+b), 1))
	}
	c.readOK(6, fill(0x40, 1))
}

// A wiped member that learns the configuration (a new cell leader pushes every one) while
// every other in-sync replica is down is never promoted: it holds none of the data. Once a
// replica with the data returns, it takes over and nothing acknowledged is lost.
func TestScenarioWipedMemberNeverPromoted(t *testing.T) {
	// Replicas on nodes 2-4 only, so the authority (node 1) stays up while they fail.
	c, _, p, m := setup(t, func(p *Params) { p.Nodes = p.Nodes[1:] })
	a, s := m[0], m[1]
	for b := range uint64(4) {
		c.writeOK(b, fill(byte(0x50+b), 1))
	}
	// The primary and the other member go down; s loses its disk and comes back.
	c.crash(p)
	c.crash(a)
	c.wipe(s, 1)
	c.start(c.node(s))
	c.inject(hAuth, s, &ConfigPush{Config: c.authCfg()})
	if v := c.vol(s); v == nil || !v.cfg.IsInSync(s) {
		t.Fatal("the wiped member did not learn the configuration")
	}
	c.run(5 * Second)
	if ac := c.authCfg(); ac.Primary == s {
		t.Fatalf("the wiped member was promoted: %v", ac)
	}
	if n := len(traceOf(c, func(tr traced, r *AuthRequest) bool { return r.Op == OpPromote && tr.from == s })); n != 0 {
		t.Fatalf("the wiped member asked %d times to be promoted", n)
	}
	// The authority refuses the wiped member's claim outright too.
	c.inject(s, hAuth, &AuthRequest{Op: OpPromote, ReqID: 77, Vol: hVol, FromEpoch: c.authCfg().Epoch, Node: s, Disk: hDisk(s, 1)})
	if ac := c.authCfg(); ac.Primary == s || ac.DiskOf(s) != hDisk(s, 0) {
		t.Fatalf("the authority promoted a member whose disk is not the recorded one: %v", ac)
	}
	// A replica that holds the data returns: it takes over and nothing is lost.
	c.start(c.node(a))
	c.runUntil(10*Second, "a replica with the data serves", func() bool {
		ac := c.authCfg()
		v := c.vol(ac.Primary)
		return ac.Primary != s && c.node(ac.Primary).up && v != nil && v.prim != nil && !v.prim.renewing
	})
	for b := range uint64(4) {
		c.readOK(b, fill(byte(0x50+b), 1))
	}
	c.runUntil(10*Second, "wiped member rebuilt", func() bool {
		ac := c.authCfg()
		return ac.IsInSync(s) && ac.DiskOf(s) == hDisk(s, 1)
	})
	if np := c.authCfg().Primary; !bytes.Equal(c.stored(s, 0, int(hBlocks)), c.stored(np, 0, int(hBlocks))) {
		t.Fatal("the rebuilt member differs from the primary")
	}
}

// The primary's disk is lost: it comes back empty while the configuration still names it
// primary. It does not act as one (nor answer the authority's probes), so a member that
// holds the data takes over; then the wiped node is rebuilt like any other.
func TestScenarioWipedPrimaryStepsAside(t *testing.T) {
	c, _, p, _ := setup(t, func(p *Params) { p.Nodes = p.Nodes[1:] }) // the authority hosts none
	for b := range uint64(4) {
		c.writeOK(b, fill(byte(0x60+b), 1))
	}
	c.wipe(p, 1)
	c.start(c.node(p))
	c.inject(hAuth, p, &ConfigPush{Config: c.authCfg()}) // as a new cell leader would
	if v := c.vol(p); v == nil || v.prim != nil || v.cfg.Primary != p {
		t.Fatalf("the wiped primary: volume %v, acting %v", v != nil, v != nil && v.prim != nil)
	}
	c.runUntil(10*Second, "a member takes over", func() bool { return c.authCfg().Primary != p })
	if n := len(traceOf(c, func(tr traced, _ *ProbeAck) bool { return tr.from == p })); n != 0 {
		t.Fatalf("the wiped primary answered %d probes", n)
	}
	for b := range uint64(4) {
		c.readOK(b, fill(byte(0x60+b), 1))
	}
	c.runUntil(10*Second, "the wiped node rebuilt", func() bool {
		ac := c.authCfg()
		return ac.IsInSync(p) && ac.DiskOf(p) == hDisk(p, 1)
	})
	np := c.authCfg().Primary
	if !bytes.Equal(c.stored(p, 0, int(hBlocks)), c.stored(np, 0, int(hBlocks))) {
		t.Fatal("the rebuilt node differs from the new primary")
	}
}
