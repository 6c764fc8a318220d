package core

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// The authority's table (the cell's Raft snapshot) round-trips: configurations with their
// names, grants, remembered results with names, tombstones and the epoch floors.
func TestAuthorityTableRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := newAuthority(nil)
		ids := rapid.SliceOfNDistinct(rapid.Uint32(), 0, 6, func(v uint32) uint32 { return v }).Draw(t, "ids")
		for i, id := range ids {
			if i%2 == 0 {
				c := codecDrawConfig(t, fmt.Sprint("cfg-", i))
				c.Volume = VolumeID(id)
				a.set(c)
				a.setName(c.Volume, codecDrawName(t, fmt.Sprint("name-", i)))
			} else {
				a.addTomb(tomb{vol: VolumeID(id), epoch: Epoch(rapid.Uint64().Draw(t, fmt.Sprint("tomb-", i))), hosts: codecDrawAddrs(t, fmt.Sprint("hosts-", i))})
			}
		}
		for i := range rapid.IntRange(0, 3).Draw(t, "nstates") {
			a.setNodeState(Addr(rapid.Uint32().Draw(t, fmt.Sprint("sn-", i))), rapid.SampledFrom([]uint8{NodeDraining, NodeRemoved}).Draw(t, fmt.Sprint("ss-", i)))
		}
		for i := range rapid.IntRange(0, 3).Draw(t, "njoined") {
			a.addJoined(joinedNode{addr: Addr(rapid.Uint32().Draw(t, fmt.Sprint("jn-", i))), zone: rapid.Uint32().Draw(t, fmt.Sprint("jz-", i)),
				disk: rapid.Uint64().Draw(t, fmt.Sprint("jd-", i)), address: codecDrawAddress(t, fmt.Sprint("ja-", i))})
		}
		for i := range rapid.IntRange(0, 3).Draw(t, "nresults") {
			a.results = append(a.results, authResult{key: dedupKey{from: Addr(rapid.Uint32().Draw(t, fmt.Sprint("rf-", i))), reqID: rapid.Uint64().Draw(t, fmt.Sprint("rr-", i))},
				status: Status(rapid.Uint8().Draw(t, fmt.Sprint("rs-", i))), cfg: codecDrawConfig(t, fmt.Sprint("rc-", i)), name: codecDrawName(t, fmt.Sprint("rn-", i))})
		}
		a.floor = max(a.floor, Epoch(rapid.Uint64().Draw(t, "floor")))
		enc := a.encodeTable()
		b := newAuthority(nil)
		if err := b.decodeTable(enc); err != nil {
			t.Fatalf("decode: %v", err)
		}
		if d := diffModuloEmpty(a.tombs, b.tombs); d != "" || a.floor != b.floor || !slices.Equal(a.floors, b.floors) || len(a.names) != len(b.names) {
			t.Fatalf("tombs/floor/names differ: %s %d %d %v %v", d, a.floor, b.floor, a.names, b.names)
		}
		for id, name := range a.names { // order-independent
			if b.names[id] != name {
				t.Fatalf("volume %d: name %q, want %q", id, b.names[id], name)
			}
		}
		if enc2 := b.encodeTable(); !bytes.Equal(enc, enc2) {
			t.Fatal("re-encoded table differs")
		}
	})
}

// A table holding a volume both live and deleted is refused (a broken invariant).
func TestAuthorityTableRejectsLiveTombstone(t *testing.T) {
	a := newAuthority(nil)
	a.set(Config{Volume: 5, Blocks: 1, RF: 1, Epoch: 1, Primary: 1, InSync: []Addr{1}, Replicas: []Addr{1}})
	a.tombs = []tomb{{vol: 5, epoch: 3, hosts: []Addr{1}}}
	if err := newAuthority(nil).decodeTable(a.encodeTable()); !errors.Is(err, ErrDecode) {
		t.Fatalf("decodeTable accepted a live volume with a tombstone: %v", err)
	}
}

// A new volume starts above the tombstones of its own id only: an id never deleted starts
// at epoch 1 (the configuration model checks exactly that), whatever was deleted before.
func TestFirstEpochPerID(t *testing.T) {
	a := newAuthority(nil)
	if e := a.firstEpoch(7); e != 1 {
		t.Fatalf("fresh id: epoch %d, want 1", e)
	}
	a.addTomb(tomb{vol: 7, epoch: 5})
	a.addTomb(tomb{vol: 9, epoch: 3})
	a.removeTomb(7) // every host acknowledged: the tombstone goes, the floor stays
	if e := a.firstEpoch(7); e != 6 {
		t.Fatalf("id deleted at epoch 5: new volume at %d, want 6", e)
	}
	if e := a.firstEpoch(8); e != 1 {
		t.Fatalf("id never deleted: epoch %d, want 1", e)
	}
	for v := range VolumeID(maxFloors) { // evictions raise the global floor
		a.addTomb(tomb{vol: 100 + v, epoch: 2})
	}
	if len(a.floors) != maxFloors || a.floor == 0 || a.firstEpoch(1) != a.floor+1 {
		t.Fatalf("%d floors, global %d, fresh id at %d", len(a.floors), a.floor, a.firstEpoch(1))
	}
}
