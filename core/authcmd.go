package core

import (
	"cmp"
	"fmt"
	"slices"
)

// authCmd is one entry of the authority cell's log: a request as the leader accepted it.
// Every member applies it to its table in log order, deterministically: the leader puts
// everything that needs its clock or its randomness (the time, a new volume's placement)
// into the command.
type authCmd struct {
	from      Addr
	now       int64  // the leader's clock when it proposed (grant expiry)
	placement []Addr // create: the replicas, the first one primary
	req       AuthRequest
}

func encodeAuthCmd(c *authCmd) []byte {
	e := encoder{}
	e.u64(uint64(c.from))
	e.i64(c.now)
	e.addrs(c.placement)
	c.req.encode(&e)
	return e.b
}

func decodeAuthCmd(b []byte) (*authCmd, error) {
	d := decoder{b: b}
	c := &authCmd{from: Addr(d.u32()), now: d.i64(), placement: d.addrs()}
	c.req.decode(&d)
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: authority command: %v", ErrDecode, d.err)
	}
	return c, nil
}

// dedupKey names a request by its sender and id: a retried request gets the result of
// its first application instead of being applied again.
type dedupKey struct {
	from  Addr
	reqID uint64
}

type authResult struct {
	key    dedupKey
	status Status
	cfg    Config
	name   string
}

// maxTombs bounds the tombstones a decoded table may hold (deletions not yet acknowledged
// by every host; the table is at most the volumes plus these).
const maxTombs = maxList

// maxAuthDedup bounds the remembered results (oldest forgotten first).
const maxAuthDedup = 4096

// encodeTable is the authority's replicated state: what a Raft snapshot carries.
func (a *authority) encodeTable() []byte {
	e := encoder{}
	e.u64(uint64(len(a.ids)))
	for _, id := range a.ids {
		e.config(a.configs[id])
		e.str(a.names[id])
	}
	// (Once the hosting grants: a slot's holder is now a replica of the configuration
	// itself. The count stays, always 0, so tables written before still decode.)
	e.u64(0)
	e.u64(uint64(len(a.results)))
	for i := range a.results {
		r := &a.results[i]
		e.u64(uint64(r.key.from))
		e.u64(r.key.reqID)
		e.u64(uint64(r.status))
		e.config(&r.cfg)
		e.str(r.name)
	}
	e.u64(uint64(len(a.tombs)))
	for i := range a.tombs {
		t := &a.tombs[i]
		e.u64(uint64(t.vol))
		e.u64(uint64(t.epoch))
		e.addrs(t.hosts)
	}
	e.u64(uint64(a.floor))
	e.u64(uint64(len(a.floors)))
	for _, f := range a.floors {
		e.u64(uint64(f.vol))
		e.u64(uint64(f.epoch))
	}
	a.encodeStates(&e)
	a.encodeJoined(&e)
	return e.b
}

func (a *authority) decodeTable(b []byte) error {
	d := decoder{b: b}
	n := d.length(maxList, 8)
	configs := make([]Config, n)
	names := make([]string, n)
	for i := range configs {
		d.config(&configs[i])
		names[i] = d.name()
		if i > 0 && configs[i].Volume <= configs[i-1].Volume && d.err == nil {
			d.fail("volumes out of order")
		}
	}
	n = d.length(maxList, 3)
	for range n { // hosting grants of a table written before they went (ignored)
		d.u32()
		d.u32()
		d.i64()
	}
	n = d.length(maxAuthDedup, 11)
	results := make([]authResult, n)
	for i := range results {
		r := &results[i]
		r.key = dedupKey{from: Addr(d.u32()), reqID: d.u64()}
		r.status = Status(d.u8())
		d.config(&r.cfg)
		r.name = d.name()
	}
	n = d.length(maxTombs, 3)
	tombs := make([]tomb, n)
	for i := range tombs {
		t := &tombs[i]
		t.vol, t.epoch, t.hosts = VolumeID(d.u32()), Epoch(d.u64()), d.addrs()
		if i > 0 && t.vol <= tombs[i-1].vol && d.err == nil {
			d.fail("tombstones out of order")
		}
	}
	floor := Epoch(d.u64())
	n = d.length(maxFloors, 2)
	floors := make([]idFloor, n)
	for i := range floors {
		floors[i] = idFloor{vol: VolumeID(d.u32()), epoch: Epoch(d.u64())}
		if i > 0 && floors[i].vol <= floors[i-1].vol && d.err == nil {
			d.fail("floors out of order")
		}
	}
	states := decodeStates(&d)
	joined := decodeJoined(&d)
	for i := range tombs {
		if _, live := slices.BinarySearchFunc(configs, tombs[i].vol, func(c Config, v VolumeID) int { return cmp.Compare(c.Volume, v) }); live && d.err == nil {
			d.fail("volume %d both live and deleted", tombs[i].vol)
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return fmt.Errorf("%w: authority table: %v", ErrDecode, d.err)
	}
	a.configs, a.ids, a.names = map[VolumeID]*Config{}, nil, map[VolumeID]string{}
	for i, c := range configs {
		a.set(c)
		a.setName(c.Volume, names[i])
	}
	a.results, a.tombs, a.floor, a.floors, a.states = results, tombs, floor, floors, states
	a.joined = joined
	return nil
}
