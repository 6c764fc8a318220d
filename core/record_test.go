package core

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/cairnstore/cairn/core/raft"
	"testing"

	"pgregory.net/rapid"
)

// recDrawAuthConfig draws a configuration as the authority keeps them: at least one
// replica and one in-sync member (see TestSnapshotMinimalAuthConfigRoundTrips for why
// the property test does not draw empty sets here).
// recDrawCell draws the authority cell's Raft state as a checkpoint holds it.
func recDrawCell(t *rapid.T, label string) *cellDisk {
	if !rapid.Bool().Draw(t, label+"-present") {
		return nil
	}
	u := func(l string) uint64 { return rapid.Uint64().Draw(t, label+l) }
	d := &cellDisk{hard: raft.HardState{Term: u("-term"), Vote: u("-vote"), Commit: u("-commit")}}
	if rapid.Bool().Draw(t, label+"-hassnap") {
		d.snap = &raft.Snapshot{Index: u("-si"), Term: u("-st"), Voters: rapid.SliceOfN(rapid.Uint64(), 0, 5).Draw(t, label+"-voters"),
			Data: rapid.SliceOfN(rapid.Byte(), 0, 64).Draw(t, label+"-data")}
	}
	for i := range rapid.IntRange(0, 4).Draw(t, label+"-n") {
		d.entries = append(d.entries, raft.Entry{Index: u(fmt.Sprint("-i", i)), Term: u(fmt.Sprint("-t", i)),
			Type: raft.EntryType(rapid.IntRange(0, 2).Draw(t, fmt.Sprint(label, "-ty", i))),
			Data: rapid.SliceOfN(rapid.Byte(), 0, 32).Draw(t, fmt.Sprint(label, "-d", i))})
	}
	return d
}

func recDrawVolSnap(t *rapid.T, label string) volSnap {
	v := volSnap{
		cfg:       codecDrawConfig(t, label+"-cfg"),
		last:      LSN(rapid.Uint64().Draw(t, label+"-last")),
		lastEpoch: Epoch(rapid.Uint64().Draw(t, label+"-lastepoch")),
		commit:    LSN(rapid.Uint64().Draw(t, label+"-commit")),
		dedup:     codecDrawDedup(t, label+"-dedup"),
	}
	for i := range rapid.IntRange(0, 6).Draw(t, label+"-nindex") {
		v.index = append(v.index, BlockImage{
			Block: rapid.Uint64().Draw(t, fmt.Sprintf("%s-ix%d-block", label, i)),
			LSN:   LSN(rapid.Uint64().Draw(t, fmt.Sprintf("%s-ix%d-lsn", label, i))),
		})
	}
	for i := range rapid.IntRange(0, 5).Draw(t, label+"-nepochs") {
		v.epochs = append(v.epochs, DedupRec{ // Client unused; Req = epoch
			Req: rapid.Uint64().Draw(t, fmt.Sprintf("%s-ep%d-epoch", label, i)),
			LSN: LSN(rapid.Uint64().Draw(t, fmt.Sprintf("%s-ep%d-lsn", label, i))),
		})
	}
	for i := range rapid.IntRange(0, 3).Draw(t, label+"-nunapplied") {
		l := fmt.Sprintf("%s-un%d", label, i)
		// durable is runtime-only: the decoder marks every mutation durable.
		switch rapid.IntRange(0, 2).Draw(t, l+"-kind") {
		case 0:
			e := codecDrawEntry(t, l+"-entry")
			v.unapplied = append(v.unapplied, mutation{entry: &e, durable: true})
		case 1:
			v.unapplied = append(v.unapplied, mutation{sync: codecDrawSync(t, l+"-sync"), durable: true})
		default:
			v.unapplied = append(v.unapplied, mutation{part: codecDrawSyncPart(t, l+"-part"), durable: true})
		}
	}
	return v
}

func recDrawSnapshot(t *rapid.T) *snapshot {
	s := &snapshot{}
	for i := range rapid.IntRange(0, 3).Draw(t, "nvols") {
		s.vols = append(s.vols, recDrawVolSnap(t, fmt.Sprintf("vol%d", i)))
	}
	s.cell = recDrawCell(t, "cell")
	for i := range rapid.IntRange(0, 3).Draw(t, "ntombs") {
		s.tombs = append(s.tombs, tombRec{vol: VolumeID(rapid.Uint32().Draw(t, fmt.Sprint("tomb-vol-", i))),
			epoch: Epoch(rapid.Uint64().Draw(t, fmt.Sprint("tomb-epoch-", i)))})
	}
	for i := range rapid.IntRange(0, 2).Draw(t, "nsyncing") {
		s.syncing = append(s.syncing, VolumeID(rapid.Uint32().Draw(t, fmt.Sprint("syncing-", i))))
	}
	return s
}

// recSampleSnapshot is a small realistic snapshot covering every field.
func recSampleSnapshot() *snapshot {
	cfg := Config{Volume: 7, Blocks: 1024, RF: 3, Epoch: 4, Primary: 11, InSync: []Addr{11, 23}, Replicas: []Addr{11, 23, 37}}
	block := bytes.Repeat([]byte{1, 2, 3, 4}, BlockSize/4)
	return &snapshot{
		vols: []volSnap{
			{
				cfg: cfg, last: 12, lastEpoch: 4, commit: 10,
				index:  []BlockImage{{Block: 5, LSN: 3}, {Block: 1, LSN: 9}},
				dedup:  []DedupRec{{Client: 1001, Req: 1, LSN: 3}, {Client: 1001, Req: 2, LSN: 9}},
				epochs: []DedupRec{{Req: 3, LSN: 9}, {Req: 4, LSN: 11}, {Req: 4, LSN: 12}},
				unapplied: []mutation{
					{entry: &Entry{LSN: 11, Epoch: 4, Client: 1001, Req: 3, Block: 2, Data: block}, durable: true},
					{sync: &Sync{Vol: 7, Epoch: 4, From: 9, Upto: 12, UptoEpoch: 4, Commit: 10,
						Blocks: []BlockImage{{Block: 3, LSN: 12, Data: block}},
						Dedup:  []DedupRec{{Client: 1001, Req: 3, LSN: 11}}, ReqBase: 9, Round: 1}, durable: true},
					{part: &SyncPart{Vol: 7, Epoch: 4, ReqBase: 12, Base: 12, Start: 14, Upto: 15, Cursor: 0, Next: 4,
						Blocks: []BlockImage{{Block: 3, LSN: 14, Data: block}}}, durable: true},
				},
			},
			{cfg: Config{Volume: 8, Blocks: 1, RF: 1, Epoch: 1, Primary: 23, InSync: []Addr{23}, Replicas: []Addr{23}}},
		},
		cell: &cellDisk{hard: raft.HardState{Term: 3, Vote: 2, Commit: 9},
			snap:    &raft.Snapshot{Index: 7, Term: 2, Voters: []uint64{1, 2, 3}, Data: []byte("table")},
			entries: []raft.Entry{{Index: 8, Term: 3, Type: raft.EntryNoop}, {Index: 9, Term: 3, Data: []byte("cmd")}}},
		tombs:   []tombRec{{vol: 9, epoch: 6}, {vol: 1 << 31, epoch: 1 << 40}},
		syncing: []VolumeID{7},
	}
}

func recRequireSnapshotRoundTrip(t codecFataler, s *snapshot) []byte {
	t.Helper()
	b := encodeSnapshot(s)
	r, err := decodeRecord(b)
	if err != nil {
		t.Fatalf("decodeRecord(encodeSnapshot(s)): %v", err)
	}
	if r.kind != recSnapshot || r.snap == nil {
		t.Fatalf("decoded kind %d, snap %v", r.kind, r.snap)
	}
	if d := diffModuloEmpty(s, r.snap); d != "" {
		t.Fatalf("snapshot round trip differs at %s", d)
	}
	if again := encodeSnapshot(r.snap); !bytes.Equal(b, again) {
		t.Fatalf("re-encoded snapshot differs")
	}
	return b
}

func TestSnapshotSampleRoundTrip(t *testing.T) {
	recRequireSnapshotRoundTrip(t, recSampleSnapshot())
	recRequireSnapshotRoundTrip(t, &snapshot{})
}

func TestSnapshotRoundTripProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		recRequireSnapshotRoundTrip(t, recDrawSnapshot(t))
	})
}

// The snapshot a node actually writes comes from its live structures (index.all,
// dedup.upTo, epochs.list); it must decode into structures equal to the originals.
func TestSnapshotOfLiveStructuresRoundTrips(t *testing.T) {
	idx, dd, ep := newBlockIndex(), newDedupTable(), newEpochLog()
	for i := uint64(1); i <= 50; i++ {
		idx.set(i%17, LSN(i))
		dd.add(DedupRec{Client: i % 3, Req: i, LSN: LSN(i)})
		ep.set(LSN(i), Epoch(1+i/20))
	}
	cfg := Config{Volume: 1, Blocks: 64, RF: 1, Epoch: 3, Primary: 1, InSync: []Addr{1}, Replicas: []Addr{1}}
	s := &snapshot{vols: []volSnap{{cfg: cfg, last: 50, lastEpoch: 3, commit: 50,
		index: idx.all(), dedup: dd.upTo(^LSN(0)), epochs: ep.list()}}}
	b := recRequireSnapshotRoundTrip(t, s)
	r, _ := decodeRecord(b)
	v := r.snap.vols[0]
	idx2, dd2, ep2 := newBlockIndex(), newDedupTable(), newEpochLog()
	for _, x := range v.index {
		idx2.set(x.Block, x.LSN)
	}
	dd2.replace(v.dedup)
	for _, x := range v.epochs {
		ep2.set(x.LSN, Epoch(x.Req))
	}
	if d := diffModuloEmpty(idx.all(), idx2.all()); d != "" {
		t.Errorf("index differs at %s", d)
	}
	if d := diffModuloEmpty(dd.upTo(^LSN(0)), dd2.upTo(^LSN(0))); d != "" {
		t.Errorf("dedup differs at %s", d)
	}
	if d := diffModuloEmpty(ep.list(), ep2.list()); d != "" {
		t.Errorf("epochs differ at %s", d)
	}
}

func TestJournalRecordsRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := codecDrawConfig(t, "cfg")
		switch rapid.IntRange(0, 5).Draw(t, "which") {
		case 5:
			p := codecDrawSyncPart(t, "part")
			r, err := decodeRecord(encodeRecSyncPart(p))
			if err != nil || r.kind != recSyncPart || r.vol != p.Vol || r.part == nil {
				t.Fatalf("sync part record: %v %+v", err, r)
			}
			if d := diffModuloEmpty(p, r.part); d != "" {
				t.Fatalf("sync part record differs at %s", d)
			}
		case 4:
			vol, epoch := VolumeID(rapid.Uint32().Draw(t, "vol")), Epoch(rapid.Uint64().Draw(t, "epoch"))
			r, err := decodeRecord(encodeRecDelete(vol, epoch))
			if err != nil || r.kind != recDelete || r.vol != vol || r.epoch != epoch {
				t.Fatalf("delete record: %v %+v", err, r)
			}
		case 0:
			r, err := decodeRecord(encodeRecConfig(&cfg))
			if err != nil || r.kind != recConfig || r.vol != cfg.Volume {
				t.Fatalf("config record: %v %+v", err, r)
			}
			if d := diffModuloEmpty(cfg, r.cfg); d != "" {
				t.Fatalf("config record differs at %s", d)
			}
		case 1:
			vol := VolumeID(rapid.Uint32().Draw(t, "vol"))
			commit := LSN(rapid.Uint64().Draw(t, "commit"))
			e := codecDrawEntry(t, "entry")
			r, err := decodeRecord(encodeRecEntry(vol, commit, &e))
			if err != nil || r.kind != recEntry || r.vol != vol || r.commit != commit || r.entry == nil {
				t.Fatalf("entry record: %v %+v", err, r)
			}
			if d := diffModuloEmpty(&e, r.entry); d != "" {
				t.Fatalf("entry record differs at %s", d)
			}
		case 2:
			s := codecDrawSync(t, "sync")
			r, err := decodeRecord(encodeRecSync(s))
			if err != nil || r.kind != recSync || r.vol != s.Vol || r.sync == nil {
				t.Fatalf("sync record: %v %+v", err, r)
			}
			if d := diffModuloEmpty(s, r.sync); d != "" {
				t.Fatalf("sync record differs at %s", d)
			}
		case 3:
			c := recDrawCell(t, "raft")
			if c == nil {
				c = &cellDisk{}
			}
			h := c.hard
			r, err := decodeRecord(encodeRecRaft(&h, c.snap, c.entries))
			if err != nil || r.kind != recRaft || r.hard == nil {
				t.Fatalf("raft record: %v %+v", err, r)
			}
			got := &cellDisk{hard: *r.hard, snap: r.rsnap, entries: r.rents}
			if d := diffModuloEmpty(c, got); d != "" {
				t.Fatalf("raft record differs at %s", d)
			}
		}
	})
}

func recRequireError(t codecFataler, what string, b []byte) {
	t.Helper()
	var (
		r   *record
		err error
	)
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("%s: decodeRecord panicked: %v", what, p)
			}
		}()
		r, err = decodeRecord(b)
	}()
	if err == nil {
		t.Fatalf("%s: decodeRecord accepted % x", what, b[:min(len(b), 64)])
	}
	if r != nil || !errors.Is(err, ErrDecode) {
		t.Fatalf("%s: record %v, error %v (want nil and ErrDecode)", what, r, err)
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	recRequireError(t, "nil", nil)
	recRequireError(t, "empty", []byte{})
	snap := encodeSnapshot(recSampleSnapshot())
	for _, k := range []byte{0, byte(recSnapshot) + 1, 0x80, 0xff} {
		recRequireError(t, fmt.Sprintf("record kind %d", k), append([]byte{k}, snap[1:]...))
	}
	cfg := Config{Volume: 7, Blocks: 1, RF: 1, Epoch: 1, Primary: 1, InSync: []Addr{1}, Replicas: []Addr{1}}
	entry := Entry{LSN: 1, Epoch: 1, Client: 1, Req: 1, Block: 0, Data: make([]byte, BlockSize)}
	valid := map[string][]byte{
		"snapshot": snap,
		"config":   encodeRecConfig(&cfg),
		"entry":    encodeRecEntry(7, 1, &entry),
		"sync":     encodeRecSync(recSampleSnapshot().vols[0].unapplied[1].sync),
		"part":     encodeRecSyncPart(recSampleSnapshot().vols[0].unapplied[2].part),
		"raft":     encodeRecRaft(&raft.HardState{Term: 1}, nil, []raft.Entry{{Index: 1, Term: 1}}),
	}
	for name, b := range valid {
		if _, err := decodeRecord(b); err != nil {
			t.Fatalf("%s: valid record rejected: %v", name, err)
		}
		recRequireError(t, name+" with a trailing byte", append(bytes.Clone(b), 0))
		for n := range len(b) {
			recRequireError(t, fmt.Sprintf("%s truncated to %d of %d bytes", name, n, len(b)), b[:n])
		}
	}
	// Partial blocks are rejected inside records too.
	bad := entry
	bad.Data = make([]byte, BlockSize-1)
	recRequireError(t, "entry record with a partial block", encodeRecEntry(7, 1, &bad))
	s := recSampleSnapshot()
	s.vols[0].unapplied[0].entry.Data = make([]byte, 100)
	recRequireError(t, "snapshot with a partial-block entry", encodeSnapshot(s))
	s = recSampleSnapshot()
	s.vols[0].unapplied[1].sync.Blocks[0].Data = make([]byte, BlockSize+1)
	recRequireError(t, "snapshot with an oversized sync block", encodeSnapshot(s))
	// A huge count with nothing behind it.
	e := encoder{b: []byte{byte(recSnapshot)}}
	e.u64(1 << 40)
	recRequireError(t, "snapshot with 2^40 volumes", e.b)
}

func TestDecodeRecordRejectsTruncationProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := encodeSnapshot(recDrawSnapshot(t))
		for i := range 8 {
			n := rapid.IntRange(0, len(b)-1).Draw(t, fmt.Sprintf("cut%d", i))
			recRequireError(t, fmt.Sprintf("snapshot truncated to %d of %d bytes", n, len(b)), b[:n])
		}
	})
}

// BUG (core/record.go, decodeSnapshot): the authority-config list is read with
// d.length(maxList, 8), i.e. it assumes every Config takes at least 8 bytes, but a
// The smallest cell states round-trip: nothing but a zero hard state, and an empty snapshot.
func TestSnapshotMinimalCellRoundTrips(t *testing.T) {
	recRequireSnapshotRoundTrip(t, &snapshot{cell: &cellDisk{}})
	recRequireSnapshotRoundTrip(t, &snapshot{cell: &cellDisk{snap: &raft.Snapshot{}}})
}
