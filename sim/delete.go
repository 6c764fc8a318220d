package sim

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/cairnstore/cairn/core"
)

// Deletion under faults. In a third of the mixed seeds (drawn from a stream of its own, so
// the other seeds run exactly as before) the operator creates one more volume, with no
// clients (the operator writes a few blocks to it, so its hosts have block files), and
// deletes it at a random time of the safety phase: the deletion meets crashes, partitions,
// pauses and leader changes. After healing, the delete must have been answered, no node
// may hold the volume or a block file of it any more, and the authority must have
// forgotten its tombstone (every host acknowledged). The volume's authority requests are not
// recorded in the configuration history: the model has no deletion.

const (
	deleteReq    = 1 << 41 // the operator's delete request id (+ volume)
	deleteRetry  = 300 * core.Millisecond
	doomedChance = 3 // one seed in doomedChance
)

// planDeletion draws whether this seed deletes a volume, and when.
func (w *world) planDeletion() {
	if w.o.Scenario != ScenarioMixed {
		return
	}
	r := core.NewRand(w.o.Seed ^ 0xde1e7ede1e7e)
	if r.Intn(doomedChance) != 0 {
		return
	}
	w.doomed = core.VolumeID(w.s.volumes + 1)
	rf := uint8(min(w.s.zones, 1+r.Intn(3)))
	at := between(r, 500*core.Millisecond, max(w.o.Duration-core.Second, core.Second))
	w.tracef("volume %d (RF %d) will be deleted at %.3fs", w.doomed, rf, float64(at)/1e9)
	create := &core.AuthRequest{Op: core.OpCreateVolume, ReqID: uint64(w.doomed), Vol: w.doomed, Blocks: 64, RF: rf}
	var tryCreate func()
	tryCreate = func() {
		if !w.created(w.doomed) {
			w.send(adminAddr, w.adminTo(), create)
			w.q.after(deleteRetry, tryCreate)
		}
	}
	w.q.after(0, tryCreate)
	// A write now and then until the delete, to the primary the authority last issued
	// (no retries: whichever land give the hosts block files to free).
	var write func()
	write = func() {
		if w.deletedAt != 0 || w.q.now >= at {
			return
		}
		if h := w.issued[w.doomed]; len(h) > 0 {
			c := h[len(h)-1].cfg
			w.doomedReq++
			w.send(adminAddr, c.Primary, &core.ClientWrite{Vol: w.doomed, Epoch: c.Epoch, Req: w.doomedReq, Block: w.doomedReq % 64,
				Data: bytes.Repeat([]byte{byte(w.doomedReq)}, core.BlockSize)})
		}
		w.q.after(100*core.Millisecond, write)
	}
	w.q.after(core.Second, write)
	del := &core.AuthRequest{Op: core.OpDeleteVolume, ReqID: deleteReq + uint64(w.doomed), Vol: w.doomed}
	var tryDelete func()
	tryDelete = func() {
		if w.deletedAt != 0 {
			return
		}
		if w.created(w.doomed) { // (a delete before the create would be answered NotFound)
			w.send(adminAddr, w.adminTo(), del)
		}
		w.q.after(deleteRetry, tryDelete)
	}
	w.q.at(at, tryDelete)
}

// deleteAnswered notes the operator's delete being answered.
func (w *world) deleteAnswered(r *core.AuthReply) {
	if w.doomed == 0 || r.ReqID != deleteReq+uint64(w.doomed) || w.deletedAt != 0 {
		return
	}
	w.deletedAt = w.q.now
	w.tracef("volume %d deleted (%v)", w.doomed, r.Status)
}

// checkDeletion: after healing, the deleted volume is gone everywhere.
func (w *world) checkDeletion() {
	if w.doomed == 0 {
		return
	}
	if w.deletedAt == 0 {
		w.stuck("the operator's delete of volume %d was never answered", w.doomed)
		return
	}
	for _, sn := range w.nodes {
		if sn.n == nil || !sn.up {
			continue
		}
		if sn.n.Hosts(w.doomed) {
			w.violation("node %d still holds volume %d, deleted at %.3fs", sn.addr, w.doomed, float64(w.deletedAt)/1e9)
		}
		if _, ok := sn.n.AuthorityConfig(w.doomed); ok {
			w.violation("authority member %d still holds deleted volume %d", sn.addr, w.doomed)
		}
		names, err := sn.disk.fs.List(dataDir + "/blocks")
		if err != nil {
			w.violation("node %d: list block files: %v", sn.addr, err)
		} else if slices.Contains(names, fmt.Sprintf("vol-%08d.dat", w.doomed)) {
			w.violation("node %d still has a block file of deleted volume %d", sn.addr, w.doomed)
		}
	}
	if w.lost != nil && w.lostKind == lostGone {
		return // a host gone for good (not removed) never forgets it: the tombstone stays
	}
	if l := w.authView(); l != nil && l.n.AuthorityDeleting(w.doomed) {
		w.stuck("the authority still waits for a host to forget deleted volume %d after the cluster healed", w.doomed)
	}
}
