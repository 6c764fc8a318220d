package sim

import (
	"slices"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/histories"
)

// Replica-host wipes (DESIGN 2.12, section 4): in half of the mixed seeds (drawn from a
// stream of their own, so the other seeds run as before), one to three times during the
// safety phase, a node that hosts replicas loses its disk, as an operator would find it: it
// crashes and comes back, after a while, on an empty disk with a new identity (and, when it
// is an authority member, rejoins the cell under a new identity too). The primary must
// count nothing the old disk acknowledged, shrink the node out, copy the whole volume to it
// and grow it back; the checks are Porcupine's, convergence, and full RF after healing.
//
// The fault keeps one intact copy of every acknowledged write at every step: it wipes a
// node only when, for every volume it hosts, it is not the primary (in the newest issued
// configuration), the primary is up on the disk recorded for it, and the node has no
// promotion request that may still win. At most one authority member is ever wiped.
const replicaWipeChance = 2 // one mixed seed in replicaWipeChance

func (w *world) scheduleReplicaWipes() {
	if w.o.Scenario != ScenarioMixed {
		return
	}
	r := core.NewRand(w.o.Seed ^ 0x3170_d15c_3170_d15c)
	if r.Intn(replicaWipeChance) != 0 {
		return
	}
	w.wipeR = r
	n := 1 + r.Intn(3)
	for range n {
		at := between(r, 1000, max(1001, w.o.Duration/core.Millisecond-1000)) * core.Millisecond
		w.q.at(at, func() {
			if w.phase == 0 {
				w.wipeReplica()
			}
		})
	}
}

func (w *world) wipeReplica() {
	var cands []*simNode
	for _, sn := range w.nodes {
		if sn.up && w.hostsReplica(sn.addr) && w.wipeSafe(sn) {
			cands = append(cands, sn)
		}
	}
	if len(cands) == 0 {
		return
	}
	sn := cands[w.wipeR.Intn(len(cands))]
	member := slices.Contains(w.authorities(), sn.addr)
	w.crash(sn)
	sn.disk = newDisk(w.wipeR.Uint64())
	sn.disk.fs.SetFaults(w.s.diskFaults)
	sn.wipes++
	sn.params.Disk = diskID(w.o.Seed, sn.addr, sn.wipes)
	if member {
		sn.params.Wiped = true
		w.memberWiped = true
	}
	if sn.params.Join {
		sn.params.Wiped = true // a joined node rejoins under its new disk, as an operator would start it
	}
	w.replicaWipes++
	w.mix('W', uint64(sn.addr), sn.params.Disk, nil)
	w.tracef("node %d: disk wiped (replica host; new disk %x)", sn.addr, sn.params.Disk)
	w.noteRebuilding()
	w.q.after(between(w.wipeR, 200, 2000)*core.Millisecond, func() { w.restart(sn) })
}

// hostsReplica: a in the newest configuration of some live volume.
func (w *world) hostsReplica(a core.Addr) bool {
	for v := range w.s.volumes {
		if h := w.issued[core.VolumeID(v+1)]; len(h) > 0 && h[len(h)-1].cfg.IsReplica(a) {
			return true
		}
	}
	return false
}

// hosted: the newest issued configuration of every volume a is a replica of (the deleted
// volume aside).
func (w *world) hosted(a core.Addr) []core.Config {
	var out []core.Config
	for v := range w.s.volumes + 1 {
		vol := core.VolumeID(v + 1)
		h := w.issued[vol]
		if len(h) == 0 || vol == w.doomed {
			continue
		}
		if cfg := h[len(h)-1].cfg; cfg.IsReplica(a) {
			out = append(out, cfg)
		}
	}
	return out
}

// wipeSafe: wiping sn's disk leaves an intact copy of every volume it hosts (see above).
func (w *world) wipeSafe(sn *simNode) bool {
	if slices.Contains(w.authorities(), sn.addr) && (w.memberWiped || w.wipes > 0) {
		return false // the cell survives one lost member disk, not two
	}
	for _, cfg := range w.hosted(sn.addr) {
		vol := cfg.Volume
		if cfg.Primary == sn.addr {
			return false
		}
		p := w.node(cfg.Primary)
		if p == nil || !p.up || p.params.Disk != cfg.DiskOf(cfg.Primary) {
			return false
		}
		if w.pendingChange(sn.addr, vol, cfg.Epoch) {
			return false // a change it asked for (a promotion) may still be applied
		}
	}
	return true
}

// pendingChange: a compare-and-set a asked for on vol, from epoch e or later, is not
// answered yet (it may still be applied).
func (w *world) pendingChange(a core.Addr, vol core.VolumeID, e core.Epoch) bool {
	for i, m := range w.cfgMeta {
		op := &w.cfgOps[i]
		if m.key.vol == vol && op.Unknown && op.Kind == histories.ConfigCAS && core.Addr(op.Client) == a && core.Epoch(op.FromEpoch) >= e {
			return true
		}
	}
	return false
}

// intact: a holds vol's replica on the disk the configuration records for it.
func (w *world) intact(cfg *core.Config, a core.Addr) bool {
	sn := w.node(a)
	return sn != nil && cfg.DiskOf(a) == sn.params.Disk
}

// countReMirror adds a catch-up message's data to the re-mirror bytes when it goes to a
// replica whose disk is not the one recorded for it (a wiped disk being rebuilt).
func (w *world) countReMirror(to core.Addr, vol core.VolumeID, blocks int) {
	h := w.issued[vol]
	if len(h) == 0 || w.intact(&h[len(h)-1].cfg, to) {
		return
	}
	w.reMirrorBytes += int64(blocks) * core.BlockSize
}

// noteReMirrors counts the replicas a new configuration records under a new disk: a
// wiped one rebuilt, or a new host grown in after its full copy.
func (w *world) noteReMirrors(prev, c *core.Config) {
	for _, r := range c.Replicas {
		if d, old := c.DiskOf(r), prev.DiskOf(r); d != 0 && d != old && (old != 0 || !prev.IsInSync(r)) {
			w.reMirrors++
			w.tracef("volume %d: replica %d re-mirrored onto disk %x", c.Volume, r, d)
		}
	}
}

// noteDegraded accumulates the time a volume runs with fewer in-sync replicas than its RF.
func (w *world) noteDegraded(c *core.Config) {
	since, degraded := w.degradedSince[c.Volume]
	switch {
	case len(c.InSync) < int(c.RF) && !degraded:
		w.degradedSince[c.Volume] = w.q.now
	case len(c.InSync) >= int(c.RF) && degraded:
		w.degradedNs += w.q.now - since
		delete(w.degradedSince, c.Volume)
	}
}

// degradedSeconds closes the open intervals at the end of the run.
func (w *world) degradedSeconds() float64 {
	ns := w.degradedNs
	for _, since := range w.degradedSince { // order-independent: a sum
		ns += w.q.now - since
	}
	return float64(ns) / 1e9
}

// noteRebuilding tracks the most replicas whose disk is not the recorded one at once.
func (w *world) noteRebuilding() {
	n := 0
	for vol, h := range w.issued { // order-independent: a count
		if len(h) == 0 || vol == w.doomed {
			continue
		}
		c := &h[len(h)-1].cfg
		for _, r := range c.Replicas {
			if !w.intact(c, r) && (c.DiskOf(r) != 0 || !c.IsInSync(r)) {
				n++ // (a wiped replica, or a new host not grown in yet)
			}
		}
	}
	w.maxReMirrors = max(w.maxReMirrors, n)
}
