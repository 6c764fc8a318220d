package core

import (
	"slices"
)

// authority is the single, durable authority member (a later issue replicates it). It
// stores every volume's configuration and changes it only by compare-and-set on the
// epoch. Every change is journaled before anyone hears of it; a read waits for every
// change before it to be durable, so nothing that a crash could undo is ever revealed.
type authority struct {
	n       *Node
	configs map[VolumeID]*Config
	ids     []VolumeID // sorted
	pending int        // appends in flight
	waiting []func()   // replies held until pending reaches zero
	probes  []probe
	nonce   uint64
	pushes  []push
	grants  map[VolumeID]grant
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
}

func (a *authority) restore(cs []Config) {
	for _, c := range cs {
		a.set(c)
	}
}

func (a *authority) replay(c Config, deleted bool) {
	if deleted {
		a.remove(c.Volume)
	} else {
		a.set(c)
	}
}

func (a *authority) snapshot() []Config {
	out := make([]Config, 0, len(a.ids))
	for _, id := range a.ids {
		out = append(out, a.configs[id].Clone())
	}
	return out
}

// recovered re-announces every configuration (pushes lost with the crash). A change
// whose append was in flight at the crash may have survived without ever being revealed:
// it is durable now, so it is issued now.
func (a *authority) recovered() {
	for _, id := range a.ids {
		c := a.configs[id].Clone()
		a.n.out.Issued = append(a.n.out.Issued, c)
		a.announce(c)
	}
}

// AuthorityConfig returns the authority's current configuration of vol (for drivers and checks).
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

// commit journals a change and runs reply once it, and everything before it, is durable.
func (a *authority) commit(c Config, deleted bool, reply func()) {
	if deleted {
		a.remove(c.Volume)
	} else {
		a.set(c)
	}
	a.pending++
	a.waiting = append(a.waiting, func() {
		if !deleted {
			a.n.out.Issued = append(a.n.out.Issued, c.Clone())
			a.announce(c)
		}
		reply()
	})
	a.n.append(encodeRecAuth(&c, deleted), func() {
		a.pending--
		if a.pending == 0 {
			ws := a.waiting
			a.waiting = nil
			for _, w := range ws {
				w()
			}
		}
	})
}

// afterDurable runs f now, or after every change in flight is durable.
func (a *authority) afterDurable(f func()) {
	if a.pending == 0 {
		f()
		return
	}
	a.waiting = append(a.waiting, f)
}

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

func (a *authority) step(from Addr, m Message) {
	switch m := m.(type) {
	case *AuthRequest:
		a.request(from, m)
	case *HealthCheck:
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

func (a *authority) request(from Addr, r *AuthRequest) {
	reply := func(st Status, c Config) func() {
		return func() { a.n.send(from, &AuthReply{Op: r.Op, ReqID: r.ReqID, Status: st, Config: c}) }
	}
	cur := a.configs[r.Vol]
	if r.Op == OpCreateVolume {
		a.create(r, cur, reply)
		return
	}
	if cur == nil {
		a.afterDurable(reply(StatusNotFound, Config{Volume: r.Vol}))
		return
	}
	c := cur.Clone()
	conflict := func() { a.afterDurable(reply(StatusConflict, c)) }
	switch r.Op {
	case OpGetConfig:
		a.afterDurable(reply(StatusOK, c))
		return
	case OpDeleteVolume:
		a.commit(c, true, reply(StatusOK, c))
		return
	case OpRequestHost:
		g, ok := a.grants[r.Vol]
		if ok && g.node != r.Node && a.n.now < g.expires {
			conflict()
			return
		}
		if len(c.Replicas) >= int(c.RF) || c.IsReplica(r.Node) || !a.zoneFree(&c, r.Node) {
			conflict()
			return
		}
		a.grants[r.Vol] = grant{node: r.Node, expires: a.n.now + grantLease}
		a.afterDurable(reply(StatusOK, c))
		return
	case OpSetQoS:
		q, err := r.QoS.Normalize()
		if err != nil {
			a.afterDurable(reply(StatusInvalid, c))
			return
		}
		if r.FromEpoch != 0 && r.FromEpoch != c.Epoch {
			conflict()
			return
		}
		// A new epoch: the primary applies the limits live, and every replica learns them
		// (a member promoted later enforces the same figures).
		c.QoS = q
		c.Epoch++
		a.commit(c, false, reply(StatusOK, c))
		return
	}
	if r.FromEpoch != c.Epoch {
		conflict()
		return
	}
	switch r.Op {
	case OpPromote:
		if !c.IsInSync(r.Node) || r.Node == c.Primary {
			conflict()
			return
		}
		c.InSync = removeSorted(c.InSync, c.Primary)
		c.Primary = r.Node
	case OpShrink:
		if from != c.Primary || r.Node == c.Primary || !c.IsInSync(r.Node) {
			conflict()
			return
		}
		c.InSync = removeSorted(c.InSync, r.Node)
	case OpGrow:
		if from != c.Primary || !c.IsReplica(r.Node) || c.IsInSync(r.Node) {
			conflict()
			return
		}
		c.InSync = insertSorted(c.InSync, r.Node)
	default:
		a.afterDurable(reply(StatusInvalid, c))
		return
	}
	c.Epoch++
	if err := c.check(); err != nil {
		a.n.fatal(err)
		return
	}
	a.commit(c, false, reply(StatusOK, c))
}

func (a *authority) zoneFree(c *Config, node Addr) bool {
	zone, ok := a.zoneOf(node)
	if !ok {
		return false
	}
	for _, r := range c.Replicas {
		if z, _ := a.zoneOf(r); z == zone {
			return false
		}
	}
	return true
}

func (a *authority) zoneOf(node Addr) (uint32, bool) {
	for _, ni := range a.n.p.Nodes {
		if ni.Addr == node {
			return ni.Zone, true
		}
	}
	return 0, false
}

// create places RF replicas in distinct zones, chosen with the node's seeded PRNG.
func (a *authority) create(r *AuthRequest, cur *Config, reply func(Status, Config) func()) {
	if cur != nil {
		a.afterDurable(reply(StatusConflict, cur.Clone()))
		return
	}
	q, qerr := r.QoS.Normalize()
	if r.Vol == 0 || r.Blocks == 0 || r.RF < 1 || r.RF > 5 || qerr != nil {
		a.afterDurable(reply(StatusInvalid, Config{Volume: r.Vol}))
		return
	}
	var zones []uint32
	for _, ni := range a.n.p.Nodes {
		if !slices.Contains(zones, ni.Zone) {
			zones = append(zones, ni.Zone)
		}
	}
	slices.Sort(zones)
	if len(zones) < int(r.RF) {
		a.afterDurable(reply(StatusInvalid, Config{Volume: r.Vol}))
		return
	}
	rng := a.n.rng
	for i := len(zones) - 1; i > 0; i-- {
		j := rng.Intn(i + 1)
		zones[i], zones[j] = zones[j], zones[i]
	}
	c := Config{Volume: r.Vol, Blocks: r.Blocks, RF: r.RF, Epoch: 1, QoS: q}
	for _, z := range zones[:r.RF] {
		var in []Addr
		for _, ni := range a.n.p.Nodes {
			if ni.Zone == z {
				in = append(in, ni.Addr)
			}
		}
		c.Replicas = append(c.Replicas, in[rng.Intn(len(in))])
	}
	c.Primary = c.Replicas[0]
	slices.Sort(c.Replicas)
	c.InSync = slices.Clone(c.Replicas)
	a.commit(c, false, reply(StatusOK, c))
}

func (a *authority) healthCheck(from Addr, h *HealthCheck) {
	cur := a.configs[h.Vol]
	if cur == nil {
		return
	}
	if cur.Epoch != h.Epoch || !cur.IsInSync(from) || cur.Primary == from {
		c := cur.Clone()
		a.afterDurable(func() { a.n.send(from, &HealthResult{Vol: h.Vol, Epoch: c.Epoch, Healthy: true, Config: c}) })
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
	c := cur.Clone()
	a.afterDurable(func() {
		a.n.send(p.requester, &HealthResult{Vol: p.vol, Epoch: p.epoch, Healthy: healthy, Config: c})
	})
}

func (a *authority) tick() {
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
