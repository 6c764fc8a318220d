package raft

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// disk is what a member persisted through Ready.
type disk struct {
	hard     HardState
	snap     *Snapshot
	snapHash uint64
	ents     []Entry
	hashes   []uint64 // chain hash after each entry of ents
}

func (d *disk) base() uint64 {
	if d.snap == nil {
		return 0
	}
	return d.snap.Index
}

func (d *disk) state() State {
	st := State{Hard: d.hard, Entries: slices.Clone(d.ents)}
	if d.snap != nil {
		s := *d.snap
		st.Snap = &s
	}
	return st
}

// hashAt returns the chain hash of the persisted log at index i, if it has it.
func (d *disk) hashAt(i uint64) (uint64, bool) {
	switch b := d.base(); {
	case i == b:
		return d.snapHash, true
	case i < b || i > b+uint64(len(d.ents)):
		return 0, false
	default:
		return d.hashes[i-b-1], true
	}
}

// persist applies rd's durable parts as the package documentation says; it
// returns the index of the first entry written (0: none).
func (d *disk) persist(rd Ready) (uint64, error) {
	if c := rd.Compacted; c != nil {
		b := d.base()
		if c.Index <= b || c.Index > b+uint64(len(d.ents)) {
			return 0, fmt.Errorf("Compacted at %d outside the persisted log (%d, %d]", c.Index, b, b+uint64(len(d.ents)))
		}
		k := c.Index - b
		d.ents, d.hashes = slices.Clone(d.ents[k:]), slices.Clone(d.hashes[k:])
		s := *c
		d.snap, d.snapHash = &s, appHashOf(s.Data)
	}
	if s := rd.Snapshot; s != nil {
		c := *s
		d.snap, d.snapHash = &c, appHashOf(c.Data)
		d.ents, d.hashes = nil, nil
	}
	var first uint64
	if len(rd.Entries) > 0 {
		first = rd.Entries[0].Index
		b := d.base()
		if first <= b || first > b+uint64(len(d.ents))+1 {
			return 0, fmt.Errorf("Ready.Entries start at %d, persisted log is (%d, %d]", first, b, b+uint64(len(d.ents)))
		}
		k := first - b - 1
		d.ents = append(d.ents[:k:k], rd.Entries...)
		d.hashes = d.hashes[:k:k]
		h := d.snapHash
		if k > 0 {
			h = d.hashes[k-1]
		}
		for _, e := range rd.Entries {
			h = entryHash(h, e)
			d.hashes = append(d.hashes, h)
		}
	}
	if rd.Hard != nil {
		d.hard = *rd.Hard
	}
	return first, nil
}

// entryHash chains e onto h (FNV-1a over the entry's fields). The application
// hashes what it applies the same way, so a log's chain hash at i equals the
// state hash of an application that applied that log up to i.
func entryHash(h uint64, e Entry) uint64 {
	const prime = 1099511628211
	if h == 0 {
		h = 14695981039346656037
	}
	var b [17]byte
	binary.LittleEndian.PutUint64(b[0:], e.Index)
	binary.LittleEndian.PutUint64(b[8:], e.Term)
	b[16] = byte(e.Type)
	for _, c := range b {
		h = (h ^ uint64(c)) * prime
	}
	for _, c := range e.Data {
		h = (h ^ uint64(c)) * prime
	}
	return h
}

// app is the replicated application: it applies entries in order and keeps a
// chain hash of everything applied. Its snapshot is (index, hash).
type app struct {
	applied uint64
	hash    uint64
}

func (a app) encode() []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint64(b, a.applied)
	binary.LittleEndian.PutUint64(b[8:], a.hash)
	return b
}

func decodeApp(b []byte) app {
	if len(b) != 16 {
		return app{}
	}
	return app{applied: binary.LittleEndian.Uint64(b), hash: binary.LittleEndian.Uint64(b[8:])}
}

func appHashOf(b []byte) uint64 { return decodeApp(b).hash }
