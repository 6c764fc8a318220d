package core

import "fmt"

// The storage node's side of replacement (DESIGN 2.13): it beats to the authority, and
// asks for the open replica slots the leader offers in its answers (or, on a leaving
// node, hands over the volumes it is primary of). The first node whose
// request is applied wins the slot, learns the new configuration (naming it a replica, not
// in sync) and creates an empty replica; the primary copies the volume to it.

// beat tells the authority this node is alive (every NodeBeat).
func (n *Node) beat() {
	if n.lastBeat != 0 && n.now-n.lastBeat < n.p.NodeBeat {
		return
	}
	n.lastBeat = n.now
	n.authReqID++
	if n.p.Join && !n.joined {
		n.send(n.authTo(), &AuthRequest{Op: OpJoinNode, ReqID: n.authReqID, Node: n.p.Self, Disk: n.p.Disk, Zone: n.p.Zone,
			Address: n.p.Address, Wiped: n.p.Wiped})
		return
	}
	n.send(n.authTo(), &AuthRequest{Op: OpNodeBeat, ReqID: n.authReqID, Node: n.p.Self, Disk: n.p.Disk})
}

// onJoinReply: admitted, we beat from now on; refused, we cannot go on.
func (n *Node) onJoinReply(r *AuthReply) {
	switch r.Status {
	case StatusOK:
		if !n.joined {
			n.joined, n.lastBeat = true, 0
			n.beat()
		}
	case StatusConflict:
		n.fatal(fmt.Errorf("core: join refused: node id %d is in use in this cluster (listed at its start, removed, or joined with another disk, zone or address): pick another --id, or, if this node lost its disk, start it again with --wiped", n.p.Self))
	case StatusInvalid:
		n.fatal(fmt.Errorf("core: join refused: the authority found the request invalid (address %q, zone %d)", n.p.Address, n.p.Zone))
	}
}

// learnPeers passes the addresses of joined nodes we did not know to the driver.
func (n *Node) learnPeers(nodes []NodeEntry) {
	for _, e := range nodes {
		if e.Address == "" || e.Node == n.p.Self || n.peersSeen[e.Node] == e.Address || len(n.peersSeen) >= MaxNodes {
			continue
		}
		n.peersSeen[e.Node] = e.Address
		n.out.Peers = append(n.out.Peers, e)
	}
}

// onBeatReply asks for the open slots offered (at most maxInvites; each volume at most
// once per three retransmit timeouts).
func (n *Node) onBeatReply(r *AuthReply) {
	n.learnPeers(r.Nodes)
	for id, at := range n.hostAsked { // order-independent: only deletes
		if n.now-at >= 3*n.p.RetransmitTimeout {
			delete(n.hostAsked, id)
		}
	}
	for i := range r.List {
		if i >= maxInvites {
			break
		}
		c := &r.List[i].Config
		if v := n.vols[c.Volume]; v != nil && v.prim != nil && c.Primary == n.p.Self && v.cfg.Epoch == c.Epoch {
			n.handOver(v)
			continue
		}
		if n.vols[c.Volume] != nil || c.check() != nil {
			continue
		}
		if t, ok := n.tombs[c.Volume]; ok && !t.durable {
			continue // still forgetting an earlier replica of it (the grant's epoch is above the tombstone's)
		}
		if _, asked := n.hostAsked[c.Volume]; asked {
			continue
		}
		n.hostAsked[c.Volume] = n.now
		n.authReqID++
		n.send(n.authTo(), &AuthRequest{Op: OpRequestHost, ReqID: n.authReqID, Vol: c.Volume, FromEpoch: c.Epoch, Node: n.p.Self,
			Disk: n.p.Disk})
	}
}

// handOver: our node is leaving and the authority says the volume can spare us as its
// primary. We stop serving first, then ask; the authority picks the member that takes over.
func (n *Node) handOver(v *volume) {
	p := v.prim
	if p.renewing || p.authOp != 0 {
		return // (asked again at a later beat)
	}
	p.handingOver = true
	n.sendAuth(v, OpHandover, 0)
}

// copyBudget takes blocks block images from the node's copy budget (Params.CopyRate, a
// token bucket in bytes holding a tenth of a second's worth, and at least two full
// catch-up messages), or reports that they must wait.
func (n *Node) copyBudget(blocks int) bool {
	if n.p.CopyRate == 0 || blocks == 0 {
		return true
	}
	burst := max(2*int64(n.p.MaxSyncBlocks)*BlockSize, n.p.CopyRate/10)
	if n.copyAt == 0 {
		n.copyTokens = burst
	} else if n.now > n.copyAt {
		// (Whole seconds and the remainder apart: no overflow for any rate.)
		d := n.now - n.copyAt
		n.copyTokens = min(burst, n.copyTokens+d/Second*n.p.CopyRate+d%Second*n.p.CopyRate/Second)
	}
	n.copyAt = max(n.copyAt, n.now)
	need := int64(blocks) * BlockSize
	if n.copyTokens < need {
		n.copyWaits++
		return false
	}
	n.copyTokens -= need
	return true
}
