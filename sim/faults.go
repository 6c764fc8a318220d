package sim

import (
	"fmt"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/storage"
)

// Fault injection during the safety phase. Each kind fires at random intervals around
// its mean; at most maxFaults are active at once (bounded faults), and each heals
// itself after a random duration. The liveness phase heals everything.
func (w *world) scheduleFaults() {
	ms := core.Millisecond
	w.every(w.s.crashEvery, func() int64 {
		sn := w.pickNode(func(sn *simNode) bool { return sn.up })
		if sn == nil {
			return 0
		}
		w.crashes++
		w.crash(sn)
		return between(w.fltR, 100, 3000) * ms
	}, func(sn *simNode) { w.restart(sn) })
	w.every(w.s.pauseEvery, func() int64 {
		sn := w.pickNode(func(sn *simNode) bool { return sn.up && !sn.paused })
		if sn == nil {
			return 0
		}
		w.pauses++
		w.pause(sn)
		// Up to several lease lengths: the lease must hold through a stop-the-world pause.
		return between(w.fltR, w.s.params.Lease/4, 3*w.s.params.Lease)
	}, func(sn *simNode) { w.resume(sn) })
	w.every(w.s.bitrotEvery, func() int64 {
		w.bitrot()
		return 0
	}, nil)
	w.every(w.s.fullEvery, func() int64 {
		sn := w.pickNode(func(sn *simNode) bool { return true })
		f := sn.disk.fs.Faults()
		f.CapacityBytes = sn.disk.fs.Used() + w.fltR.Int63n(64<<10)
		sn.disk.fs.SetFaults(f)
		w.diskFulls++
		w.tracef("node %d disk full (capacity %d)", sn.addr, f.CapacityBytes)
		return between(w.fltR, 200, 2000) * core.Millisecond
	}, func(sn *simNode) {
		f := sn.disk.fs.Faults()
		f.CapacityBytes = 0
		sn.disk.fs.SetFaults(f)
	})
	if w.s.wipeAt > 0 {
		w.q.at(w.s.wipeAt, func() {
			if w.phase == 0 {
				w.wipeMember()
			}
		})
	}
	w.every(w.s.partitionEvery, func() int64 {
		w.partitions++
		return w.partition()
	}, nil)
}

// every schedules fault f around every mean; f returns how long the fault lasts (0: none).
func (w *world) every(mean int64, f func() int64, heal func(*simNode)) {
	if mean <= 0 {
		return
	}
	var fire func()
	fire = func() {
		if w.phase != 0 {
			return
		}
		w.q.after(mean/2+w.fltR.Int63n(mean), fire)
		if w.activeFaults >= w.s.maxFaults {
			return
		}
		w.lastPicked = nil
		d := f()
		if d <= 0 {
			return
		}
		w.activeFaults++
		sn := w.lastPicked
		w.q.after(d, func() {
			w.activeFaults--
			if heal != nil && sn != nil {
				heal(sn)
			}
		})
	}
	w.q.after(mean/2+w.fltR.Int63n(mean), fire)
}

func (w *world) pickNode(ok func(*simNode) bool) *simNode {
	var c []*simNode
	for _, sn := range w.nodes {
		if ok(sn) {
			c = append(c, sn)
		}
	}
	if len(c) == 0 {
		return nil
	}
	w.lastPicked = c[w.fltR.Intn(len(c))]
	return w.lastPicked
}

func (w *world) cutLink(a, b core.Addr, d int64) {
	k := [2]core.Addr{a, b}
	w.cut[k]++
	w.q.after(d, func() {
		if w.cut[k] > 0 {
			w.cut[k]--
		}
	})
}

// partition cuts links between storage nodes: a whole node, one direction of one
// link, one link both ways, or a whole zone.
func (w *world) partition() int64 {
	d := between(w.fltR, 200, 5000) * core.Millisecond
	n := len(w.nodes)
	a := w.nodes[w.fltR.Intn(n)]
	b := w.nodes[w.fltR.Intn(n)]
	switch w.fltR.Intn(4) {
	case 0: // isolate a node
		for _, o := range w.nodes {
			if o != a {
				w.cutLink(a.addr, o.addr, d)
				w.cutLink(o.addr, a.addr, d)
			}
		}
		w.tracef("partition: isolate node %d for %dms", a.addr, d/core.Millisecond)
	case 1: // asymmetric
		if a == b {
			return 0
		}
		w.cutLink(a.addr, b.addr, d)
		w.tracef("partition: cut %d -> %d for %dms", a.addr, b.addr, d/core.Millisecond)
	case 2: // single link
		if a == b {
			return 0
		}
		w.cutLink(a.addr, b.addr, d)
		w.cutLink(b.addr, a.addr, d)
		w.tracef("partition: cut %d <-> %d for %dms", a.addr, b.addr, d/core.Millisecond)
	case 3: // zone isolation
		for _, x := range w.nodes {
			for _, y := range w.nodes {
				if x.zone == a.zone && y.zone != a.zone {
					w.cutLink(x.addr, y.addr, d)
					w.cutLink(y.addr, x.addr, d)
				}
			}
		}
		w.tracef("partition: isolate zone %d for %dms", a.zone, d/core.Millisecond)
	}
	return d
}

// healAll ends every fault: links restored, disks healthy, paused nodes resumed,
// crashed nodes restarted.
func (w *world) healAll() {
	clear(w.cut)
	for _, sn := range w.nodes {
		sn.disk.fs.SetFaults(storage.MemFaults{})
	}
	for _, sn := range w.nodes {
		if !sn.up {
			w.restart(sn)
		} else if sn.paused {
			w.resume(sn)
		}
	}
}

// bitrot flips one bit of a block file on a random node: persistent media corruption that
// the block's checksum must catch and a replica must repair. It strikes only a node that is
// in the in-sync set, with another member, of every volume it hosts: corruption of a
// block's only intact copy is reported (reads fail with an I/O error) but cannot be
// repaired, which the checks would count against the system.
func (w *world) bitrot() {
	sn := w.pickNode(func(sn *simNode) bool { return w.repairable(sn.addr) })
	if sn == nil {
		return
	}
	names, err := sn.disk.fs.List(dataDir + "/blocks")
	if err != nil || len(names) == 0 {
		return
	}
	name := dataDir + "/blocks/" + names[w.fltR.Intn(len(names))]
	f, err := sn.disk.fs.Open(name)
	if err != nil {
		return
	}
	size, err := f.Size()
	f.Close()
	if err != nil || size == 0 {
		return
	}
	off := w.fltR.Int63n(size)
	if err := sn.disk.fs.CorruptByte(name, off); err != nil {
		w.violation("bitrot: %v", fmt.Errorf("corrupt %s: %w", name, err))
		return
	}
	w.bitrots++
	w.tracef("node %d bit rot in %s at %d", sn.addr, name, off)
}

func (w *world) repairable(a core.Addr) bool {
	auth := w.nodes[0].n
	if auth == nil {
		return false
	}
	for v := 0; v < w.s.volumes; v++ {
		cfg, ok := auth.AuthorityConfig(core.VolumeID(v + 1))
		if !ok {
			return false
		}
		if !cfg.IsReplica(a) {
			continue
		}
		intact := 0 // other in-sync members on their recorded disk: one of them can repair
		for _, m := range cfg.InSync {
			if m != a && w.intact(&cfg, m) {
				intact++
			}
		}
		if !cfg.IsInSync(a) || intact == 0 {
			return false
		}
	}
	return true
}

// diskID is the identity of node a's disk after it was wiped `wipes` times: fixed by the
// seed, drawn from no stream (so adding wipes shifts no other draw), never 0.
func diskID(seed uint64, a core.Addr, wipes int) uint64 {
	return core.NewRand(seed^uint64(a)<<32^uint64(wipes)<<48^0x6469736b).Uint64() | 1
}

// wipeMember loses an authority member's disk: the node crashes, comes back with an
// empty disk and Params.Wiped, and must rejoin the cell under a new identity. Only a
// member that hosts no replica is wiped: rebuilding a replica from nothing is the
// replacement path (RequestHost), not this fault's subject.
func (w *world) wipeMember() {
	var cands []*simNode
	for _, a := range w.authorities() {
		sn := w.node(a)
		hosts := false
		for v := range w.s.volumes {
			if h := w.issued[core.VolumeID(v+1)]; len(h) > 0 && h[len(h)-1].cfg.IsReplica(a) {
				hosts = true
			}
		}
		if sn.up && !hosts {
			cands = append(cands, sn)
		}
	}
	if len(cands) == 0 || w.memberWiped {
		return // (a replica-host wipe already took a member's disk: the cell survives one)
	}
	sn := cands[w.fltR.Intn(len(cands))]
	w.wipes++
	w.crash(sn)
	sn.disk = newDisk(w.seedR.Uint64())
	sn.disk.fs.SetFaults(w.s.diskFaults)
	sn.params.Wiped = true
	sn.wipes++
	sn.params.Disk = diskID(w.o.Seed, sn.addr, sn.wipes)
	w.tracef("node %d: disk wiped", sn.addr)
	w.q.after(between(w.fltR, 200, 2000)*core.Millisecond, func() { w.restart(sn) })
}
