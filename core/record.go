package core

import (
	"fmt"

	"github.com/cairnstore/cairn/core/raft"
)

// Journal records. Each is encoded with the wire encoder: one kind byte then fields.
// The storage layer frames and checksums records; here they are opaque payloads.
type recKind uint8

const (
	recConfig   recKind = iota + 1 // a replica adopted a configuration
	recEntry                       // a write joined a replica's log
	recSync                        // a replica was brought to its primary's state
	recRaft                        // the authority cell's Raft state: hard state, snapshot, entries
	recCellID                      // this node's incarnation in the authority cell (after a lost disk)
	recSnapshot                    // checkpoint: the node's whole durable state
	recPromote                     // a replica is about to ask to be promoted from an epoch
	recGrow                        // a primary is about to ask to grow a member back in at an epoch
)

// mutation is a log change whose blocks may not be in the block store yet.
type mutation struct {
	entry *Entry // a write, or
	sync  *Sync  // a delta
	// durable: the journal append completed (runtime only; every replayed mutation is durable).
	durable bool
}

func (m *mutation) lsn() LSN {
	if m.entry != nil {
		return m.entry.LSN
	}
	return m.sync.Upto
}

func encodeRecConfig(c *Config) []byte {
	e := encoder{b: []byte{byte(recConfig)}}
	e.config(c)
	return e.b
}

func encodeRecEntry(vol VolumeID, commit LSN, x *Entry) []byte {
	e := encoder{b: make([]byte, 0, len(x.Data)+64)}
	e.b = append(e.b, byte(recEntry))
	e.u64(uint64(vol))
	e.u64(uint64(commit))
	e.entry(x)
	return e.b
}

func encodeRecSync(s *Sync) []byte {
	e := encoder{b: []byte{byte(recSync)}}
	s.encode(&e)
	return e.b
}

func encodeRecPromote(vol VolumeID, from Epoch) []byte {
	e := encoder{b: []byte{byte(recPromote)}}
	e.u64(uint64(vol))
	e.u64(uint64(from))
	return e.b
}

func encodeRecGrow(vol VolumeID, at Epoch, member Addr) []byte {
	e := encoder{b: []byte{byte(recGrow)}}
	e.u64(uint64(vol))
	e.u64(uint64(at))
	e.u64(uint64(member))
	return e.b
}

func encodeRecCellID(inc uint32) []byte {
	e := encoder{b: []byte{byte(recCellID)}}
	e.u64(uint64(inc))
	return e.b
}

func encodeRecRaft(hard *raft.HardState, snap *raft.Snapshot, ents []raft.Entry) []byte {
	e := encoder{b: []byte{byte(recRaft)}}
	e.raftState(hard, snap, ents)
	return e.b
}

func (e *encoder) raftState(hard *raft.HardState, snap *raft.Snapshot, ents []raft.Entry) {
	e.bool(hard != nil)
	if hard != nil {
		e.u64(hard.Term)
		e.u64(hard.Vote)
		e.u64(hard.Commit)
	}
	e.bool(snap != nil)
	if snap != nil {
		e.raftSnapshot(snap)
	}
	e.raftEntries(ents)
}

func (d *decoder) raftState() (hard *raft.HardState, snap *raft.Snapshot, ents []raft.Entry) {
	if d.bool() {
		hard = &raft.HardState{Term: d.u64(), Vote: d.u64(), Commit: d.u64()}
	}
	if d.bool() {
		snap = d.raftSnapshot()
	}
	return hard, snap, d.raftEntries()
}

// volSnap is one replica's state in a snapshot.
type volSnap struct {
	cfg       Config
	last      LSN
	lastEpoch Epoch
	commit    LSN
	promote   Epoch // highest epoch this replica asked to be promoted from
	growAt    Epoch // a Grow of growNode asked for at this epoch
	growNode  Addr
	index     []BlockImage // Data empty: block -> LSN
	dedup     []DedupRec
	epochs    []DedupRec // Client unused; Req = epoch, LSN = lsn
	unapplied []mutation
}

type snapshot struct {
	vols []volSnap
	cell *cellDisk // the authority cell's Raft state (members only)
}

func encodeSnapshot(s *snapshot) []byte {
	e := encoder{b: []byte{byte(recSnapshot)}}
	e.u64(uint64(len(s.vols)))
	for i := range s.vols {
		v := &s.vols[i]
		e.config(&v.cfg)
		e.u64(uint64(v.last))
		e.u64(uint64(v.lastEpoch))
		e.u64(uint64(v.commit))
		e.u64(uint64(v.promote))
		e.u64(uint64(v.growAt))
		e.u64(uint64(v.growNode))
		e.u64(uint64(len(v.index)))
		for _, b := range v.index {
			e.u64(b.Block)
			e.u64(uint64(b.LSN))
		}
		e.dedup(v.dedup)
		e.dedup(v.epochs)
		e.u64(uint64(len(v.unapplied)))
		for _, m := range v.unapplied {
			if m.entry != nil {
				e.bool(true)
				e.entry(m.entry)
			} else {
				e.bool(false)
				m.sync.encode(&e)
			}
		}
	}
	e.bool(s.cell != nil)
	if s.cell != nil {
		e.u64(uint64(s.cell.inc))
		h := s.cell.hard
		e.raftState(&h, s.cell.snap, s.cell.entries)
	}
	return e.b
}

// record is a decoded journal record.
type record struct {
	kind   recKind
	vol    VolumeID
	commit LSN
	cfg    Config
	epoch  Epoch
	member Addr
	entry  *Entry
	sync   *Sync
	snap   *snapshot
	// recRaft
	hard  *raft.HardState
	rsnap *raft.Snapshot
	rents []raft.Entry
	inc   uint32 // recCellID
}

func decodeRecord(b []byte) (*record, error) {
	if len(b) < 1 {
		return nil, fmt.Errorf("%w: empty record", ErrDecode)
	}
	r := &record{kind: recKind(b[0])}
	d := decoder{b: b[1:]}
	switch r.kind {
	case recConfig:
		d.config(&r.cfg)
		r.vol = r.cfg.Volume
	case recEntry:
		r.vol = VolumeID(d.u32())
		r.commit = LSN(d.u64())
		r.entry = &Entry{}
		d.entry(r.entry)
	case recSync:
		r.sync = &Sync{}
		r.sync.decode(&d)
		r.vol = r.sync.Vol
	case recRaft:
		r.hard, r.rsnap, r.rents = d.raftState()
	case recCellID:
		r.inc = d.u32()
	case recPromote:
		r.vol = VolumeID(d.u32())
		r.epoch = Epoch(d.u64())
	case recGrow:
		r.vol = VolumeID(d.u32())
		r.epoch = Epoch(d.u64())
		r.member = Addr(d.u32())
	case recSnapshot:
		r.snap = decodeSnapshot(&d)
	default:
		return nil, fmt.Errorf("%w: unknown record kind %d", ErrDecode, b[0])
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: record kind %d: %v", ErrDecode, b[0], d.err)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: record kind %d: %d trailing bytes", ErrDecode, b[0], len(d.b))
	}
	return r, nil
}

func decodeSnapshot(d *decoder) *snapshot {
	s := &snapshot{}
	n := d.length(maxList, 7)
	s.vols = make([]volSnap, n)
	for i := range s.vols {
		v := &s.vols[i]
		d.config(&v.cfg)
		v.last = LSN(d.u64())
		v.lastEpoch = Epoch(d.u64())
		v.commit = LSN(d.u64())
		v.promote = Epoch(d.u64())
		v.growAt = Epoch(d.u64())
		v.growNode = Addr(d.u32())
		k := d.length(maxList, 2)
		v.index = make([]BlockImage, k)
		for j := range v.index {
			v.index[j] = BlockImage{Block: d.u64(), LSN: LSN(d.u64())}
		}
		v.dedup = d.dedup()
		v.epochs = d.dedup()
		k = d.length(maxList, 2)
		v.unapplied = make([]mutation, k)
		for j := range v.unapplied {
			if d.bool() {
				v.unapplied[j].entry = &Entry{}
				d.entry(v.unapplied[j].entry)
			} else {
				v.unapplied[j].sync = &Sync{}
				v.unapplied[j].sync.decode(d)
			}
			v.unapplied[j].durable = true
		}
	}
	if d.bool() {
		inc := d.u32()
		hard, snap, ents := d.raftState()
		s.cell = &cellDisk{inc: inc, snap: snap, entries: ents}
		if hard != nil {
			s.cell.hard = *hard
		}
	}
	return s
}
