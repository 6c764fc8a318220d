package core

import (
	"cmp"
	"fmt"
	"slices"
)

// authority is this node's member of the authority cell. The replicated part (every
// volume's configuration, the node table, the results of recent requests) changes only
// by applying the cell's log (apply), so every member holds the same table at the same
// log index. The leader alone answers requests, probes primaries for health checks and
// pushes new configurations (and deletions) to their hosts; those parts are volatile.
type authority struct {
	n       *Node
	cell    *cell
	configs map[VolumeID]*Config
	names   map[VolumeID]string // stored names (absent: a numbered volume)
	ids     []VolumeID          // sorted
	results []authResult        // recent request results, oldest first (deduplication)
	// tombs: deleted volumes some host has not yet acknowledged forgetting, sorted by
	// volume. A volume is in configs or in tombs, never both: a deleted id cannot be
	// created again until every host that held it has acknowledged its deletion.
	tombs []tomb
	// floors: per deleted volume id, the highest tombstone epoch issued for it (sorted by
	// volume). A new volume with that id starts above it, so a host's tombstone of the
	// earlier volume never hides the new one; an id never deleted starts at epoch 1. At
	// most maxFloors ids are kept; floor is the highest epoch of those evicted, and bounds
	// every new volume from below once any was.
	floors []idFloor
	floor  Epoch

	// states: each node's administrative state, draining or removed (absent: up).
	states map[Addr]uint8
	joined []joinedNode // nodes that joined the running cluster, sorted (DESIGN 2.13)

	beats    map[Addr]beat      // leader: each node's last beat (DESIGN 2.13)
	repairAt map[VolumeID]int64 // leader: when it last proposed a replacement step
	probes   []probe
	nonce    uint64
	pushes   []push
	forgetAt map[VolumeID]int64 // leader: when it last proposed forgetting a tombstone
}

// tomb is a deleted volume: its final epoch + 1 and the hosts that held it.
type tomb struct {
	vol   VolumeID
	epoch Epoch
	hosts []Addr
}

func (t *tomb) config() Config {
	return Config{Volume: t.vol, Epoch: t.epoch, Replicas: slices.Clone(t.hosts)}
}

type probe struct {
	vol       VolumeID
	epoch     Epoch
	requester Addr
	nonce     uint64
	deadline  int64
}

type push struct {
	vol      VolumeID
	to       Addr
	epoch    Epoch
	deleted  bool // a tombstone push
	lastSent int64
}

const maxProbes = 1024

func newAuthority(n *Node) *authority {
	return &authority{n: n, configs: map[VolumeID]*Config{}, names: map[VolumeID]string{},
		forgetAt: map[VolumeID]int64{}, states: map[Addr]uint8{}, beats: map[Addr]beat{}, repairAt: map[VolumeID]int64{}}
}

func (a *authority) set(c Config) {
	if _, ok := a.configs[c.Volume]; !ok {
		i, _ := slices.BinarySearch(a.ids, c.Volume)
		a.ids = slices.Insert(a.ids, i, c.Volume)
	}
	cc := c.Clone()
	a.configs[c.Volume] = &cc
}

func (a *authority) setName(vol VolumeID, name string) {
	if name == "" {
		delete(a.names, vol)
	} else {
		a.names[vol] = name
	}
}

func (a *authority) remove(vol VolumeID) {
	if i, ok := slices.BinarySearch(a.ids, vol); ok {
		a.ids = slices.Delete(a.ids, i, i+1)
	}
	delete(a.configs, vol)
	delete(a.names, vol)
}

func (a *authority) tombIndex(vol VolumeID) (int, bool) {
	return slices.BinarySearchFunc(a.tombs, vol, func(t tomb, v VolumeID) int { return cmp.Compare(t.vol, v) })
}

func (a *authority) tomb(vol VolumeID) *tomb {
	if i, ok := a.tombIndex(vol); ok {
		return &a.tombs[i]
	}
	return nil
}

func (a *authority) addTomb(t tomb) {
	i, ok := a.tombIndex(t.vol)
	if ok {
		a.tombs[i] = t
	} else {
		a.tombs = slices.Insert(a.tombs, i, t)
	}
	i, ok = slices.BinarySearchFunc(a.floors, t.vol, func(f idFloor, v VolumeID) int { return cmp.Compare(f.vol, v) })
	switch {
	case ok:
		a.floors[i].epoch = max(a.floors[i].epoch, t.epoch)
	default:
		a.floors = slices.Insert(a.floors, i, idFloor{vol: t.vol, epoch: t.epoch})
		if len(a.floors) > maxFloors { // evict the lowest id; its floor joins the global one
			a.floor = max(a.floor, a.floors[0].epoch)
			a.floors = slices.Delete(a.floors, 0, 1)
		}
	}
}

// idFloor is the highest tombstone epoch issued for a volume id.
type idFloor struct {
	vol   VolumeID
	epoch Epoch
}

// maxFloors bounds the per-id floors the authority remembers.
const maxFloors = 1 << 16

// firstEpoch is the epoch a new volume with id vol starts at.
func (a *authority) firstEpoch(vol VolumeID) Epoch {
	e := a.floor
	if i, ok := slices.BinarySearchFunc(a.floors, vol, func(f idFloor, v VolumeID) int { return cmp.Compare(f.vol, v) }); ok {
		e = max(e, a.floors[i].epoch)
	}
	return e + 1
}

func (a *authority) removeTomb(vol VolumeID) {
	if i, ok := a.tombIndex(vol); ok {
		a.tombs = slices.Delete(a.tombs, i, i+1)
	}
}

// AuthorityConfig returns this member's applied configuration of vol (for drivers and
// checks; it may lag the leader's).
func (n *Node) AuthorityConfig(vol VolumeID) (Config, bool) {
	if n.auth == nil {
		return Config{}, false
	}
	c, ok := n.auth.configs[vol]
	if !ok {
		return Config{}, false
	}
	return c.Clone(), true
}

// AuthorityStatus reports this member's view of the cell: whether it leads, its term and
// its applied log index (ok false on a node that is not a member).
func (n *Node) AuthorityStatus() (leader bool, term, applied uint64, ok bool) {
	if n.auth == nil {
		return false, 0, 0, false
	}
	s := n.auth.cell.r.Status()
	return n.auth.cell.leading(), s.Term, n.auth.cell.applied, true
}

// announce pushes a new configuration to its hosts (leader only; retried until acked).
func (a *authority) announce(c Config) { a.push(c, false) }

// announceTomb tells every host of a deleted volume to forget it (retried until acked).
func (a *authority) announceTomb(t *tomb) { a.push(t.config(), true) }

func (a *authority) push(c Config, deleted bool) {
	for _, r := range c.Replicas {
		a.pushOne(c, r, deleted)
	}
}

// pushTo pushes c to a node that is not (or no longer) one of its replicas.
func (a *authority) pushTo(c Config, to Addr) { a.pushOne(c, to, false) }

func (a *authority) pushOne(c Config, r Addr, deleted bool) {
	found := false
	for i := range a.pushes {
		if p := &a.pushes[i]; p.vol == c.Volume && p.to == r {
			p.epoch, p.deleted, p.lastSent, found = c.Epoch, deleted, a.n.now, true
		}
	}
	if !found {
		a.pushes = append(a.pushes, push{vol: c.Volume, to: r, epoch: c.Epoch, deleted: deleted, lastSent: a.n.now})
	}
	a.n.send(r, &ConfigPush{Config: c.Clone(), Deleted: deleted})
}

// announceAll runs when this member becomes leader: pushes of the old leader died with it.
func (a *authority) announceAll() {
	a.startLeading()
	a.pushes = nil
	for _, id := range a.ids {
		a.announce(*a.configs[id])
	}
	for i := range a.tombs {
		a.announceTomb(&a.tombs[i])
	}
}

// pushing reports whether a push for vol still waits for an acknowledgement.
func (a *authority) pushing(vol VolumeID) bool {
	return slices.ContainsFunc(a.pushes, func(p push) bool { return p.vol == vol })
}

// forget proposes dropping a tombstone every host acknowledged (leader; retried from tick
// until applied: a proposal can be lost with the leadership, and then the next leader
// pushes the tombstone again and proposes anew).
func (a *authority) forget(t *tomb) {
	if a.n.now-a.forgetAt[t.vol] < 3*a.n.p.RetransmitTimeout && a.forgetAt[t.vol] != 0 {
		return
	}
	a.forgetAt[t.vol] = a.n.now
	a.n.authReqID++
	cmd := &authCmd{from: a.n.p.Self, now: a.n.now, req: AuthRequest{Op: opForgetDeleted, ReqID: a.n.authReqID, Vol: t.vol, FromEpoch: t.epoch}}
	a.cell.proposeInternal(encodeAuthCmd(cmd))
}

func (a *authority) step(from Addr, m Message) {
	switch m := m.(type) {
	case *AuthRequest:
		a.request(from, m)
	case *HealthCheck:
		if !a.cell.leading() {
			a.notLeader(from, &AuthRequest{Vol: m.Vol})
			return
		}
		a.healthCheck(from, m)
	case *ProbeAck:
		for i, p := range a.probes {
			if p.nonce == m.Nonce {
				a.probes = slices.Delete(a.probes, i, i+1)
				a.healthReply(p, true)
				return
			}
		}
	case *ConfigPushAck:
		for i, p := range a.pushes {
			if p.vol == m.Vol && p.to == from && m.Epoch >= p.epoch {
				a.pushes = slices.Delete(a.pushes, i, i+1)
				if t := a.tomb(p.vol); p.deleted && t != nil && t.epoch == p.epoch && !a.pushing(p.vol) && a.cell.leading() {
					a.forget(t) // every host forgot the volume
				}
				return
			}
		}
	}
}

func (a *authority) notLeader(to Addr, r *AuthRequest) {
	a.n.send(to, &AuthReply{Op: r.Op, ReqID: r.ReqID, Status: StatusNotLeader, Config: Config{Volume: r.Vol}, Leader: a.cell.leaderHint()})
}

// request: the leader reads through a read index and proposes every change; the answer
// goes out when the change is applied.
func (a *authority) request(from Addr, r *AuthRequest) {
	if !a.cell.leading() {
		a.notLeader(from, r)
		return
	}
	reply := func(st Status, c Config) {
		a.n.send(from, &AuthReply{Op: r.Op, ReqID: r.ReqID, Status: st, Config: c, Name: a.names[c.Volume]})
	}
	switch r.Op {
	case OpJoinCell:
		a.cell.join(from, r)
		return
	case OpGetConfig:
		vol := r.Vol
		a.cell.read(func() {
			if c := a.configs[vol]; c != nil {
				reply(StatusOK, c.Clone())
			} else {
				reply(StatusNotFound, Config{Volume: vol})
			}
		})
		return
	case OpListVolumes:
		op, reqID, after := r.Op, r.ReqID, r.Vol
		list := func() { a.n.send(from, a.list(op, reqID, after)) }
		a.cell.read(list)
		return
	case OpNodeBeat:
		a.onBeat(from, r)
		return
	case OpListNodes:
		op, reqID := r.Op, r.ReqID
		nodes := func() { a.n.send(from, a.listNodes(op, reqID)) }
		a.cell.read(nodes)
		return
	case OpCreateVolume, OpDeleteVolume, OpPromote, OpShrink, OpGrow, OpRequestHost, OpSetQoS, OpRenew, OpRemoveNode, OpDrainNode, OpHandover, OpJoinNode:
	default:
		reply(StatusInvalid, Config{Volume: r.Vol})
		return
	}
	cmd := &authCmd{from: from, now: a.n.now, req: *r}
	if r.Op == OpHandover {
		// The leader picks the new primary (its liveness view is not replicated).
		c := a.configs[r.Vol]
		t := Addr(0)
		if c != nil && c.Primary == from {
			t = a.handoverTarget(c)
		}
		if t == 0 {
			reply(StatusConflict, Config{Volume: r.Vol})
			return
		}
		cmd.placement = []Addr{t}
	}
	if r.Op == OpCreateVolume {
		p, ok := a.place(r)
		if !ok {
			reply(StatusInvalid, Config{Volume: r.Vol})
			return
		}
		cmd.placement = p
	}
	if !a.cell.propose(encodeAuthCmd(cmd), from, r) {
		a.notLeader(from, r)
	}
}

// list answers one page of OpListVolumes: the volumes with ids above after, in id order.
func (a *authority) list(op AuthOp, reqID uint64, after VolumeID) *AuthReply {
	rep := &AuthReply{Op: op, ReqID: reqID, Status: StatusOK}
	i, found := slices.BinarySearch(a.ids, after)
	if found {
		i++
	}
	for ; i < len(a.ids) && len(rep.List) < MaxListVolumes; i++ {
		id := a.ids[i]
		rep.List = append(rep.List, VolumeEntry{Name: a.names[id], Config: a.configs[id].Clone()})
	}
	rep.More = i < len(a.ids)
	return rep
}

// place picks a new volume's hosts: RF distinct zones at random, a random node in each;
// the first is the primary.
func (a *authority) place(r *AuthRequest) ([]Addr, bool) {
	if _, err := r.QoS.Normalize(); err != nil || r.Vol == 0 || r.Blocks == 0 || r.RF < 1 || r.RF > 5 || CheckVolumeName(r.Name) != nil {
		return nil, false
	}
	var zones []uint32
	for _, ni := range a.allNodes() {
		if !slices.Contains(zones, ni.Zone) && !a.leaving(ni.Addr) {
			zones = append(zones, ni.Zone)
		}
	}
	slices.Sort(zones)
	if len(zones) < int(r.RF) {
		return nil, false
	}
	rng := a.n.rng
	for i := len(zones) - 1; i > 0; i-- {
		j := rng.Intn(i + 1)
		zones[i], zones[j] = zones[j], zones[i]
	}
	var out []Addr
	for _, z := range zones[:r.RF] {
		var in []Addr
		for _, ni := range a.allNodes() {
			if ni.Zone == z && !a.leaving(ni.Addr) {
				in = append(in, ni.Addr)
			}
		}
		out = append(out, in[rng.Intn(len(in))])
	}
	return out, true
}

// apply carries out one committed command on this member's table and returns its result.
// It depends only on the table and the command, so every member computes the same.
func (a *authority) apply(c *authCmd) (Status, Config, string) {
	r := &c.req
	key := dedupKey{from: c.from, reqID: r.ReqID}
	for i := range a.results {
		if a.results[i].key == key {
			x := &a.results[i]
			return x.status, x.cfg.Clone(), x.name // a retry: its first result
		}
	}
	o := a.decide(c)
	switch {
	case o.setNode:
		a.setNodeState(o.node, o.state)
	case o.join != nil:
		a.addJoined(*o.join)
	case o.set:
		a.set(o.cfg)
		a.setName(o.cfg.Volume, o.name)
		a.n.out.Issued = append(a.n.out.Issued, IssuedConfig{Config: o.cfg.Clone(), From: c.from, ReqID: r.ReqID})
		if a.cell.leading() {
			a.announce(o.cfg)
			if o.dropped != 0 {
				a.pushTo(o.cfg, o.dropped) // it forgets its replica
			}
		}
	case o.deleted:
		// The tombstone's epoch is above every epoch the volume had: a host takes it over
		// any configuration of the volume it may still hold.
		t := tomb{vol: o.cfg.Volume, epoch: o.cfg.Epoch + 1, hosts: slices.Clone(o.cfg.Replicas)}
		a.remove(t.vol)
		a.addTomb(t)
		if a.cell.leading() {
			a.announceTomb(&t)
		}
	case o.forget:
		a.removeTomb(r.Vol)
		delete(a.forgetAt, r.Vol)
	}
	if a.configs[r.Vol] != nil && a.tomb(r.Vol) != nil {
		a.n.fatal(fmt.Errorf("core: authority: volume %d is both live and deleted", r.Vol))
	}
	if len(a.results) >= maxAuthDedup {
		a.results = slices.Delete(a.results, 0, 1)
	}
	a.results = append(a.results, authResult{key: key, status: o.st, cfg: o.cfg.Clone(), name: o.name})
	return o.st, o.cfg, o.name
}

// outcome is what a command does to the table.
type outcome struct {
	st      Status
	cfg     Config      // the answer's configuration (for a change: the new one)
	name    string      // the volume's name (create, conflict)
	set     bool        // cfg (and name) replaces the volume's configuration
	deleted bool        // the volume (cfg) is deleted: a tombstone replaces it
	forget  bool        // the volume's tombstone is dropped
	dropped Addr        // with set: this replica left the volume (it is told)
	join    *joinedNode // a node joins the cluster
	setNode bool        // node's state becomes state
	node    Addr
	state   uint8
}

// decide computes a command's outcome: compare-and-set on the epoch for every change.
func (a *authority) decide(cmd *authCmd) outcome {
	r := &cmd.req
	cur := a.configs[r.Vol]
	no := func(st Status, c Config) outcome { return outcome{st: st, cfg: c, name: a.names[c.Volume]} }
	switch r.Op {
	case OpCreateVolume:
		if cur != nil {
			return no(StatusConflict, cur.Clone())
		}
		if a.tomb(r.Vol) != nil {
			// Deleted, and some host has not yet confirmed it forgot the volume: a new volume
			// under the same id could meet the old one's state there. Retry later.
			return no(StatusUnavailable, Config{Volume: r.Vol})
		}
		q, err := r.QoS.Normalize()
		if err != nil || !a.validPlacement(cmd.placement, int(r.RF)) || r.Blocks == 0 || CheckVolumeName(r.Name) != nil {
			return no(StatusInvalid, Config{Volume: r.Vol})
		}
		c := Config{Volume: r.Vol, Blocks: r.Blocks, RF: r.RF, Epoch: a.firstEpoch(r.Vol), QoS: q, Primary: cmd.placement[0]}
		c.Replicas = slices.Clone(cmd.placement)
		slices.Sort(c.Replicas)
		c.InSync = slices.Clone(c.Replicas)
		c.Disks = make([]uint64, len(c.Replicas)) // recorded by the primary's first Renew
		return outcome{st: StatusOK, cfg: c, name: r.Name, set: true}
	case opForgetDeleted:
		if t := a.tomb(r.Vol); t != nil && t.epoch == r.FromEpoch {
			return outcome{st: StatusOK, cfg: Config{Volume: r.Vol}, forget: true}
		}
		return no(StatusNotFound, Config{Volume: r.Vol})
	case OpRemoveNode, OpDrainNode, OpRequestHost, opDropReplica, OpHandover, OpJoinNode:
		return a.decideNode(cmd, cur)
	}
	if cur == nil {
		return no(StatusNotFound, Config{Volume: r.Vol})
	}
	if (r.Op == OpDeleteVolume || r.Op == OpSetQoS) && r.Name != "" && r.Name != a.names[r.Vol] {
		// The operator named another volume whose name hashes to this id: not this one.
		return no(StatusNotFound, Config{Volume: r.Vol})
	}
	c := cur.Clone()
	switch r.Op {
	case OpDeleteVolume:
		return outcome{st: StatusOK, cfg: c, name: a.names[r.Vol], deleted: true}
	case OpSetQoS:
		q, err := r.QoS.Normalize()
		if err != nil {
			return no(StatusInvalid, c)
		}
		if r.FromEpoch != 0 && r.FromEpoch != c.Epoch {
			return no(StatusConflict, c)
		}
		// A new epoch: the primary applies the limits live, and every replica learns them
		// (a member promoted later enforces the same figures).
		c.QoS = q
		c.Epoch++
		return outcome{st: StatusOK, cfg: c, name: a.names[r.Vol], set: true}
	}
	if r.FromEpoch != c.Epoch {
		return no(StatusConflict, c)
	}
	switch r.Op {
	case OpPromote:
		if !c.IsInSync(r.Node) || r.Node == c.Primary || r.Disk == 0 || (c.DiskOf(r.Node) != r.Disk && c.DiskOf(c.Primary) != 0) {
			// A candidate whose disk is not the one recorded holds none of the data. (Before
			// the first Renew no disk is recorded and nothing was written: any will do.)
			return no(StatusConflict, c)
		}
		c.setDisk(r.Node, r.Disk)
		c.InSync = removeSorted(c.InSync, c.Primary)
		c.Primary = r.Node
	case OpShrink:
		if cmd.from != c.Primary || r.Node == c.Primary || !c.IsInSync(r.Node) {
			return no(StatusConflict, c)
		}
		c.InSync = removeSorted(c.InSync, r.Node)
	case OpGrow:
		if cmd.from != c.Primary || !c.IsReplica(r.Node) || c.IsInSync(r.Node) || r.Disk == 0 {
			return no(StatusConflict, c)
		}
		c.InSync = insertSorted(c.InSync, r.Node)
		c.setDisk(r.Node, r.Disk) // the disk the primary brought up to date
	case OpRenew:
		if cmd.from != c.Primary || r.Node != c.Primary || r.Disk == 0 || (c.DiskOf(r.Node) != 0 && c.DiskOf(r.Node) != r.Disk) {
			return no(StatusConflict, c)
		}
		renewDisks(&c, r)
	default:
		return no(StatusInvalid, c)
	}
	return a.change(cur, c)
}

// change is the outcome of replacing cur with c at the next epoch (checked).
func (a *authority) change(cur *Config, c Config) outcome {
	c.Epoch++
	if err := c.check(); err != nil {
		a.n.fatal(err)
		return outcome{st: StatusInvalid, cfg: cur.Clone(), name: a.names[cur.Volume]}
	}
	return outcome{st: StatusOK, cfg: c, name: a.names[c.Volume], set: true}
}

// renewDisks records, at a Renew, the primary's disk and every disk its members reported
// where none is recorded yet (a new volume); an in-sync member with no disk recorded or
// reported, or that reported another disk than recorded, leaves the in-sync set.
func renewDisks(c *Config, r *AuthRequest) {
	c.setDisk(c.Primary, r.Disk)
	for i, x := range c.Replicas {
		if x == c.Primary {
			continue
		}
		var rep uint64
		if len(r.Disks) == len(c.Replicas) {
			rep = r.Disks[i]
		}
		rec := c.Disks[i]
		switch {
		case rec == 0 && rep != 0:
			c.Disks[i] = rep
		case rec == 0, rep != 0 && rep != rec:
			c.InSync = removeSorted(c.InSync, x)
		}
	}
}

// validPlacement: RF known nodes in distinct zones.
func (a *authority) validPlacement(p []Addr, rf int) bool {
	if len(p) != rf || rf == 0 {
		return false
	}
	var zones []uint32
	for _, x := range p {
		z, ok := a.zoneOf(x)
		if !ok || slices.Contains(zones, z) || a.leaving(x) {
			return false
		}
		zones = append(zones, z)
	}
	return true
}

func (a *authority) healthCheck(from Addr, h *HealthCheck) {
	cur := a.configs[h.Vol]
	if cur == nil {
		// A member of a volume that is gone (deleted while it was away, and it was not a
		// host then: it had been taken out of the volume). Confirmed through a read index
		// (a new leader's table may lag), it is sent the tombstone: it forgets the volume,
		// unless it holds a newer one under the id (onDeletePush).
		vol := h.Vol
		gone := func() {
			if a.configs[vol] != nil {
				return
			}
			e := a.firstEpoch(vol) - 1
			if t := a.tomb(vol); t != nil {
				e = t.epoch
			}
			if e > 0 {
				a.n.send(from, &ConfigPush{Config: Config{Volume: vol, Epoch: e}, Deleted: true})
			}
		}
		a.cell.read(gone)
		return
	}
	if cur.Epoch != h.Epoch || !cur.IsInSync(from) || cur.Primary == from {
		a.n.send(from, &HealthResult{Vol: h.Vol, Epoch: cur.Epoch, Healthy: true, Config: cur.Clone()})
		return
	}
	if len(a.probes) >= maxProbes {
		a.probes = slices.Delete(a.probes, 0, 1)
	}
	a.nonce++
	a.probes = append(a.probes, probe{vol: h.Vol, epoch: h.Epoch, requester: from, nonce: a.nonce, deadline: a.n.now + a.n.p.ProbeTimeout})
	a.n.send(cur.Primary, &Probe{Vol: h.Vol, Nonce: a.nonce})
}

func (a *authority) healthReply(p probe, healthy bool) {
	cur := a.configs[p.vol]
	if cur == nil {
		return
	}
	a.n.send(p.requester, &HealthResult{Vol: p.vol, Epoch: p.epoch, Healthy: healthy, Config: cur.Clone()})
}

func (a *authority) tick() {
	if !a.cell.leading() {
		a.probes, a.pushes = nil, nil
		clear(a.forgetAt)
		return
	}
	now := a.n.now
	for i := 0; i < len(a.probes); {
		if now >= a.probes[i].deadline {
			p := a.probes[i]
			a.probes = slices.Delete(a.probes, i, i+1)
			a.healthReply(p, false)
			continue
		}
		i++
	}
	for i := range a.pushes {
		p := &a.pushes[i]
		if now-p.lastSent < 3*a.n.p.RetransmitTimeout {
			continue
		}
		if p.deleted {
			if t := a.tomb(p.vol); t != nil && t.epoch == p.epoch {
				p.lastSent = now
				a.n.send(p.to, &ConfigPush{Config: t.config(), Deleted: true})
			}
		} else if c := a.configs[p.vol]; c != nil && c.Epoch == p.epoch {
			p.lastSent = now
			a.n.send(p.to, &ConfigPush{Config: c.Clone()})
		}
	}
	// A node taken out of a volume is told until it acknowledges, whatever epochs follow
	// (it forgets its replica then): its push follows the volume's current configuration.
	for i := range a.pushes {
		if p := &a.pushes[i]; !p.deleted {
			if c := a.configs[p.vol]; c != nil && c.Epoch != p.epoch && !c.IsReplica(p.to) {
				p.epoch = c.Epoch
			}
		}
	}
	// Forget pushes superseded, for volumes gone from the table, or to removed nodes (they
	// never host again: a tombstone need not wait for them).
	a.pushes = slices.DeleteFunc(a.pushes, func(p push) bool {
		if a.nodeState(p.to) == NodeRemoved {
			return true
		}
		if p.deleted {
			t := a.tomb(p.vol)
			return t == nil || t.epoch != p.epoch
		}
		c := a.configs[p.vol]
		return c == nil || c.Epoch != p.epoch
	})
	// Tombstones every host acknowledged (no push left) are dropped through the log.
	for i := range a.tombs {
		if t := &a.tombs[i]; !a.pushing(t.vol) {
			a.forget(t)
		}
	}
	a.repair()
}

// AuthorityDeleting reports whether this member's applied table still holds a tombstone
// for vol: it was deleted and some host has not yet acknowledged forgetting it.
func (n *Node) AuthorityDeleting(vol VolumeID) bool {
	return n.auth != nil && n.auth.tomb(vol) != nil
}
