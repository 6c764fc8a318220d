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
	recDelete                      // a volume was deleted (its tombstone epoch): forget it, free its blocks
	recSyncPart                    // a part of a catch-up round: blocks for the block store, the log does not move
)

// mutation is a log change whose blocks may not be in the block store yet.
type mutation struct {
	entry *Entry    // a write, or
	sync  *Sync     // a delta, or
	part  *SyncPart // a part of a catch-up round (blocks only: the log does not move)
	// durable: the journal append completed (runtime only; every replayed mutation is durable).
	durable bool
}

// lsn is the log position a mutation brings the log to (a part brings it nowhere: 0).
func (m *mutation) lsn() LSN {
	switch {
	case m.entry != nil:
		return m.entry.LSN
	case m.sync != nil:
		return m.sync.Upto
	}
	return 0
}

// blocks lists the block numbers a mutation writes.
func (m *mutation) blocks() []uint64 {
	var out []uint64
	switch {
	case m.entry != nil:
		for i := uint64(0); i < m.entry.Count(); i++ {
			out = append(out, m.entry.Block+i)
		}
	case m.sync != nil:
		for _, b := range m.sync.Blocks {
			out = append(out, b.Block)
		}
	default:
		for _, b := range m.part.Blocks {
			out = append(out, b.Block)
		}
	}
	return out
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

func encodeRecSyncPart(s *SyncPart) []byte {
	e := encoder{b: make([]byte, 0, len(s.Blocks)*(BlockSize+24)+64)}
	e.b = append(e.b, byte(recSyncPart))
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

func encodeRecDelete(vol VolumeID, epoch Epoch) []byte {
	e := encoder{b: []byte{byte(recDelete)}}
	e.u64(uint64(vol))
	e.u64(uint64(epoch))
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
	vols  []volSnap
	cell  *cellDisk // the authority cell's Raft state (members only)
	tombs []tombRec // deleted volumes this node remembers, oldest first
	// syncing: volumes whose block store is part-way through a catch-up series (parts
	// applied, final Sync not yet), so a restart still knows it must not be promoted.
	syncing []VolumeID
}

// tombRec is a deleted volume on a host: nothing of it at or below epoch is accepted again.
type tombRec struct {
	vol   VolumeID
	epoch Epoch
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
			// Tag: 0 a Sync, 1 an entry (a bool before parts existed), 2 a part.
			switch {
			case m.entry != nil:
				e.u64(1)
				e.entry(m.entry)
			case m.sync != nil:
				e.u64(0)
				m.sync.encode(&e)
			default:
				e.u64(2)
				m.part.encode(&e)
			}
		}
	}
	e.bool(s.cell != nil)
	if s.cell != nil {
		e.u64(uint64(s.cell.inc))
		h := s.cell.hard
		e.raftState(&h, s.cell.snap, s.cell.entries)
	}
	e.u64(uint64(len(s.tombs)))
	for _, t := range s.tombs {
		e.u64(uint64(t.vol))
		e.u64(uint64(t.epoch))
	}
	e.u64(uint64(len(s.syncing)))
	for _, id := range s.syncing {
		e.u64(uint64(id))
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
	part   *SyncPart
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
	case recSyncPart:
		r.part = &SyncPart{}
		r.part.decode(&d)
		r.vol = r.part.Vol
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
	case recDelete:
		r.vol = VolumeID(d.u32())
		r.epoch = Epoch(d.u64())
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
			switch tag := d.u64(); tag {
			case 1:
				v.unapplied[j].entry = &Entry{}
				d.entry(v.unapplied[j].entry)
			case 0:
				v.unapplied[j].sync = &Sync{}
				v.unapplied[j].sync.decode(d)
			case 2:
				v.unapplied[j].part = &SyncPart{}
				v.unapplied[j].part.decode(d)
			default:
				d.fail("unapplied mutation tag %d", tag)
				v.unapplied[j].part = &SyncPart{}
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
	if n := d.length(maxHostTombs, 2); n > 0 {
		s.tombs = make([]tombRec, n)
		for i := range s.tombs {
			s.tombs[i] = tombRec{vol: VolumeID(d.u32()), epoch: Epoch(d.u64())}
		}
	}
	if n := d.length(maxList, 1); n > 0 {
		s.syncing = make([]VolumeID, n)
		for i := range s.syncing {
			s.syncing[i] = VolumeID(d.u32())
		}
	}
	return s
}
