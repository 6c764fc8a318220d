package core

import (
	"fmt"
	"slices"
)

// Deleting a volume at its hosts. The authority removes the volume from its table and
// pushes a tombstone (ConfigPush with Deleted: the epoch after the volume's last one) to
// every host, retried until acknowledged and pushed again by a new leader. A host that
// learns of the deletion stops serving at once (clients get StatusNotFound), forgets the
// volume's state, journals the deletion and, once that record is durable, frees the
// volume's blocks and acknowledges. It remembers the tombstone, so nothing of the volume
// (a late heartbeat of a primary that has not heard yet, a late push) brings it back; a
// configuration with a higher epoch is a new volume under the same id (the authority
// creates new volumes above every tombstone epoch). Once every host has acknowledged, the
// authority forgets the tombstone and the id may be created again.

type hostTomb struct {
	epoch   Epoch
	durable bool // its record is durable (the volume's blocks are freed)
}

// maxHostTombs bounds the tombstones a node keeps (oldest forgotten first). Forgetting one
// only matters if a message of that volume, older than thousands of later deletions on
// this node, were still in flight.
const maxHostTombs = 4096

func (n *Node) setTomb(vol VolumeID, epoch Epoch, durable bool) {
	if _, ok := n.tombs[vol]; !ok {
		n.tombOrder = append(n.tombOrder, vol)
	}
	n.tombs[vol] = hostTomb{epoch: epoch, durable: durable}
	for i := 0; len(n.tombOrder) > maxHostTombs && i < len(n.tombOrder); {
		if id := n.tombOrder[i]; n.tombs[id].durable && id != vol {
			n.dropTomb(id)
			continue
		}
		i++
	}
}

func (n *Node) dropTomb(vol VolumeID) {
	if _, ok := n.tombs[vol]; !ok {
		return
	}
	delete(n.tombs, vol)
	if i := slices.Index(n.tombOrder, vol); i >= 0 {
		n.tombOrder = slices.Delete(n.tombOrder, i, i+1)
	}
}

// Deleted reports whether this node holds a tombstone for vol (for drivers and tests).
func (n *Node) Deleted(vol VolumeID) bool {
	_, ok := n.tombs[vol]
	return ok
}

// Hosts reports whether this node holds a replica of vol (for drivers and tests).
func (n *Node) Hosts(vol VolumeID) bool { return n.vols[vol] != nil }

// onDeletePush: the authority says vol was deleted (tomb.Epoch is the tombstone's epoch).
func (n *Node) onDeletePush(from Addr, tomb Config) {
	vol, epoch := tomb.Volume, tomb.Epoch
	if t, ok := n.tombs[vol]; ok && t.epoch >= epoch {
		if t.durable {
			n.send(from, &ConfigPushAck{Vol: vol, Epoch: t.epoch})
		}
		return // (still being journaled: the authority asks again)
	}
	if v := n.vols[vol]; v != nil {
		if v.cfg.Epoch >= epoch {
			// A late copy of an earlier volume's tombstone: this one was created after it
			// (above every tombstone epoch). Nothing to do, nothing to acknowledge.
			return
		}
		n.answerWaiting(v, StatusNotFound, nil)
		n.forgetVolume(v)
	}
	n.deleteLocal(vol, epoch, func() { n.send(from, &ConfigPushAck{Vol: vol, Epoch: epoch}) })
}

// deleteLocal forgets this node's replica of vol at tombstone epoch: it journals the
// deletion, frees the blocks once the record is durable, then calls done.
func (n *Node) deleteLocal(vol VolumeID, epoch Epoch, done func()) {
	n.setTomb(vol, epoch, false)
	n.deleting++
	n.append(encodeRecDelete(vol, epoch), func() {
		n.deleting--
		// Every earlier append of the volume completed before this one (in order), and
		// their completions skip a forgotten volume: nothing writes its blocks again.
		if err := n.st.DeleteVolume(vol); err != nil {
			n.fatal(fmt.Errorf("core: delete volume %d: %w", vol, err))
			return
		}
		if t, ok := n.tombs[vol]; ok && t.epoch == epoch {
			n.tombs[vol] = hostTomb{epoch: epoch, durable: true}
		}
		if done != nil {
			done()
		}
	})
}

// leaveVolume: the authority took this node's replica out of the volume (replaced, or
// moved off a draining or removed node; DESIGN 2.13). Waiting clients are sent to the
// new configuration's primary, and the replica is forgotten like a deletion at cfg's
// epoch: a later configuration naming this node again is a new replica, copied in full.
func (n *Node) leaveVolume(v *volume, cfg Config) {
	n.answerWaiting(v, StatusNotPrimary, &cfg)
	n.forgetVolume(v)
	n.deleteLocal(cfg.Volume, cfg.Epoch, nil)
}

// answerWaiting answers every client waiting on the volume with st: NotFound (deleted),
// or NotPrimary with cfg (this node left the volume).
func (n *Node) answerWaiting(v *volume, st Status, cfg *Config) {
	nf := func(to Addr, client, req uint64) {
		r := &ClientReply{Vol: v.cfg.Volume, Client: client, Req: req, Status: st}
		if cfg != nil {
			r.HasConfig, r.Config = true, cfg.Clone()
		}
		n.send(to, r)
	}
	for _, r := range v.q.queue {
		nf(r.from, r.client, r.req)
	}
	p := v.prim
	if p == nil {
		return
	}
	var lsns []LSN
	for l := range p.waiters { // order-independent: sorted below
		lsns = append(lsns, l)
	}
	slices.Sort(lsns)
	for _, l := range lsns {
		for _, w := range p.waiters[l] {
			nf(w.to, w.client, w.req)
		}
	}
	for _, f := range p.flushes {
		nf(f.w.to, f.w.client, f.w.req)
	}
	for _, w := range p.acks {
		nf(w.to, w.client, w.req)
	}
}

// forgetVolume drops a volume's in-memory state; callbacks still pending for it see
// v.deleted and do nothing.
func (n *Node) forgetVolume(v *volume) {
	v.deleted = true
	v.prim = nil
	v.unapplied, v.early, v.repairs = nil, nil, nil
	v.q = volQoS{peerCredits: -1}
	id := v.cfg.Volume
	delete(n.vols, id)
	if i, ok := slices.BinarySearch(n.volIDs, id); ok {
		n.volIDs = slices.Delete(n.volIDs, i, i+1)
	}
}
