package core

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
)

// Scripted scenarios of the authority's volume table: names, listing, deletion at the hosts.

// ask sends an operator request to the leader and waits for its answer, sending it again
// (same id) every 300 ms while there is none (a leader change, a lost message).
func (c *cluster) ask(req *AuthRequest, limit int64) *AuthReply {
	c.t.Helper()
	if l := c.authLeader(); l != 0 {
		c.inject(hAdmin, l, req)
	}
	var r *AuthReply
	c.runUntil(limit, fmt.Sprintf("an answer to op %d req %d", req.Op, req.ReqID), func() bool {
		if r = c.adminReply(req.ReqID); r != nil {
			return true
		}
		if l := c.authLeader(); l != 0 && c.now%(300*Millisecond) == 0 {
			c.inject(hAdmin, l, req)
		}
		return false
	})
	return r
}

// listAll follows the cursor through every page; it returns the pages' sizes too.
func (c *cluster) listAll(reqBase uint64) ([]VolumeEntry, []int) {
	c.t.Helper()
	var all []VolumeEntry
	var pages []int
	cursor := VolumeID(0)
	for i := range 100 {
		r := c.ask(&AuthRequest{Op: OpListVolumes, ReqID: reqBase + uint64(i), Vol: cursor}, 5*Second)
		if r.Status != StatusOK || len(r.List) > MaxListVolumes {
			c.t.Fatalf("list from %d: %v with %d entries", cursor, r.Status, len(r.List))
		}
		all = append(all, r.List...)
		pages = append(pages, len(r.List))
		if !r.More {
			return all, pages
		}
		if len(r.List) == 0 {
			c.t.Fatal("a list page with More and no entries")
		}
		cursor = r.List[len(r.List)-1].Config.Volume
	}
	c.t.Fatal("list: still More after 100 pages")
	return nil, nil
}

func volName(id VolumeID) string {
	if id%7 == 0 {
		return "" // a numbered volume
	}
	return fmt.Sprintf("vol-%d.x_y", id)
}

// checkList asserts the list holds exactly the volumes 1..n, in id order, with their names
// and configurations as the leader holds them.
func (c *cluster) checkList(all []VolumeEntry, n int) {
	c.t.Helper()
	if len(all) != n {
		c.t.Fatalf("listed %d volumes, want %d", len(all), n)
	}
	l := c.node(c.authLeader()).n
	for i, e := range all {
		id := VolumeID(i + 1)
		want, _ := l.AuthorityConfig(id)
		if e.Config.Volume != id || e.Name != volName(id) || e.Config.String() != want.String() || e.Config.QoS != want.QoS {
			c.t.Fatalf("entry %d: %q %v, want volume %d named %q, %v", i, e.Name, e.Config, id, volName(id), want)
		}
	}
}

// Names are stored with the volume and returned by create, get and list; a create of an
// existing id answers Conflict with the stored configuration and name. The list pages
// through more volumes than fit one answer, and reads the same after a leader change and
// after every member restarted from its snapshot.
func TestCellVolumeNamesAndList(t *testing.T) {
	const n = MaxListVolumes + 44 // two pages
	c := newCluster(t, 4, func(p *Params) { p.Authorities = []Addr{1, 2, 3}; p.CheckpointEvery = 16 })
	for id := VolumeID(1); id <= n; id++ {
		c.inject(hAdmin, c.authLeader(), &AuthRequest{Op: OpCreateVolume, ReqID: uint64(id), Vol: id, Blocks: 4, RF: 1, Name: volName(id)})
	}
	c.runUntil(10*Second, "every create answered", func() bool {
		for id := VolumeID(1); id <= n; id++ {
			if r := c.adminReply(uint64(id)); r == nil {
				return false
			}
		}
		return true
	})
	for id := VolumeID(1); id <= n; id++ {
		if r := c.adminReply(uint64(id)); r.Status != StatusOK || r.Name != volName(id) || r.Config.Epoch != 1 {
			t.Fatalf("create %d: %v %q %v", id, r.Status, r.Name, r.Config)
		}
	}
	// Each primary renews its new volume's first epoch (DESIGN 2.4): epoch 2 from then on.
	c.runUntil(10*Second, "every volume renewed", func() bool {
		for id := VolumeID(1); id <= n; id++ {
			if cfg, ok := c.node(c.authLeader()).n.AuthorityConfig(id); !ok || cfg.Epoch != 2 {
				return false
			}
		}
		return true
	})
	r := c.ask(&AuthRequest{Op: OpGetConfig, ReqID: 1000, Vol: 12}, Second)
	if r.Status != StatusOK || r.Name != volName(12) || r.Config.Volume != 12 {
		t.Fatalf("get: %v %q %v", r.Status, r.Name, r.Config)
	}
	r = c.ask(&AuthRequest{Op: OpCreateVolume, ReqID: 1001, Vol: 12, Blocks: 8, RF: 1, Name: "other"}, Second)
	if r.Status != StatusConflict || r.Name != volName(12) || r.Config.Blocks != 4 {
		t.Fatalf("create of an existing id: %v %q %v; want Conflict with the stored name and config", r.Status, r.Name, r.Config)
	}
	// A change naming another volume (its name hashed to this id) does not touch this one.
	for i, op := range []AuthOp{OpDeleteVolume, OpSetQoS} {
		r = c.ask(&AuthRequest{Op: op, ReqID: 1010 + uint64(i), Vol: 12, Name: "not-12", QoS: QoS{IOPS: 100}}, Second)
		if r.Status != StatusNotFound {
			t.Fatalf("op %d under another name: %v, want NotFound", op, r.Status)
		}
	}
	if cfg, ok := c.node(c.authLeader()).n.AuthorityConfig(12); !ok || cfg.Epoch != 2 {
		t.Fatalf("a change under another name touched volume 12: %v %v", cfg, ok)
	}
	r = c.ask(&AuthRequest{Op: OpSetQoS, ReqID: 1012, Vol: 12, Name: volName(12), QoS: QoS{IOPS: 100, BurstIOPS: 100}}, Second)
	if r.Status != StatusOK || r.Config.Epoch != 3 || r.Name != volName(12) {
		t.Fatalf("set QoS under the stored name: %v %v %q", r.Status, r.Config, r.Name)
	}
	// (A bad name never reaches the authority: the codec refuses it, see TestCodecVolumeNames.)

	all, pages := c.listAll(2000)
	c.checkList(all, n)
	if !slices.Equal(pages, []int{MaxListVolumes, n - MaxListVolumes}) {
		t.Fatalf("pages of %v, want %d then %d", pages, MaxListVolumes, n-MaxListVolumes)
	}
	// A cursor in the middle, and one past the end.
	r = c.ask(&AuthRequest{Op: OpListVolumes, ReqID: 2100, Vol: n - 3}, Second)
	if len(r.List) != 3 || r.More || r.List[0].Config.Volume != n-2 {
		t.Fatalf("list from %d: %d entries, more=%v", n-3, len(r.List), r.More)
	}
	r = c.ask(&AuthRequest{Op: OpListVolumes, ReqID: 2101, Vol: n}, Second)
	if r.Status != StatusOK || len(r.List) != 0 || r.More {
		t.Fatalf("list past the end: %v %d more=%v", r.Status, len(r.List), r.More)
	}

	// A leader change: the new leader lists the same.
	old := c.authLeader()
	c.crash(old)
	c.runUntil(5*Second, "a new leader", func() bool { l := c.authLeader(); return l != 0 && l != old })
	all, _ = c.listAll(3000)
	c.checkList(all, n)
	c.start(c.node(old))

	// Every member restarts from its storage; the table comes back from the Raft snapshot.
	c.run(2 * Second)
	for a := Addr(1); a <= 3; a++ {
		c.crash(a)
	}
	for a := Addr(1); a <= 3; a++ {
		h := c.node(a)
		c.start(h)
		if h.n.auth.cell.disk.snap == nil {
			t.Fatalf("member %d restarted without a Raft snapshot: the table was never compacted", a)
		}
	}
	c.runUntil(5*Second, "a leader after the restart", func() bool { return c.authLeader() != 0 })
	all, _ = c.listAll(4000)
	c.checkList(all, n)
}

// writeTo writes through the client and returns its completion (whatever the status).
func (c *cluster) writeTo(block uint64, data []byte, limit int64) Completion {
	c.t.Helper()
	req := c.write(block, data)
	c.runUntil(limit, "the write's completion", func() bool { _, ok := c.done[req]; return ok })
	return c.done[req]
}

// gone reports whether node a forgot vol: no state, a tombstone, no blocks in storage.
func (c *cluster) gone(a Addr, vol VolumeID) bool {
	h := c.node(a)
	return h.up && !h.n.Hosts(vol) && h.n.Deleted(vol) && h.st.blocksOf(vol) == 0
}

func (c *cluster) tombsForgotten() bool {
	for a := Addr(1); a <= 3; a++ {
		if h := c.node(a); h.up && len(h.n.auth.tombs) != 0 {
			return false
		}
	}
	return true
}

// Deleting a volume takes effect at its hosts: the primary stops serving (the client's
// next write fails with NotFound instead of retrying), every host forgets the volume and
// frees its blocks, a late message of the old primary does not bring it back, and the
// authority forgets the tombstone once every host acknowledged. Deleting again is
// NotFound; the id can then be created again, empty.
func TestDeleteVolumeAtHosts(t *testing.T) {
	c := cellCluster(t)
	cfg := c.createVolume()
	c.writeOK(3, fill(0xab, 2))
	c.readOK(3, fill(0xab, 2))
	for _, r := range cfg.Replicas {
		if !bytes.Equal(c.stored(r, 3, 2), fill(0xab, 2)) {
			t.Fatalf("replica %d does not hold the write", r)
		}
	}
	r := c.ask(&AuthRequest{Op: OpDeleteVolume, ReqID: 10, Vol: hVol}, 2*Second)
	if r.Status != StatusOK {
		t.Fatalf("delete: %v", r.Status)
	}
	if _, ok := c.node(c.authLeader()).n.AuthorityConfig(hVol); ok {
		t.Fatal("the authority still holds the deleted volume")
	}
	c.runUntil(2*Second, "every host forgetting the volume", func() bool {
		for _, h := range cfg.Replicas {
			if !c.gone(h, hVol) {
				return false
			}
		}
		return true
	})
	d := c.writeTo(5, fill(0xcd, 1), 3*Second)
	if d.Status != StatusNotFound || d.Unknown {
		t.Fatalf("a write after the delete: %v unknown=%v; want NotFound", d.Status, d.Unknown)
	}
	// A raw request with the old epoch to the old primary: NotFound too.
	c.inject(hRaw, cfg.Primary, &ClientRead{Vol: hVol, Epoch: cfg.Epoch, Client: 5, Req: 1, Block: 0, Count: 1})
	var got *ClientReply
	for _, m := range c.inbox {
		if x, ok := m.(*ClientReply); ok && x.Client == 5 {
			got = x
		}
	}
	if got == nil || got.Status != StatusNotFound {
		t.Fatalf("the old primary answered a read of the deleted volume with %+v", got)
	}
	// A heartbeat of the old configuration, late, does not recreate the volume.
	for _, h := range others(cfg, cfg.Primary) {
		c.inject(cfg.Primary, h, &Heartbeat{Vol: hVol, Config: cfg, SentAt: hBase + c.now, Commit: 1, Credits: -1})
		if !c.gone(h, hVol) {
			t.Fatalf("a late heartbeat brought volume %d back on node %d", hVol, h)
		}
	}
	c.runUntil(2*Second, "the authority forgetting the tombstone", c.tombsForgotten)
	if r := c.ask(&AuthRequest{Op: OpDeleteVolume, ReqID: 11, Vol: hVol}, Second); r.Status != StatusNotFound {
		t.Fatalf("deleting a deleted volume: %v, want NotFound", r.Status)
	}
	// A retry of the first delete (same id) gets its first answer.
	if r := c.ask(&AuthRequest{Op: OpDeleteVolume, ReqID: 10, Vol: hVol}, Second); r.Status != StatusOK {
		t.Fatalf("a retried delete: %v, want its first answer (OK)", r.Status)
	}
	// Restarted, the hosts still know the volume is gone (journal or snapshot).
	for _, h := range cfg.Replicas {
		c.crash(h)
		c.start(c.node(h))
	}
	c.runUntil(5*Second, "a leader after the restarts", func() bool { return c.authLeader() != 0 })
	for _, h := range cfg.Replicas {
		if !c.gone(h, hVol) {
			t.Fatalf("node %d brought the deleted volume back after a restart", h)
		}
	}
	// The same id again: a new, empty volume above the tombstone's epoch.
	r = c.ask(&AuthRequest{Op: OpCreateVolume, ReqID: 12, Vol: hVol, Blocks: hBlocks, RF: 3, Name: "again"}, 2*Second)
	if r.Status != StatusOK || r.Config.Epoch <= cfg.Epoch+1 || r.Name != "again" {
		t.Fatalf("create again: %v %v %q", r.Status, r.Config, r.Name)
	}
	c.readOK(3, make([]byte, 2*BlockSize))
	c.writeOK(5, fill(0x11, 1))
	// A late duplicate of the old tombstone push does not touch the new volume.
	tombCfg := Config{Volume: hVol, Epoch: cfg.Epoch + 1, Replicas: cfg.Replicas}
	for _, h := range r.Config.Replicas {
		c.inject(c.authLeader(), h, &ConfigPush{Config: tombCfg, Deleted: true})
		if !c.node(h).n.Hosts(hVol) {
			t.Fatalf("a late tombstone of the old volume deleted the new one on node %d", h)
		}
	}
	c.readOK(5, fill(0x11, 1))
}

// A host that is down when the volume is deleted learns it when it comes back (the
// authority pushes the tombstone until acknowledged, across a leader change too); until
// then the id cannot be created again.
func TestDeleteVolumeHostDown(t *testing.T) {
	c := newCluster(t, 4, func(p *Params) { p.Authorities = []Addr{1, 2, 3}; p.CheckpointEvery = 8 })
	cfg := c.createVolume()
	c.writeOK(1, fill(0x42, 1))
	down := Addr(0)
	for _, h := range others(cfg, cfg.Primary) {
		if h != c.authLeader() {
			down = h
		}
	}
	c.crash(down)
	if r := c.ask(&AuthRequest{Op: OpDeleteVolume, ReqID: 20, Vol: hVol}, 3*Second); r.Status != StatusOK {
		t.Fatalf("delete: %v", r.Status)
	}
	c.runUntil(2*Second, "the hosts that are up forgetting the volume", func() bool {
		for _, h := range cfg.Replicas {
			if h != down && !c.gone(h, hVol) {
				return false
			}
		}
		return true
	})
	c.run(Second)
	if c.tombsForgotten() {
		t.Fatal("the authority forgot the tombstone while a host has not acknowledged it")
	}
	if r := c.ask(&AuthRequest{Op: OpCreateVolume, ReqID: 21, Vol: hVol, Blocks: hBlocks, RF: 3}, Second); r.Status != StatusUnavailable {
		t.Fatalf("create while a host still holds the deleted volume: %v, want Unavailable", r.Status)
	}
	// A leader change meanwhile: the new leader pushes the tombstone again.
	if l := c.authLeader(); l != down {
		c.crash(l)
		c.runUntil(5*Second, "a new leader", func() bool { nl := c.authLeader(); return nl != 0 && nl != l })
		c.start(c.node(l))
	}
	c.start(c.node(down))
	if !c.node(down).n.Hosts(hVol) {
		t.Fatal("the restarted host did not recover the volume from its storage (the test needs it to)")
	}
	c.runUntil(5*Second, "the restarted host forgetting the volume", func() bool { return c.gone(down, hVol) })
	c.runUntil(5*Second, "the authority forgetting the tombstone", c.tombsForgotten)
	if r := c.ask(&AuthRequest{Op: OpCreateVolume, ReqID: 22, Vol: hVol, Blocks: hBlocks, RF: 3}, 2*Second); r.Status != StatusOK {
		t.Fatalf("create after every host forgot: %v", r.Status)
	}
}
