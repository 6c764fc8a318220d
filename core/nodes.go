package core

import (
	"cmp"
	"slices"
)

// The authority's node table and replacement by optimistic permission (DESIGN 2.13).
//
// Replicated (changed only by applying the cell's log): each node's administrative state,
// draining or removed (absent: up). Volatile, at the leader: when each node's last beat
// (OpNodeBeat) arrived. A new leader counts every node as heard when it took over, so it
// replaces nothing before a full ReplaceAfter of its own.
//
// The leader repairs volumes from its tick, each change a compare-and-set through the log:
//   - a replica on a removed node, on a draining node once the volume has RF in-sync
//     copies elsewhere, or out of the in-sync set on a node silent past ReplaceAfter is
//     dropped (opDropReplica). An in-sync replica is never dropped for silence: its
//     primary, which sees it directly, shrinks it out first if it is really gone (a node
//     cut off from the leader alone still holds and takes the data, and may be the last
//     copy: seeds 9500392, 10201202);
//     a replica that never held data (no disk recorded, not in sync: a grant's holder) is
//     dropped after GrantTimeout of silence, so a grant whose holder died opens again;
//   - a primary on a removed or draining node hands over to an in-sync member once the
//     volume can spare it: the leader lists the volume in its answer to the primary's
//     beat; the primary stops serving (no acknowledgement, no read) and asks OpHandover,
//     so no write completes at its epoch once the next one is issued;
//   - a volume with fewer than RF replicas on staying nodes has an open slot: the leader
//     lists it in its answers to beats from eligible nodes (a zone the volume does not
//     use, up, staying), riskiest first (fewest in-sync copies), and only while fewer
//     than MaxReMirrors volumes are being copied cluster-wide (the storm guard). Each
//     eligible node asks OpRequestHost; the first applied wins, joins the replicas (not in
//     sync), the primary copies the whole volume to it and grows it into the in-sync set.

// joinedNode is a node that joined the running cluster (OpJoinNode; replicated).
type joinedNode struct {
	addr    Addr
	zone    uint32
	disk    uint64
	address string
}

// allNodes: the nodes listed at the cluster's start (Params.Nodes, the same on every
// member) and those that joined since.
func (a *authority) allNodes() []NodeInfo {
	out := slices.Clone(a.n.p.Nodes)
	for _, j := range a.joined {
		out = append(out, NodeInfo{Addr: j.addr, Zone: j.zone})
	}
	return out
}

// joinedIndex finds x among the joined nodes.
func (a *authority) joinedIndex(x Addr) (int, bool) {
	return slices.BinarySearchFunc(a.joined, x, func(j joinedNode, x Addr) int { return cmp.Compare(j.addr, x) })
}

// peerList is the joined nodes with their addresses (every node learns them from the
// answers to its beats, so it can reach them).
func (a *authority) peerList() []NodeEntry {
	var out []NodeEntry
	for _, j := range a.joined {
		out = append(out, NodeEntry{Node: j.addr, Zone: j.zone, State: a.nodeState(j.addr), Disk: j.disk, Address: j.address})
	}
	return out
}

// beat is the leader's record of a node's last beat.
type beat struct {
	at   int64
	disk uint64
}

// downAfter: a node silent this long is shown down (its replicas stay until ReplaceAfter).
func (a *authority) downAfter() int64 { return 5 * a.n.p.NodeBeat }

// nodeState is a node's replicated administrative state (NodeUp if not recorded).
func (a *authority) nodeState(x Addr) uint8 {
	if s, ok := a.states[x]; ok {
		return s
	}
	return NodeUp
}

// leaving: the node is removed or draining: its replicas are moved off and it hosts
// nothing new.
func (a *authority) leaving(x Addr) bool {
	s := a.nodeState(x)
	return s == NodeRemoved || s == NodeDraining
}

func (a *authority) zoneOf(x Addr) (uint32, bool) {
	for _, ni := range a.n.p.Nodes {
		if ni.Addr == x {
			return ni.Zone, true
		}
	}
	if i, ok := a.joinedIndex(x); ok {
		return a.joined[i].zone, true
	}
	return 0, false
}

// silent is how long the leader has not heard a beat from x.
func (a *authority) silent(x Addr) int64 {
	b, ok := a.beats[x]
	if !ok {
		return 0 // not known to this leader's table: never replaced on silence alone
	}
	return a.n.now - b.at
}

// staying counts c's replicas on nodes that are not leaving, and those of them in sync.
func (a *authority) staying(c *Config) (replicas, inSync int) {
	for _, r := range c.Replicas {
		if !a.leaving(r) {
			replicas++
			if c.IsInSync(r) {
				inSync++
			}
		}
	}
	return replicas, inSync
}

// zoneFreeFor: x is known, and no replica of c on a staying node shares its zone.
func (a *authority) zoneFreeFor(c *Config, x Addr) bool {
	z, ok := a.zoneOf(x)
	if !ok {
		return false
	}
	for _, r := range c.Replicas {
		if rz, _ := a.zoneOf(r); rz == z && !a.leaving(r) {
			return false
		}
	}
	return true
}

// rebuilding: some replica of c on a staying node is not in sync (a copy in progress).
func (a *authority) rebuilding(c *Config) bool {
	for _, r := range c.Replicas {
		if !c.IsInSync(r) && !a.leaving(r) {
			return true
		}
	}
	return false
}

// startLeading resets the volatile node table when this member becomes leader.
func (a *authority) startLeading() {
	clear(a.beats)
	for _, ni := range a.allNodes() {
		a.beats[ni.Addr] = beat{at: a.n.now}
	}
	clear(a.repairAt)
}

// onBeat records a node's beat and answers it with the open slots it may take.
func (a *authority) onBeat(from Addr, r *AuthRequest) {
	if _, ok := a.zoneOf(from); !ok || r.Node != from {
		a.n.send(from, &AuthReply{Op: r.Op, ReqID: r.ReqID, Status: StatusInvalid})
		return
	}
	a.beats[from] = beat{at: a.n.now, disk: r.Disk}
	a.n.send(from, &AuthReply{Op: r.Op, ReqID: r.ReqID, Status: StatusOK, List: a.openSlots(from), Nodes: a.peerList()})
}

// maxInvites bounds the open slots one beat's answer offers.
const maxInvites = 4

// openSlots lists the volumes with an open slot node x may take, riskiest first, within
// the cluster-wide re-mirror cap; to a leaving node, the volumes it should hand over.
func (a *authority) openSlots(x Addr) []VolumeEntry {
	if a.leaving(x) {
		var out []VolumeEntry
		for _, id := range a.ids {
			if c := a.configs[id]; c.Primary == x && a.handoverTarget(c) != 0 && len(out) < maxInvites {
				out = append(out, VolumeEntry{Config: c.Clone()})
			}
		}
		return out
	}
	busy := 0
	var open []*Config
	for _, id := range a.ids {
		c := a.configs[id]
		if a.rebuilding(c) {
			busy++
			continue
		}
		if reps, _ := a.staying(c); reps < int(c.RF) && !c.IsReplica(x) && a.zoneFreeFor(c, x) {
			open = append(open, c)
		}
	}
	room := a.n.p.MaxReMirrors - busy
	if room <= 0 || len(open) == 0 {
		return nil
	}
	slices.SortStableFunc(open, func(p, q *Config) int {
		_, pi := a.staying(p)
		_, qi := a.staying(q)
		return cmp.Compare(pi, qi)
	})
	var out []VolumeEntry
	for _, c := range open[:min(len(open), room, maxInvites)] {
		out = append(out, VolumeEntry{Config: c.Clone()})
	}
	return out
}

// maxRepairsPerTick bounds the changes the leader proposes per tick.
const maxRepairsPerTick = 16

// repair proposes, for each volume, the next change replacement needs (leader, from tick).
func (a *authority) repair() {
	proposed := 0
	for _, id := range a.ids {
		if proposed >= maxRepairsPerTick {
			return
		}
		c := a.configs[id]
		if at, ok := a.repairAt[id]; ok && a.n.now-at < 3*a.n.p.RetransmitTimeout {
			continue // the last proposal may still be on its way through the log
		}
		op, target := a.repairOf(c)
		if op == 0 {
			continue
		}
		a.repairAt[id] = a.n.now
		a.n.authReqID++
		cmd := &authCmd{from: a.n.p.Self, now: a.n.now, req: AuthRequest{Op: op, ReqID: a.n.authReqID, Vol: id, FromEpoch: c.Epoch, Node: target}}
		a.cell.proposeInternal(encodeAuthCmd(cmd))
		proposed++
	}
}

// repairOf picks the change c needs now, if any.
func (a *authority) repairOf(c *Config) (AuthOp, Addr) {
	rf := int(c.RF)
	_, inSync := a.staying(c)
	for _, r := range c.Replicas {
		if r == c.Primary {
			continue
		}
		st, quiet := a.nodeState(r), a.silent(r)
		switch {
		case st == NodeRemoved,
			st == NodeDraining && inSync >= rf,
			quiet > a.n.p.ReplaceAfter && !c.IsInSync(r),
			!c.IsInSync(r) && c.DiskOf(r) == 0 && quiet > a.n.p.GrantTimeout:
			return opDropReplica, r
		}
	}
	return 0, 0
}

// canSpare: c's primary is leaving and the volume can do without it: RF in-sync replicas
// on staying nodes (draining), or one (removed: it is gone anyway).
func (a *authority) canSpare(c *Config) bool {
	_, inSync := a.staying(c)
	return a.leaving(c.Primary) && (inSync >= int(c.RF) || a.nodeState(c.Primary) == NodeRemoved && inSync >= 1)
}

// handoverTarget: the in-sync member of c that takes over from a leaving primary, once
// the volume can spare the primary (0: not yet, or none is fit).
func (a *authority) handoverTarget(c *Config) Addr {
	p := c.Primary
	if !a.canSpare(c) {
		return 0
	}
	for _, r := range c.InSync {
		if r != p && !a.leaving(r) && c.DiskOf(r) != 0 && a.silent(r) < a.downAfter() {
			return r
		}
	}
	return 0
}

// decideNode decides the node-table and replacement ops (see decide).
func (a *authority) decideNode(cmd *authCmd, cur *Config) outcome {
	r := &cmd.req
	no := func(st Status, c Config) outcome { return outcome{st: st, cfg: c, name: a.names[c.Volume]} }
	switch r.Op {
	case OpJoinNode:
		return a.decideJoin(cmd)
	case OpRemoveNode, OpDrainNode:
		if _, ok := a.zoneOf(r.Node); !ok {
			return no(StatusNotFound, Config{})
		}
		want := NodeRemoved
		if r.Op == OpDrainNode {
			want = NodeDraining
		}
		s := a.nodeState(r.Node)
		if s == want || s == NodeRemoved {
			return no(StatusOK, Config{}) // already so (a removed node is never drained)
		}
		if !a.canLeave(r.Node) {
			return no(StatusConflict, Config{})
		}
		return outcome{st: StatusOK, node: r.Node, state: want, setNode: true}
	}
	if cur == nil {
		return no(StatusNotFound, Config{Volume: r.Vol})
	}
	c := cur.Clone()
	switch r.Op {
	case OpRequestHost:
		reps, _ := a.staying(&c)
		if a.leaving(r.Node) || cmd.from != r.Node || r.Disk == 0 {
			return no(StatusInvalid, c)
		}
		if reps >= int(c.RF) || c.IsReplica(r.Node) || !a.zoneFreeFor(&c, r.Node) || r.FromEpoch != c.Epoch {
			return no(StatusConflict, c) // the slot was taken (the first asker won), or closed
		}
		c.addReplica(r.Node)
	case opDropReplica:
		if r.FromEpoch != c.Epoch || !c.IsReplica(r.Node) || r.Node == c.Primary {
			return no(StatusConflict, c)
		}
		c.dropReplica(r.Node)
	case OpHandover:
		t := Addr(0)
		if len(cmd.placement) == 1 {
			t = cmd.placement[0]
		}
		if cmd.from != c.Primary || r.FromEpoch != c.Epoch || t == c.Primary || !c.IsInSync(t) || a.leaving(t) || c.DiskOf(t) == 0 ||
			!a.canSpare(&c) {
			return no(StatusConflict, c)
		}
		c.InSync = removeSorted(c.InSync, c.Primary)
		c.Primary = t
	default:
		return no(StatusInvalid, c)
	}
	o := a.change(cur, c)
	if r.Op == opDropReplica && o.set {
		o.dropped = r.Node
	}
	return o
}

// decideJoin admits a new node (refused: an id in use, or removed, or a bad request).
func (a *authority) decideJoin(cmd *authCmd) outcome {
	r := &cmd.req
	no := func(st Status) outcome { return outcome{st: st} }
	switch {
	case r.Node == 0 || cmd.from != r.Node || r.Disk == 0 || r.Address == "" || len(r.Address) > MaxAddressLen:
		return no(StatusInvalid)
	case slices.ContainsFunc(a.n.p.Nodes, func(ni NodeInfo) bool { return ni.Addr == r.Node }), a.nodeState(r.Node) == NodeRemoved:
		return no(StatusConflict) // listed at the start, or removed: never again under this id
	}
	if i, ok := a.joinedIndex(r.Node); ok {
		j := a.joined[i]
		switch {
		case j.zone != r.Zone || j.address != r.Address:
			return no(StatusConflict) // the id is in use with another zone or address
		case j.disk == r.Disk:
			return no(StatusOK) // it joined already (a retry, or a restart)
		case r.Wiped:
			// Its disk was lost: the same node on a new one (its replicas are strangers to
			// their volumes, 2.12, and are rebuilt).
			return outcome{st: StatusOK, join: &joinedNode{addr: r.Node, zone: r.Zone, disk: r.Disk, address: r.Address}}
		}
		return no(StatusConflict) // the id is in use with another disk
	}
	if len(a.allNodes()) >= MaxNodes {
		return no(StatusInvalid)
	}
	return outcome{st: StatusOK, join: &joinedNode{addr: r.Node, zone: r.Zone, disk: r.Disk, address: r.Address}}
}

// addJoined records a joined node, or its new disk (apply).
func (a *authority) addJoined(j joinedNode) {
	if i, ok := a.joinedIndex(j.addr); ok {
		a.joined[i] = j
	} else {
		a.joined = slices.Insert(a.joined, i, j)
	}
}

// canLeave: every volume with a replica on x can be placed elsewhere: enough zones with
// staying nodes other than x for its replication factor.
func (a *authority) canLeave(x Addr) bool {
	var zones []uint32
	for _, ni := range a.allNodes() {
		if ni.Addr != x && !a.leaving(ni.Addr) && !slices.Contains(zones, ni.Zone) {
			zones = append(zones, ni.Zone)
		}
	}
	for _, id := range a.ids {
		if c := a.configs[id]; c.IsReplica(x) && len(zones) < int(c.RF) {
			return false
		}
	}
	return true
}

// listNodes answers OpListNodes (leader, after a read index).
func (a *authority) listNodes(op AuthOp, reqID uint64) *AuthReply {
	rep := &AuthReply{Op: op, ReqID: reqID, Status: StatusOK}
	for _, ni := range a.allNodes() {
		e := NodeEntry{Node: ni.Addr, Zone: ni.Zone, State: a.nodeState(ni.Addr)}
		if i, ok := a.joinedIndex(ni.Addr); ok {
			e.Address = a.joined[i].address
		}
		if b, ok := a.beats[ni.Addr]; ok {
			e.Disk, e.SilentMs = b.disk, uint64(max(0, a.n.now-b.at)/Millisecond)
		}
		if e.State == NodeUp && a.silent(ni.Addr) > a.downAfter() {
			e.State = NodeDown
		}
		for _, id := range a.ids {
			if a.configs[id].IsReplica(ni.Addr) {
				e.Replicas++
			}
		}
		rep.Nodes = append(rep.Nodes, e)
	}
	return rep
}

// AuthorityNodes is this member's applied node table (for checks; states as replicated,
// no liveness).
func (n *Node) AuthorityNodes() []NodeEntry {
	if n.auth == nil {
		return nil
	}
	var out []NodeEntry
	for _, ni := range n.auth.allNodes() {
		out = append(out, NodeEntry{Node: ni.Addr, Zone: ni.Zone, State: n.auth.nodeState(ni.Addr)})
	}
	return out
}

// setNodeState applies a node-table change.
func (a *authority) setNodeState(x Addr, s uint8) {
	if s == NodeUp {
		delete(a.states, x)
		return
	}
	a.states[x] = s
}

// encodeStates appends the replicated node states, in address order.
func (a *authority) encodeStates(e *encoder) {
	xs := make([]Addr, 0, len(a.states))
	for x := range a.states { // order-independent: sorted below
		xs = append(xs, x)
	}
	slices.Sort(xs)
	e.u64(uint64(len(xs)))
	for _, x := range xs {
		e.u64(uint64(x))
		e.u64(uint64(a.states[x]))
	}
}

// encodeJoined appends the joined nodes, in address order.
func (a *authority) encodeJoined(e *encoder) {
	e.u64(uint64(len(a.joined)))
	for _, j := range a.joined {
		e.u64(uint64(j.addr))
		e.u64(uint64(j.zone))
		e.u64(j.disk)
		e.str(j.address)
	}
}

func decodeJoined(d *decoder) []joinedNode {
	if len(d.b) == 0 {
		return nil // a table written before nodes could join
	}
	n := d.length(MaxNodes, 4)
	out := make([]joinedNode, n)
	for i := range out {
		out[i] = joinedNode{addr: Addr(d.u32()), zone: d.u32(), disk: d.u64(), address: d.address()}
		if i > 0 && out[i].addr <= out[i-1].addr && d.err == nil {
			d.fail("joined nodes out of order")
		}
	}
	return out
}

func decodeStates(d *decoder) map[Addr]uint8 {
	out := map[Addr]uint8{}
	if len(d.b) == 0 {
		return out // a table written before nodes had states
	}
	n := d.length(MaxNodes, 2)
	for range n {
		x, s := Addr(d.u32()), d.u8()
		if s != NodeDraining && s != NodeRemoved && d.err == nil {
			d.fail("node %d: state %d", x, s)
		}
		out[x] = s
	}
	return out
}
