package core

import (
	"slices"
)

// authority is this node's member of the authority cell. The replicated part (every
// volume's configuration, hosting grants, the results of recent requests) changes only
// by applying the cell's log (apply), so every member holds the same table at the same
// log index. The leader alone answers requests, probes primaries for health checks and
// pushes new configurations to their hosts; those parts are volatile.
type authority struct {
	n       *Node
	cell    *cell
	configs map[VolumeID]*Config
	ids     []VolumeID // sorted
	grants  map[VolumeID]grant
	results []authResult // recent request results, oldest first (deduplication)

	probes []probe
	nonce  uint64
	pushes []push
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
	lastSent int64
}

type grant struct {
	node    Addr
	expires int64
}

const (
	maxProbes  = 1024
	grantLease = 30 * Second
)

func newAuthority(n *Node) *authority {
	return &authority{n: n, configs: map[VolumeID]*Config{}, grants: map[VolumeID]grant{}}
}

func (a *authority) set(c Config) {
	if _, ok := a.configs[c.Volume]; !ok {
		i, _ := slices.BinarySearch(a.ids, c.Volume)
		a.ids = slices.Insert(a.ids, i, c.Volume)
	}
	cc := c.Clone()
	a.configs[c.Volume] = &cc
}

func (a *authority) remove(vol VolumeID) {
	if i, ok := slices.BinarySearch(a.ids, vol); ok {
		a.ids = slices.Delete(a.ids, i, i+1)
	}
	delete(a.configs, vol)
	delete(a.grants, vol)
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
func (a *authority) announce(c Config) {
	for _, r := range c.Replicas {
		found := false
		for i := range a.pushes {
			if a.pushes[i].vol == c.Volume && a.pushes[i].to == r {
				a.pushes[i].epoch, a.pushes[i].lastSent, found = c.Epoch, a.n.now, true
			}
		}
		if !found {
			a.pushes = append(a.pushes, push{vol: c.Volume, to: r, epoch: c.Epoch, lastSent: a.n.now})
		}
		a.n.send(r, &ConfigPush{Config: c.Clone()})
	}
}

// announceAll runs when this member becomes leader: pushes of the old leader died with it.
func (a *authority) announceAll() {
	a.pushes = nil
	for _, id := range a.ids {
		a.announce(*a.configs[id])
	}
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
		a.n.send(from, &AuthReply{Op: r.Op, ReqID: r.ReqID, Status: st, Config: c})
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
	case OpCreateVolume, OpDeleteVolume, OpPromote, OpShrink, OpGrow, OpRequestHost, OpSetQoS:
	default:
		reply(StatusInvalid, Config{Volume: r.Vol})
		return
	}
	cmd := &authCmd{from: from, now: a.n.now, req: *r}
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

// place picks a new volume's hosts: RF distinct zones at random, a random node in each;
// the first is the primary.
func (a *authority) place(r *AuthRequest) ([]Addr, bool) {
	if _, err := r.QoS.Normalize(); err != nil || r.Vol == 0 || r.Blocks == 0 || r.RF < 1 || r.RF > 5 {
		return nil, false
	}
	var zones []uint32
	for _, ni := range a.n.p.Nodes {
		if !slices.Contains(zones, ni.Zone) {
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
		for _, ni := range a.n.p.Nodes {
			if ni.Zone == z {
				in = append(in, ni.Addr)
			}
		}
		out = append(out, in[rng.Intn(len(in))])
	}
	return out, true
}

// apply carries out one committed command on this member's table and returns its result.
// It depends only on the table and the command, so every member computes the same.
func (a *authority) apply(c *authCmd) (Status, Config) {
	r := &c.req
	key := dedupKey{from: c.from, reqID: r.ReqID}
	for i := range a.results {
		if a.results[i].key == key {
			return a.results[i].status, a.results[i].cfg.Clone() // a retry: its first result
		}
	}
	st, cfg, changed, deleted := a.decide(c)
	if changed {
		if deleted {
			a.remove(cfg.Volume)
		} else {
			a.set(cfg)
			a.n.out.Issued = append(a.n.out.Issued, cfg.Clone())
			if a.cell.leading() {
				a.announce(cfg)
			}
		}
	}
	if len(a.results) >= maxAuthDedup {
		a.results = slices.Delete(a.results, 0, 1)
	}
	a.results = append(a.results, authResult{key: key, status: st, cfg: cfg.Clone()})
	return st, cfg
}

// decide computes a command's outcome: compare-and-set on the epoch for every change.
func (a *authority) decide(cmd *authCmd) (st Status, cfg Config, changed, deleted bool) {
	r := &cmd.req
	cur := a.configs[r.Vol]
	if r.Op == OpCreateVolume {
		if cur != nil {
			return StatusConflict, cur.Clone(), false, false
		}
		q, err := r.QoS.Normalize()
		if err != nil || !a.validPlacement(cmd.placement, int(r.RF)) || r.Blocks == 0 {
			return StatusInvalid, Config{Volume: r.Vol}, false, false
		}
		c := Config{Volume: r.Vol, Blocks: r.Blocks, RF: r.RF, Epoch: 1, QoS: q, Primary: cmd.placement[0]}
		c.Replicas = slices.Clone(cmd.placement)
		slices.Sort(c.Replicas)
		c.InSync = slices.Clone(c.Replicas)
		return StatusOK, c, true, false
	}
	if cur == nil {
		return StatusNotFound, Config{Volume: r.Vol}, false, false
	}
	c := cur.Clone()
	switch r.Op {
	case OpDeleteVolume:
		return StatusOK, c, true, true
	case OpRequestHost:
		g, ok := a.grants[r.Vol]
		if ok && g.node != r.Node && cmd.now < g.expires {
			return StatusConflict, c, false, false
		}
		if len(c.Replicas) >= int(c.RF) || c.IsReplica(r.Node) || !a.zoneFree(&c, r.Node) {
			return StatusConflict, c, false, false
		}
		a.grants[r.Vol] = grant{node: r.Node, expires: cmd.now + grantLease}
		return StatusOK, c, false, false
	case OpSetQoS:
		q, err := r.QoS.Normalize()
		if err != nil {
			return StatusInvalid, c, false, false
		}
		if r.FromEpoch != 0 && r.FromEpoch != c.Epoch {
			return StatusConflict, c, false, false
		}
		// A new epoch: the primary applies the limits live, and every replica learns them
		// (a member promoted later enforces the same figures).
		c.QoS = q
		c.Epoch++
		return StatusOK, c, true, false
	}
	if r.FromEpoch != c.Epoch {
		return StatusConflict, c, false, false
	}
	switch r.Op {
	case OpPromote:
		if !c.IsInSync(r.Node) || r.Node == c.Primary {
			return StatusConflict, c, false, false
		}
		c.InSync = removeSorted(c.InSync, c.Primary)
		c.Primary = r.Node
	case OpShrink:
		if cmd.from != c.Primary || r.Node == c.Primary || !c.IsInSync(r.Node) {
			return StatusConflict, c, false, false
		}
		c.InSync = removeSorted(c.InSync, r.Node)
	case OpGrow:
		if cmd.from != c.Primary || !c.IsReplica(r.Node) || c.IsInSync(r.Node) {
			return StatusConflict, c, false, false
		}
		c.InSync = insertSorted(c.InSync, r.Node)
	default:
		return StatusInvalid, c, false, false
	}
	c.Epoch++
	if err := c.check(); err != nil {
		a.n.fatal(err)
		return StatusInvalid, cur.Clone(), false, false
	}
	return StatusOK, c, true, false
}

// validPlacement: RF known nodes in distinct zones.
func (a *authority) validPlacement(p []Addr, rf int) bool {
	if len(p) != rf || rf == 0 {
		return false
	}
	var zones []uint32
	for _, x := range p {
		i := slices.IndexFunc(a.n.p.Nodes, func(ni NodeInfo) bool { return ni.Addr == x })
		if i < 0 || slices.Contains(zones, a.n.p.Nodes[i].Zone) {
			return false
		}
		zones = append(zones, a.n.p.Nodes[i].Zone)
	}
	return true
}

func (a *authority) zoneFree(c *Config, node Addr) bool {
	zone, found := uint32(0), false
	for _, ni := range a.n.p.Nodes {
		if ni.Addr == node {
			zone, found = ni.Zone, true
		}
	}
	if !found {
		return false
	}
	for _, r := range c.Replicas {
		for _, ni := range a.n.p.Nodes {
			if ni.Addr == r && ni.Zone == zone {
				return false
			}
		}
	}
	return true
}

func (a *authority) healthCheck(from Addr, h *HealthCheck) {
	cur := a.configs[h.Vol]
	if cur == nil {
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
		if now-p.lastSent >= 3*a.n.p.RetransmitTimeout {
			if c := a.configs[p.vol]; c != nil && c.Epoch == p.epoch {
				p.lastSent = now
				a.n.send(p.to, &ConfigPush{Config: c.Clone()})
			}
		}
	}
	// Forget pushes superseded or for deleted volumes.
	a.pushes = slices.DeleteFunc(a.pushes, func(p push) bool {
		c := a.configs[p.vol]
		return c == nil || c.Epoch != p.epoch
	})
}
