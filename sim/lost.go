package sim

import (
	"fmt"
	"slices"

	"github.com/cairnstore/cairn/core"
)

// Nodes lost for good, removed and drained (DESIGN 2.13, section 4). In a third of the
// mixed seeds (drawn from a stream of their own, so the other seeds run as before), once
// during the safety phase, one of:
//   - a node stops for good (never restarted, not even by the healing): after ReplaceAfter
//     the authority drops its replicas, other nodes win the open slots and are copied;
//   - the same, and a little later the operator removes it (OpRemoveNode): at once;
//   - in half the seeds that lose a node, a fresh node then joins the running cluster in
//     the lost node's zone (Params.Join: no other node lists it) and takes slots;
//   - the operator drains a live node (OpDrainNode): each replica is copied elsewhere
//     first, then leaves (a primary hands over); the node stays up.
//
// The fault keeps an intact copy of every acknowledged write: a node is lost only if it
// is no authority member, every volume it hosts has another in-sync member on the disk
// recorded for it, and it has no configuration change of those volumes in flight (as the
// primary, a Shrink of the other copy would leave none: seed 10301878). After healing, every volume must be back to RF in-sync replicas (as
// many as distinct zones of staying live nodes allow), and a drained node must host
// nothing.
const (
	lostChance = 3       // one mixed seed in lostChance
	lostReq    = 1 << 42 // the operator's remove/drain request id
)

// Kinds of the node-loss fault.
const (
	lostGone = iota + 1
	lostRemoved
	lostDrained
)

// drawReplacement draws the seed's replacement timings (from a stream of their own).
func drawReplacement(s *shape, seed uint64) {
	r := core.NewRand(seed ^ 0x9e71_ace0_9e71_ace0)
	ms := core.Millisecond
	s.params.NodeBeat = pick[int64](r, 100, 250) * ms
	s.params.GrantTimeout = pick[int64](r, 2000, 4000) * ms
	s.params.ReplaceAfter = pick[int64](r, 3000, 6000, 60_000) * ms
	s.params.MaxReMirrors = pick(r, 1, 2, 4)
	// The node's copy rate: off, or low enough that answers are held back now and then (a
	// rate below the rate clients dirty blocks at would keep catch-up rounds from ever
	// converging: DESIGN 7).
	s.params.CopyRate = pick[int64](r, 0, 1<<20, 4<<20)
}

func (w *world) scheduleLoss() {
	if w.o.Scenario != ScenarioMixed {
		return
	}
	r := core.NewRand(w.o.Seed ^ 0x1057_1057_1057_1057)
	if r.Intn(lostChance) != 0 {
		return
	}
	kind := pick(r, lostGone, lostRemoved, lostDrained)
	if kind == lostGone && w.s.params.ReplaceAfter > 6*core.Second {
		kind = lostRemoved // (the run is too short to wait the replacement delay out)
	}
	at := between(r, 2000, max(2001, w.o.Duration/core.Millisecond-2000)) * core.Millisecond
	w.q.at(at, func() {
		if w.phase != 0 {
			return
		}
		var cands []*simNode
		for _, sn := range w.nodes {
			if w.lossSafe(sn, kind) {
				cands = append(cands, sn)
			}
		}
		if len(cands) == 0 {
			w.tracef("node loss: no node may be lost safely now")
			return
		}
		sn := cands[r.Intn(len(cands))]
		w.lost, w.lostKind = sn, kind
		w.mix('L', uint64(sn.addr), uint64(kind), nil)
		switch kind {
		case lostGone, lostRemoved:
			w.tracef("node %d lost for good", sn.addr)
			sn.gone = true
			w.crash(sn)
			if kind == lostRemoved {
				w.q.after(between(r, 0, 2000)*core.Millisecond, func() { w.operatorNodeOp(core.OpRemoveNode, sn.addr) })
			}
			if r.Intn(2) == 0 {
				w.q.after(between(r, 200, 3000)*core.Millisecond, func() { w.joinNode(sn.zone, r) })
			}
		case lostDrained:
			w.tracef("node %d drained", sn.addr)
			w.operatorNodeOp(core.OpDrainNode, sn.addr)
		}
	})
}

// joinNode starts a fresh node in zone that joins the running cluster (Params.Join): no
// other node lists it, the authority admits it and it takes open slots like any node.
func (w *world) joinNode(zone uint32, r *core.Rand) {
	tmpl := w.nodes[0].params
	p := w.s.params
	p.Self, p.Zone, p.Authorities, p.Nodes = core.Addr(len(w.nodes)+1), zone, tmpl.Authorities, tmpl.Nodes
	p.Join, p.Address = true, fmt.Sprintf("sim-node-%d:7000", p.Self)
	p.Disk = diskID(w.o.Seed, p.Self, 0)
	sn := &simNode{addr: p.Self, zone: zone, disk: newDisk(r.Uint64()), drift: between(r, -p.DriftPPM, p.DriftPPM),
		offset: between(r, -1000, 1000) * core.Millisecond, params: p,
		tick: max(2*core.Millisecond, min(p.HeartbeatInterval, p.RetransmitTimeout)/4)}
	sn.disk.fs.SetFaults(w.s.diskFaults)
	w.nodes = append(w.nodes, sn)
	w.joined = sn
	w.mix('J', uint64(sn.addr), uint64(zone), nil)
	w.tracef("node %d joins the cluster in zone %d", sn.addr, zone)
	w.startNode(sn)
}

// operatorNodeOp sends a remove or drain until it is answered.
func (w *world) operatorNodeOp(op core.AuthOp, x core.Addr) {
	req := &core.AuthRequest{Op: op, ReqID: lostReq, Node: x}
	var try func()
	try = func() {
		if w.lostAnswered {
			return
		}
		w.send(adminAddr, w.adminTo(), req)
		w.q.after(300*core.Millisecond, try)
	}
	try()
}

// lostAnswer notes the answer to the operator's remove or drain.
func (w *world) lostAnswer(r *core.AuthReply) bool {
	if r.ReqID != lostReq || w.lostAnswered {
		return r.ReqID == lostReq
	}
	w.lostAnswered, w.lostStatus = true, r.Status
	w.tracef("operator's %d of node %d answered %v", r.Op, w.lost.addr, r.Status)
	return true
}

// lossSafe: losing (or draining) sn leaves an intact in-sync copy of every volume.
func (w *world) lossSafe(sn *simNode, kind int) bool {
	if slices.Contains(w.authorities(), sn.addr) && kind != lostDrained {
		return false
	}
	if kind == lostDrained {
		return sn.up
	}
	for _, cfg := range w.hosted(sn.addr) {
		if !slices.ContainsFunc(cfg.InSync, func(r core.Addr) bool { return r != sn.addr && w.intact(&cfg, r) }) {
			return false
		}
		if w.pendingChange(sn.addr, cfg.Volume, cfg.Epoch) {
			// A change it asked for may still be applied: as the primary, a Shrink of the
			// other copy would leave the volume with none (seed 10301878).
			return false
		}
	}
	return true
}

// staying: a node that is up at the end and not lost, removed or drained.
func (w *world) staying(sn *simNode) bool {
	return sn.up && !sn.gone && (w.lost != sn || w.lostKind != lostDrained || w.lostStatus != core.StatusOK)
}

// checkFullRF: after healing, every volume is back to RF in-sync replicas on the disks
// recorded for them (as many as the distinct zones of staying nodes allow), every replica
// on a staying node is in sync, and a drained node hosts nothing.
func (w *world) checkFullRF() {
	auth := w.authView()
	if auth == nil {
		return
	}
	if w.lost != nil && w.lostKind != lostGone && !w.lostAnswered {
		w.stuck("the operator's remove or drain of node %d was never answered", w.lost.addr)
	}
	if j := w.joined; j != nil && j.up && !slices.ContainsFunc(auth.n.AuthorityNodes(), func(e core.NodeEntry) bool { return e.Node == j.addr }) {
		w.stuck("node %d joined but the authority does not list it", j.addr)
	}
	var zones []uint32
	for _, sn := range w.nodes {
		if w.staying(sn) && !slices.Contains(zones, sn.zone) {
			zones = append(zones, sn.zone)
		}
	}
	for v := range w.s.volumes {
		vol := core.VolumeID(v + 1)
		cfg, ok := auth.n.AuthorityConfig(vol)
		if !ok {
			continue
		}
		good := 0
		for _, r := range cfg.Replicas {
			sn := w.node(r)
			switch {
			case sn.up && !w.staying(sn):
				w.stuck("volume %d: drained node %d still hosts a replica after healing: %v", vol, r, cfg)
			case sn.up && (!cfg.IsInSync(r) || !w.intact(&cfg, r)):
				w.stuck("volume %d: replica %d not back in sync after healing (disk %x, recorded %x): %v", vol, r,
					sn.params.Disk, cfg.DiskOf(r), cfg)
			case sn.up:
				good++
			}
		}
		if want := min(int(cfg.RF), len(zones)); good < want {
			w.stuck("volume %d: %d intact in-sync replicas after healing, want %d: %v", vol, good, want, cfg)
		}
	}
}

// checkSlots: no configuration has more replicas than its RF, but for one on a node
// being drained or removed (its replacement is copied before it leaves): else a slot
// was granted twice.
func (w *world) checkSlots(c *core.Config) {
	n := len(c.Replicas)
	if w.lost != nil && w.lostKind != lostGone && c.IsReplica(w.lost.addr) {
		n-- // (the operator's request may be applied before its answer arrives)
	}
	if n > int(c.RF) {
		w.violation("volume %d: more replicas than its RF %d (a slot granted twice?): %v", c.Volume, c.RF, c)
	}
}
