package storage_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/storage"
)

// The engine contract, checked as a rapid state machine against both file systems.
//
// Journal model: records appended before the last completed Sync or Checkpoint
// ("durable") always survive, in order; after a reopen the records that follow them are
// a prefix of the records appended since ("unsynced") — they may vanish, but are never
// reordered, corrupted or invented. The snapshot is always the last completed
// checkpoint's.
//
// Block model: a block reads back exactly what was last written to it while the engine
// stays up, or is closed and reopened without a power loss. After a power loss (MemFS
// Crash) a block reads back the value it had at the last checkpoint (or after the last
// crash, whose outcome the file system makes durable), or one of the versions written
// to it since — never anything else. A read must not fail, with one exception that is
// part of the block-file design (DESIGN.md 5.3: slots are 4104 bytes written in place,
// so a power loss can tear one; the core rewrites such blocks from the journal or a
// replica): a block written since its last durable point may, after a power loss, fail
// every read with an error matching ErrCorrupt and *core.CorruptBlockError naming it,
// until it is written again. Corrupt data is never returned.
//
// Actions: append, flush, sync, checkpoint, writeBlocks, deleteVol (DeleteVolume: a
// volume's blocks read as zeros; durable at the next checkpoint), readBlocks, crash (MemFS: power
// loss, then Open; OSFS: Close then Open — the OS keeps unsynced data, which the model
// allows), restart (Close then Open, no power loss, both file systems) and reopenClean
// (Sync, Close, Open: everything must be there).

const ecDir = "node"

func TestEngineContract(t *testing.T) {
	// Report failures by seed (-rapid.seed=...) rather than leaving fail files in the tree.
	if fl := flag.Lookup("rapid.nofailfile"); fl != nil && fl.Value.String() == "false" {
		fl.Value.Set("true")
		t.Cleanup(func() { fl.Value.Set("false") })
	}
	t.Run("OSFS", func(t *testing.T) {
		base := t.TempDir()
		rapid.Check(t, func(rt *rapid.T) {
			dir, err := os.MkdirTemp(base, "run")
			if err != nil {
				rt.Fatal(err)
			}
			rt.Cleanup(func() { os.RemoveAll(dir) })
			m := newECMachine(rt, storage.NewOSFS(dir), nil)
			rt.Repeat(m.actions())
		})
	})
	t.Run("MemFS", func(t *testing.T) {
		rapid.Check(t, func(rt *rapid.T) {
			mem := storage.NewMemFS(rapid.Uint64().Draw(rt, "seed"))
			m := newECMachine(rt, mem, mem)
			rt.Repeat(m.actions())
		})
	})
}

type ecKey struct {
	vol   core.VolumeID
	block uint64
}

// ecBlock is the model of one block.
type ecBlock struct {
	cur   []byte   // what a read returns now
	ckpt  []byte   // durable value: as of the last checkpoint or the last crash
	since [][]byte // versions written since then
}

type ecMachine struct {
	t   *rapid.T
	fs  storage.FS
	mem *storage.MemFS // nil for OSFS
	e   *storage.Engine

	hasSnap  bool
	snap     []byte
	durable  [][]byte // records after the snapshot known durable
	unsynced [][]byte // records appended since the last Sync/Checkpoint
	recNo    uint64

	blocks  map[ecKey]*ecBlock
	version uint64
}

var ecZero = make([]byte, storage.BlockSize)

func newECMachine(t *rapid.T, fs storage.FS, mem *storage.MemFS) *ecMachine {
	m := &ecMachine{t: t, fs: fs, mem: mem, blocks: map[ecKey]*ecBlock{}}
	m.open()
	t.Cleanup(func() {
		if m.e != nil {
			m.e.Close()
		}
	})
	return m
}

// ecBytes returns n deterministic pseudo-random bytes that start with a unique tag.
func ecBytes(tag, seed uint64, n int) []byte {
	b := make([]byte, n)
	x := seed ^ tag*0x9e3779b97f4a7c15
	for i := range b {
		x = x*6364136223846793005 + 1442695040888963407
		b[i] = byte(x >> 56)
	}
	var t [8]byte
	binary.LittleEndian.PutUint64(t[:], tag)
	copy(b, t[:])
	return b
}

func (m *ecMachine) open() {
	e, err := storage.Open(m.fs, ecDir)
	if err != nil {
		m.t.Fatalf("Open: %v", err)
	}
	m.e = e
}

func (m *ecMachine) actions() map[string]func(*rapid.T) {
	return map[string]func(*rapid.T){
		"append":      m.append,
		"flush":       m.flush,
		"sync":        m.sync,
		"checkpoint":  m.checkpoint,
		"writeBlocks": m.writeBlocks,
		"deleteVol":   m.deleteVolume,
		"readBlocks":  m.readBlocks,
		"crash":       m.crash,
		"restart":     m.restart,
		"reopenClean": m.reopenClean,
	}
}

func (m *ecMachine) append(t *rapid.T) {
	n := rapid.OneOf(rapid.IntRange(0, 64), rapid.IntRange(0, 9000)).Draw(t, "len")
	m.recNo++
	rec := ecBytes(m.recNo, rapid.Uint64().Draw(t, "recSeed"), n)
	if err := m.e.Append(rec); err != nil {
		t.Fatalf("Append: %v", err)
	}
	m.unsynced = append(m.unsynced, rec)
}

func (m *ecMachine) flush(t *rapid.T) {
	if err := m.e.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func (m *ecMachine) sync(t *rapid.T) {
	if err := m.e.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	m.durable = append(m.durable, m.unsynced...)
	m.unsynced = nil
}

func (m *ecMachine) checkpoint(t *rapid.T) {
	m.recNo++
	snap := ecBytes(m.recNo, rapid.Uint64().Draw(t, "snapSeed"), rapid.IntRange(8, 5000).Draw(t, "snapLen"))
	if err := m.e.Checkpoint(snap); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	m.hasSnap, m.snap, m.durable, m.unsynced = true, snap, nil, nil
	for _, b := range m.blocks {
		b.ckpt, b.since = b.cur, nil
	}
}

func (m *ecMachine) writeBlocks(t *rapid.T) {
	vol := core.VolumeID(rapid.IntRange(1, 3).Draw(t, "vol"))
	block := uint64(rapid.IntRange(0, 20).Draw(t, "block"))
	n := rapid.IntRange(1, 4).Draw(t, "n")
	zero := rapid.IntRange(0, 9).Draw(t, "zeroes") == 0 // sometimes write zero blocks
	data := make([]byte, 0, n*storage.BlockSize)
	for range n {
		m.version++
		if zero {
			data = append(data, ecZero...)
		} else {
			data = append(data, ecBytes(m.version, m.version, storage.BlockSize)...)
		}
	}
	if err := m.e.WriteBlocks(vol, block, data); err != nil {
		t.Fatalf("WriteBlocks(%d, %d, %d blocks): %v", vol, block, n, err)
	}
	for i := range n {
		k := ecKey{vol, block + uint64(i)}
		b := m.blocks[k]
		if b == nil {
			b = &ecBlock{cur: ecZero, ckpt: ecZero}
			m.blocks[k] = b
		}
		v := data[i*storage.BlockSize : (i+1)*storage.BlockSize]
		b.cur = v
		b.since = append(b.since, v)
	}
}

// deleteVolume drops a volume's blocks: they read as zeros at once; like a write, the
// deletion is durable at the next checkpoint (after a power loss before it, a block may
// read any version since its durable one, zeros included).
func (m *ecMachine) deleteVolume(t *rapid.T) {
	vol := core.VolumeID(rapid.IntRange(1, 4).Draw(t, "vol")) // 4: never written
	if err := m.e.DeleteVolume(vol); err != nil {
		t.Fatalf("DeleteVolume(%d): %v", vol, err)
	}
	for k, b := range m.blocks {
		if k.vol == vol {
			b.cur = ecZero
			b.since = append(b.since, ecZero)
		}
	}
	m.checkRead(t, vol, 0, 22)
}

// want is what block k must read as; nil means "fails as corrupt" (a torn slot).
func (m *ecMachine) want(k ecKey) []byte {
	if b := m.blocks[k]; b != nil {
		return b.cur
	}
	return ecZero
}

// checkCorrupt checks that err reports block k as corrupt.
func ecCheckCorrupt(t *rapid.T, err error, k ecKey) {
	var ce *core.CorruptBlockError
	if !errors.Is(err, storage.ErrCorrupt) || !errors.As(err, &ce) || ce.Vol != k.vol || ce.Block != k.block {
		t.Fatalf("ReadBlocks: error %v, want one matching ErrCorrupt and *core.CorruptBlockError{%d, %d}", err, k.vol, k.block)
	}
}

func (m *ecMachine) readBlocks(t *rapid.T) {
	vol := core.VolumeID(rapid.IntRange(0, 3).Draw(t, "vol"))
	block := uint64(rapid.IntRange(0, 22).Draw(t, "block"))
	n := rapid.IntRange(1, 5).Draw(t, "n")
	m.checkRead(t, vol, block, n)
}

// checkRead reads n blocks and checks them against the model.
func (m *ecMachine) checkRead(t *rapid.T, vol core.VolumeID, block uint64, n int) {
	buf := bytes.Repeat([]byte{0xAA}, n*storage.BlockSize)
	err := m.e.ReadBlocks(vol, block, buf)
	for i := range n {
		if k := (ecKey{vol, block + uint64(i)}); m.want(k) == nil {
			// The read stops at the first torn slot; what it left in buf is unspecified.
			ecCheckCorrupt(t, err, k)
			return
		}
	}
	if err != nil {
		t.Fatalf("ReadBlocks(%d, %d, %d blocks): %v (no media corruption here, no torn slot in range)", vol, block, n, err)
	}
	for i := range n {
		k := ecKey{vol, block + uint64(i)}
		if got, want := buf[i*storage.BlockSize:(i+1)*storage.BlockSize], m.want(k); !bytes.Equal(got, want) {
			t.Fatalf("volume %d block %d: read %s, want %s", k.vol, k.block, ecDescribe(got), ecDescribe(want))
		}
	}
}

// ecDescribe names a block value by its version tag.
func ecDescribe(b []byte) string {
	switch {
	case b == nil:
		return "torn (a corrupt-block error)"
	case bytes.Equal(b, ecZero):
		return "zeros"
	}
	if want := ecBytes(binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b), len(b)); bytes.Equal(b, want) {
		return fmt.Sprintf("version %d", binary.LittleEndian.Uint64(b))
	}
	return fmt.Sprintf("garbage starting %x", b[:16])
}

// crash is a power loss on MemFS, and a process restart on OSFS.
func (m *ecMachine) crash(t *rapid.T) {
	if m.mem == nil {
		m.restart(t)
		return
	}
	m.mem.Crash()
	m.e = nil
	m.open()
	recs := m.checkLoad(t)
	// Everything that survived a crash is durable now.
	m.durable, m.unsynced = recs, nil
	for _, k := range slices.SortedFunc(maps.Keys(m.blocks), ecCmp) {
		b := m.blocks[k]
		got := make([]byte, storage.BlockSize)
		err := m.e.ReadBlocks(k.vol, k.block, got)
		cands := append([][]byte{b.ckpt}, b.since...)
		if err != nil {
			if len(b.since) == 0 && b.ckpt != nil {
				t.Fatalf("after crash: ReadBlocks(%d, %d): %v; nothing was written to it since it was "+
					"durable (%s)", k.vol, k.block, err, ecDescribe(b.ckpt))
			}
			ecCheckCorrupt(t, err, k) // a torn slot: detected, never returned
			got = nil
		} else if !slices.ContainsFunc(cands, func(v []byte) bool { return v != nil && bytes.Equal(v, got) }) {
			var names []string
			for _, v := range cands {
				names = append(names, ecDescribe(v))
			}
			t.Fatalf("after crash: volume %d block %d reads %s, want one of %v (the first is the durable one)",
				k.vol, k.block, ecDescribe(got), names)
		}
		b.cur, b.ckpt, b.since = got, got, nil
	}
}

// restart closes the engine without syncing and opens it again, without a power loss.
func (m *ecMachine) restart(t *rapid.T) {
	if err := m.e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	m.open()
	recs := m.checkLoad(t)
	// Records that were written out survive (nothing was lost), but are not durable yet:
	// only the next Sync makes them so.
	m.unsynced = recs[len(m.durable):]
	m.checkAllBlocks(t)
}

func (m *ecMachine) reopenClean(t *rapid.T) {
	m.sync(t)
	if err := m.e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	m.open()
	recs := m.checkLoad(t)
	if len(recs) != len(m.durable) {
		t.Fatalf("after a clean reopen: %d records, want all %d", len(recs), len(m.durable))
	}
	m.checkAllBlocks(t)
}

// checkLoad checks what recovery found against the model and returns the records.
func (m *ecMachine) checkLoad(t *rapid.T) [][]byte {
	snap, recs, err := m.e.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if m.hasSnap != (snap != nil) || !bytes.Equal(snap, m.snap) {
		t.Fatalf("Load: snapshot %s, want %s", ecDescribeRec(snap), ecDescribeRec(m.snap))
	}
	if len(recs) < len(m.durable) {
		t.Fatalf("Load: %d records, but %d were durable", len(recs), len(m.durable))
	}
	for i, r := range recs {
		var want []byte
		switch {
		case i < len(m.durable):
			want = m.durable[i]
		case i-len(m.durable) < len(m.unsynced):
			want = m.unsynced[i-len(m.durable)]
		default:
			t.Fatalf("Load: record %d (%s) was never appended (%d durable, %d unsynced)",
				i, ecDescribeRec(r), len(m.durable), len(m.unsynced))
		}
		if !bytes.Equal(r, want) {
			t.Fatalf("Load: record %d is %s, want %s (%d durable)", i, ecDescribeRec(r), ecDescribeRec(want), len(m.durable))
		}
	}
	if _, _, err := m.e.Load(); err == nil {
		t.Fatalf("second Load succeeded")
	}
	return recs
}

func ecDescribeRec(b []byte) string {
	if b == nil {
		return "nil"
	}
	if len(b) >= 8 {
		return fmt.Sprintf("#%d (%d bytes)", binary.LittleEndian.Uint64(b), len(b))
	}
	return fmt.Sprintf("%x", b)
}

func (m *ecMachine) checkAllBlocks(t *rapid.T) {
	for _, k := range slices.SortedFunc(maps.Keys(m.blocks), ecCmp) {
		m.checkRead(t, k.vol, k.block, 1)
	}
}

func ecCmp(a, b ecKey) int {
	if a.vol != b.vol {
		return int(a.vol) - int(b.vol)
	}
	switch {
	case a.block < b.block:
		return -1
	case a.block > b.block:
		return 1
	}
	return 0
}

// ---- regressions for what the contract test found ----

// A checkpoint makes every block write issued before it durable — including writes made
// before the engine was last closed and reopened without a power loss (a process
// restart). The block store tracks what to fsync (dirty files, created files) per Engine
// instance only, so after a reopen Checkpoint syncs neither the block file nor the
// blocks directory.
func TestEngineCheckpointAfterReopenSyncsEarlierBlockWrites(t *testing.T) {
	data := ecBytes(1, 1, storage.BlockSize)
	open := func(t *testing.T, mem *storage.MemFS) *storage.Engine {
		e, err := storage.Open(mem, ecDir)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.Load(); err != nil {
			t.Fatal(err)
		}
		return e
	}
	for _, c := range []struct {
		name     string
		existing bool // the block file was made durable by an earlier checkpoint
	}{{"new block file", false}, {"existing block file", true}} {
		t.Run(c.name, func(t *testing.T) {
			var bad []string
			for seed := uint64(1); seed <= 30; seed++ {
				mem := storage.NewMemFS(seed)
				e := open(t, mem)
				if c.existing {
					if err := e.WriteBlocks(7, 9, ecZero); err != nil {
						t.Fatal(err)
					}
					if err := e.Checkpoint([]byte("first")); err != nil {
						t.Fatal(err)
					}
				}
				if err := e.WriteBlocks(7, 3, data); err != nil {
					t.Fatal(err)
				}
				if err := e.Close(); err != nil { // process restart, no power loss
					t.Fatal(err)
				}
				e = open(t, mem)
				if err := e.Checkpoint([]byte("snap")); err != nil {
					t.Fatal(err)
				}
				mem.Crash()
				e = open(t, mem)
				buf := make([]byte, storage.BlockSize)
				err := e.ReadBlocks(7, 3, buf)
				if err != nil || !bytes.Equal(buf, data) {
					bad = append(bad, fmt.Sprintf("seed %d: read %s (err %v)", seed, ecDescribe(buf), err))
				}
			}
			if len(bad) > 0 {
				t.Fatalf("a block written before a restart and then checkpointed was lost by a power loss in %d of 30 "+
					"runs, e.g. %s", len(bad), bad[0])
			}
		})
	}
}

// Records recovered by Open but never fsynced (written before a process restart) must
// not be vouched for as durable by frames appended afterwards: OpenJournal sets the
// durable watermark to the last recovered record without syncing the segment (it syncs
// only when it truncates), so a later power loss that tears the recovered-but-unsynced
// record while keeping a newer frame makes Open report mid-journal corruption.
func TestJournalUnsyncedRecordsRecoveredAfterRestartSurviveCrash(t *testing.T) {
	var bad []string
	for seed := uint64(1); seed <= 100; seed++ {
		mem := storage.NewMemFS(seed)
		j, _, err := storage.OpenJournal(mem, "j")
		if err != nil {
			t.Fatal(err)
		}
		a, b, c := []byte("a: synced"), []byte("b: written, never synced"), []byte("c: written after restart")
		j.Append(a)
		if err := j.Sync(); err != nil {
			t.Fatal(err)
		}
		j.Append(b)
		if err := j.Flush(); err != nil {
			t.Fatal(err)
		}
		j.Close() // process restart, no power loss
		j, rec, err := storage.OpenJournal(mem, "j")
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Records) != 2 {
			t.Fatalf("seed %d: %d records after restart, want 2", seed, len(rec.Records))
		}
		j.Append(c)
		if err := j.Flush(); err != nil {
			t.Fatal(err)
		}
		mem.Crash()
		j, rec, err = storage.OpenJournal(mem, "j")
		if err != nil {
			bad = append(bad, fmt.Sprintf("seed %d: %v", seed, err))
			continue
		}
		j.Close()
		want := [][]byte{a, b, c}
		if len(rec.Records) == 0 || len(rec.Records) > 3 {
			t.Fatalf("seed %d: %d records", seed, len(rec.Records))
		}
		for i, r := range rec.Records {
			if !bytes.Equal(r, want[i]) {
				t.Fatalf("seed %d: record %d is %q, want %q", seed, i, r, want[i])
			}
		}
	}
	if len(bad) > 0 {
		t.Fatalf("no media corruption, only a power loss of unsynced writes, yet Open failed in %d of 100 runs, e.g. %s",
			len(bad), bad[0])
	}
}
