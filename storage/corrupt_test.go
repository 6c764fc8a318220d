package storage_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/storage"
)

// Media corruption: bytes flipped on disk, on the OS file system (real files) and on
// MemFS (CorruptByte). Corruption is always detected and reported, never returned as
// data, and never mistaken for a torn tail when later records prove it was durable.

const (
	ctDir       = "node"
	ctSeg1      = ctDir + "/journal/00000000000000000001.log"
	ctSegHeader = 32
	ctFrameHdr  = 25
	ctSlot      = storage.BlockSize + 8
)

// ctEnv is one file system under test.
type ctEnv struct {
	fs  storage.FS
	mem *storage.MemFS // nil for OSFS
}

// ctEach runs f against a fresh OSFS (in t.TempDir()) and a fresh MemFS.
func ctEach(t *testing.T, f func(t *testing.T, env *ctEnv)) {
	t.Helper()
	t.Run("OSFS", func(t *testing.T) { f(t, &ctEnv{fs: storage.NewOSFS(t.TempDir())}) })
	t.Run("MemFS", func(t *testing.T) {
		mem := storage.NewMemFS(7)
		f(t, &ctEnv{fs: mem, mem: mem})
	})
}

// flip damages the byte at off in name: MemFS.CorruptByte (one random bit), or on the
// OS file system the bits in mask (1 << off%8 when mask is 0), written back and synced.
func (env *ctEnv) flip(t *testing.T, name string, off int64, mask byte) {
	t.Helper()
	if env.mem != nil {
		if err := env.mem.CorruptByte(name, off); err != nil {
			t.Fatal(err)
		}
		return
	}
	if mask == 0 {
		mask = 1 << (off % 8)
	}
	f, err := env.fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatalf("read %s at %d: %v", name, off, err)
	}
	b[0] ^= mask
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// crash is a power loss on MemFS; on the OS file system the caller has just closed the
// engine, which is what a process crash leaves behind.
func (env *ctEnv) crash() {
	if env.mem != nil {
		env.mem.Crash()
	}
}

func (env *ctEnv) size(t *testing.T, name string) int64 {
	t.Helper()
	f, err := env.fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func ctOpen(t *testing.T, fs storage.FS) (*storage.Engine, []byte, [][]byte) {
	t.Helper()
	e, err := storage.Open(fs, ctDir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	snap, recs, err := e.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return e, snap, recs
}

func ctRecord(i int) []byte {
	return fmt.Appendf(nil, "record %d %s", i, strings.Repeat(string(rune('a'+i%26)), 10+i*37))
}

// ctWriteJournal writes n records into a fresh engine, each appended and synced on its
// own (so every frame's durable watermark covers all records before it), and closes
// it. It returns the records and the offset of each frame in segment 1.
func ctWriteJournal(t *testing.T, fs storage.FS, n int) ([][]byte, []int64) {
	t.Helper()
	e, _, _ := ctOpen(t, fs)
	var recs [][]byte
	var offs []int64
	off := int64(ctSegHeader)
	for i := 1; i <= n; i++ {
		r := ctRecord(i)
		if err := e.Append(r); err != nil {
			t.Fatal(err)
		}
		if err := e.Sync(); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
		offs = append(offs, off)
		off += int64(ctFrameHdr + len(r))
	}
	if got := e.JournalSize(); got != off {
		t.Fatalf("JournalSize %d, want %d (frame layout)", got, off)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return recs, offs
}

func ctSameRecords(t *testing.T, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("record %d is %q, want %q", i, got[i], want[i])
		}
	}
}

// ---- (a) block files ----

func ctBlock(vol core.VolumeID, b uint64) []byte {
	return bytes.Repeat(fmt.Appendf(nil, "vol %d block %d|", vol, b), storage.BlockSize)[:storage.BlockSize]
}

func TestCorruptBlockDetected(t *testing.T) {
	const vol = core.VolumeID(5)
	volFile := ctDir + "/blocks/vol-00000005.dat"
	cases := []struct {
		name  string
		block uint64
		off   int64 // within the slot
	}{
		{"data first byte", 2, 0},
		{"data middle", 2, 2049},
		{"data last byte", 2, storage.BlockSize - 1},
		{"crc", 2, storage.BlockSize + 1},
		{"magic", 2, storage.BlockSize + 6},
		{"first block", 0, 100},
		{"last block", 5, storage.BlockSize + 7},
		{"never written slot", 3, 10}, // an all-zero slot with one bit set
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctEach(t, func(t *testing.T, env *ctEnv) {
				e, _, _ := ctOpen(t, env.fs)
				var data []byte
				for b := uint64(0); b < 6; b++ {
					data = append(data, ctBlock(vol, b)...)
				}
				if err := e.WriteBlocks(vol, 0, data[:3*storage.BlockSize]); err != nil {
					t.Fatal(err)
				}
				// Block 3 is never written.
				if err := e.WriteBlocks(vol, 4, data[4*storage.BlockSize:]); err != nil {
					t.Fatal(err)
				}
				copy(data[3*storage.BlockSize:], make([]byte, storage.BlockSize))
				if err := e.Checkpoint([]byte("snap")); err != nil {
					t.Fatal(err)
				}
				if err := e.Close(); err != nil {
					t.Fatal(err)
				}
				env.flip(t, volFile, int64(c.block)*ctSlot+c.off, 0)
				e, _, _ = ctOpen(t, env.fs)
				defer e.Close()

				checkErr := func(err error, what string) {
					t.Helper()
					var ce *core.CorruptBlockError
					if !errors.Is(err, storage.ErrCorrupt) {
						t.Fatalf("%s: error %v, want one matching storage.ErrCorrupt", what, err)
					}
					if !errors.As(err, &ce) || ce.Vol != vol || ce.Block != c.block {
						t.Fatalf("%s: error %v, want a *core.CorruptBlockError for volume %d block %d (got %+v)", what, err, vol, c.block, ce)
					}
				}
				buf := make([]byte, storage.BlockSize)
				checkErr(e.ReadBlocks(vol, c.block, buf), "single-block read")
				all := make([]byte, 6*storage.BlockSize)
				checkErr(e.ReadBlocks(vol, 0, all), "read of all six blocks")
				// Every other block still reads back exactly, alone and in runs that stop
				// short of the damaged one.
				for b := uint64(0); b < 6; b++ {
					if b == c.block {
						continue
					}
					if err := e.ReadBlocks(vol, b, buf); err != nil {
						t.Fatalf("block %d: %v", b, err)
					}
					if !bytes.Equal(buf, data[b*storage.BlockSize:(b+1)*storage.BlockSize]) {
						t.Fatalf("block %d reads wrong data", b)
					}
				}
				if c.block > 0 {
					run := make([]byte, c.block*storage.BlockSize)
					if err := e.ReadBlocks(vol, 0, run); err != nil || !bytes.Equal(run, data[:len(run)]) {
						t.Fatalf("blocks before the damaged one: %v", err)
					}
				}
				// Rewriting the block repairs it.
				if err := e.WriteBlocks(vol, c.block, ctBlock(vol, 99)); err != nil {
					t.Fatal(err)
				}
				if err := e.ReadBlocks(vol, c.block, buf); err != nil || !bytes.Equal(buf, ctBlock(vol, 99)) {
					t.Fatalf("after rewrite: %v", err)
				}
			})
		})
	}
}

// ---- (b) the middle of a synced journal ----

func TestCorruptJournalMiddle(t *testing.T) {
	const n = 5
	// Positions inside a frame: length, crc, seq, durable, type, payload (first, last).
	fields := []struct {
		name string
		off  func(payload int) int64
	}{
		{"len", func(int) int64 { return 1 }},
		{"crc", func(int) int64 { return 6 }},
		{"seq", func(int) int64 { return 8 }},
		{"durable", func(int) int64 { return 17 }},
		{"type", func(int) int64 { return 24 }},
		{"payload first", func(int) int64 { return ctFrameHdr }},
		{"payload last", func(p int) int64 { return int64(ctFrameHdr + p - 1) }},
	}
	for k := 1; k < n; k++ { // record n (the last) has no later frame to vouch for it
		for _, fl := range fields {
			t.Run(fmt.Sprintf("record %d %s", k, fl.name), func(t *testing.T) {
				ctEach(t, func(t *testing.T, env *ctEnv) {
					recs, offs := ctWriteJournal(t, env.fs, n)
					env.flip(t, ctSeg1, offs[k-1]+fl.off(len(recs[k-1])), 0)
					ctWantCorrupt(t, env.fs, offs[k-1])
				})
			})
		}
	}
}

// ctWantCorrupt checks that Open fails with a *CorruptError at off in segment 1.
func ctWantCorrupt(t *testing.T, fs storage.FS, off int64) {
	t.Helper()
	e, err := storage.Open(fs, ctDir)
	if err == nil {
		_, recs, _ := e.Load()
		e.Close()
		t.Fatalf("Open succeeded with %d records; want a corruption error", len(recs))
	}
	var ce *storage.CorruptError
	if !errors.Is(err, storage.ErrCorrupt) || !errors.As(err, &ce) {
		t.Fatalf("Open: %v; want an error matching ErrCorrupt and *storage.CorruptError", err)
	}
	if ce.Offset != off || !strings.HasSuffix(ce.Segment, "00000000000000000001.log") {
		t.Fatalf("Open: %v; want segment ...01.log, offset %d", err, off)
	}
}

// The snapshot frame that starts a checkpointed segment is vouched for by the records
// synced after it.
func TestCorruptJournalSnapshotFrame(t *testing.T) {
	ctEach(t, func(t *testing.T, env *ctEnv) {
		e, _, _ := ctOpen(t, env.fs)
		for i := range 3 {
			if err := e.Append(ctRecord(i)); err != nil {
				t.Fatal(err)
			}
		}
		snap := []byte("the snapshot")
		if err := e.Checkpoint(snap); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := e.Append(ctRecord(10 + i)); err != nil {
				t.Fatal(err)
			}
			if err := e.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		e.Close()
		seg := ctDir + "/journal/00000000000000000002.log"
		env.flip(t, seg, ctSegHeader+ctFrameHdr+3, 0)
		_, err := storage.Open(env.fs, ctDir)
		var ce *storage.CorruptError
		if !errors.As(err, &ce) || !errors.Is(err, storage.ErrCorrupt) || ce.Offset != ctSegHeader || !strings.HasSuffix(ce.Segment, "2.log") {
			t.Fatalf("Open: %v; want a *CorruptError at offset %d of segment 2", err, ctSegHeader)
		}
	})
}

// ---- (c) the last record, never synced, after a crash ----

func TestCorruptUnsyncedLastRecordTruncated(t *testing.T) {
	t.Run("OSFS", func(t *testing.T) {
		env := &ctEnv{fs: storage.NewOSFS(t.TempDir())}
		recs, offs := ctWriteJournal(t, env.fs, 3)
		end := offs[2] + int64(ctFrameHdr+len(recs[2]))
		e, _, _ := ctOpen(t, env.fs)
		last := ctRecord(4)
		if err := e.Append(last); err != nil {
			t.Fatal(err)
		}
		if err := e.Flush(); err != nil {
			t.Fatal(err)
		}
		e.Close() // the process dies; the record reached the file but was never synced
		env.flip(t, ctSeg1, end+ctFrameHdr+5, 0)
		ctCheckTruncated(t, env, recs, end, int64(ctFrameHdr+len(last)))
	})
	t.Run("MemFS", func(t *testing.T) {
		tried := 0
		for seed := uint64(1); seed <= 200 && tried < 10; seed++ {
			mem := storage.NewMemFS(seed)
			env := &ctEnv{fs: mem, mem: mem}
			recs, offs := ctWriteJournal(t, env.fs, 3)
			end := offs[2] + int64(ctFrameHdr+len(recs[2]))
			e, _, _ := ctOpen(t, env.fs)
			if err := e.Append(ctRecord(4)); err != nil {
				t.Fatal(err)
			}
			if err := e.Flush(); err != nil {
				t.Fatal(err)
			}
			env.flip(t, ctSeg1, end+ctFrameHdr+5, 0) // in the unsynced write, too
			env.crash()
			size := env.size(t, ctSeg1)
			if size <= end || ctZeroFrom(t, env, end, size) {
				continue // the crash dropped the whole record (perhaps keeping zero fill)
			}
			tried++
			ctCheckTruncated(t, env, recs, end, size-end)
		}
		if tried == 0 {
			t.Fatal("no crash kept any of the unsynced record")
		}
	})
}

// ctZeroFrom reports whether the first segment holds only zeros in [from, size).
func ctZeroFrom(t *testing.T, env *ctEnv, from, size int64) bool {
	t.Helper()
	f, err := env.fs.Open(ctSeg1)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, size-from)
	if _, err := f.ReadAt(b, from); err != nil {
		t.Fatal(err)
	}
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

func ctCheckTruncated(t *testing.T, env *ctEnv, synced [][]byte, end, wantCut int64) {
	t.Helper()
	j, rec, err := storage.OpenJournal(env.fs, ctDir+"/journal")
	if err != nil {
		t.Fatalf("OpenJournal: %v (a damaged tail that was never synced is a torn write)", err)
	}
	ctSameRecords(t, rec.Records, synced)
	// Truncated counts the torn bytes up to the last nonzero one (zeros after it are
	// indistinguishable from the journal's preallocated tail).
	if rec.Truncated <= 0 || rec.Truncated > wantCut {
		t.Fatalf("Truncated = %d, want 1 to %d", rec.Truncated, wantCut)
	}
	j.Close()
	if got := env.size(t, ctSeg1); got != end {
		t.Fatalf("segment is %d bytes after recovery, want %d", got, end)
	}
	ctAppendReopen(t, env.fs, synced)
}

// ctAppendReopen appends one record to the recovered engine, syncs, reopens, and checks
// that the records are prev plus the new one.
func ctAppendReopen(t *testing.T, fs storage.FS, prev [][]byte) {
	t.Helper()
	e, _, recs := ctOpen(t, fs)
	ctSameRecords(t, recs, prev)
	extra := []byte("appended after recovery")
	if err := e.Append(extra); err != nil {
		t.Fatal(err)
	}
	if err := e.Sync(); err != nil {
		t.Fatal(err)
	}
	e.Close()
	e, _, recs = ctOpen(t, fs)
	defer e.Close()
	ctSameRecords(t, recs, append(append([][]byte{}, prev...), extra))
}

// ---- (d) a zeroed tail ----

func TestCorruptZeroedTail(t *testing.T) {
	for _, n := range []int{1, 24, 25, 26, 4096, 10000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ctEach(t, func(t *testing.T, env *ctEnv) {
				recs, _ := ctWriteJournal(t, env.fs, 4)
				size := env.size(t, ctSeg1)
				f, err := env.fs.Open(ctSeg1)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.WriteAt(make([]byte, n), size); err != nil {
					t.Fatal(err)
				}
				f.Sync()
				f.Close()
				j, rec, err := storage.OpenJournal(env.fs, ctDir+"/journal")
				if err != nil {
					t.Fatalf("OpenJournal: %v", err)
				}
				ctSameRecords(t, rec.Records, recs)
				// A zero tail is what preallocation leaves: nothing torn, nothing counted.
				if rec.Truncated != 0 {
					t.Fatalf("Truncated = %d, want 0 for a zero tail", rec.Truncated)
				}
				j.Close()
				if got := env.size(t, ctSeg1); got > size {
					t.Fatalf("segment is %d bytes, want at most %d: the zeroed tail was not cut", got, size)
				}
				ctAppendReopen(t, env.fs, recs)
			})
		})
	}
}

// ---- (e) the segment header ----

func TestCorruptSegmentHeader(t *testing.T) {
	ctEach(t, func(t *testing.T, env *ctEnv) {
		ctWriteJournal(t, env.fs, 3)
		f, err := env.fs.Open(ctSeg1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte("GARBAGE!"), 0); err != nil {
			t.Fatal(err)
		}
		f.Sync()
		f.Close()
		ctWantCorrupt(t, env.fs, 0)
	})
	// The only segment, too short to hold a header and with nothing after it: its creation
	// never completed (the header is made durable before anything follows it), so the
	// journal starts empty and the segment is written afresh.
	ctEach(t, func(t *testing.T, env *ctEnv) {
		if err := env.fs.MkdirAll("j"); err != nil {
			t.Fatal(err)
		}
		f, err := env.fs.Create("j/00000000000000000001.log")
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt([]byte("CAIRN"), 0)
		f.Sync()
		f.Close()
		j, rec, err := storage.OpenJournal(env.fs, "j")
		if err != nil || len(rec.Records) != 0 || rec.Snapshot != nil {
			t.Fatalf("OpenJournal of a torn 5-byte segment: %v, %+v; want an empty journal", err, rec)
		}
		if err := j.Append([]byte("after")); err != nil {
			t.Fatal(err)
		}
		if err := j.Sync(); err != nil {
			t.Fatal(err)
		}
		j.Close()
		if _, rec, err := storage.OpenJournal(env.fs, "j"); err != nil || len(rec.Records) != 1 {
			t.Fatalf("reopen: %v, %d records; want the one appended", err, len(rec.Records))
		}
	})
	// A bad header followed by data is corruption: the header was durable before anything
	// was written after it.
	ctEach(t, func(t *testing.T, env *ctEnv) {
		recs, _ := ctWriteJournal(t, env.fs, 3)
		_ = recs
		env.flip(t, ctSeg1, 9, 1)
		ctWantCorrupt(t, env.fs, 0)
	})
}

// Damage to any single bit of the segment header must never make Open succeed with
// fewer records than were synced: it fails, or (if the damage is harmless) returns them
// all.
func TestCorruptSegmentHeaderEveryBit(t *testing.T) {
	for _, n := range []int{2, 5} {
		t.Run(fmt.Sprintf("%d records", n), func(t *testing.T) {
			var lost []string
			for off := int64(0); off < ctSegHeader; off++ {
				for bit := range 8 {
					fs := storage.NewMemFS(1)
					recs, _ := ctWriteJournal(t, fs, n)
					env := &ctEnv{fs: storage.FS(fs)} // the OS-style flip: exactly this bit
					env.flip(t, ctSeg1, off, 1<<bit)
					e, err := storage.Open(fs, ctDir)
					if err != nil {
						if !errors.Is(err, storage.ErrCorrupt) {
							t.Fatalf("byte %d bit %d: Open: %v, want ErrCorrupt", off, bit, err)
						}
						continue
					}
					_, got, _ := e.Load()
					e.Close()
					if len(got) != len(recs) {
						lost = append(lost, fmt.Sprintf("byte %d bit %d: %d of %d synced records", off, bit, len(got), len(recs)))
						continue
					}
					ctSameRecords(t, got, recs)
				}
			}
			if len(lost) > 0 {
				t.Errorf("a flipped bit in the segment header's first sequence number is taken for a torn tail "+
					"and Open silently drops synced records (%d cases), e.g.:\n  %s", len(lost), strings.Join(lost[:min(4, len(lost))], "\n  "))
			}
		})
	}
}

// ---- transient read faults ----

// A bit flipped on the read path (not on the media) must not make Open cut synced
// records: it either succeeds with all of them or fails.
func TestTransientBitFlipsDoNotLoseSyncedRecords(t *testing.T) {
	succeeded, failed := 0, 0
	for seed := uint64(1); seed <= 200; seed++ {
		mem := storage.NewMemFS(seed)
		e, _, _ := ctOpen(t, mem)
		var want [][]byte
		for i := range 6 + int(seed%5) {
			r := ctRecord(i)
			if err := e.Append(r); err != nil {
				t.Fatal(err)
			}
			want = append(want, r)
			if i%2 == 1 {
				if err := e.Sync(); err != nil {
					t.Fatal(err)
				}
			}
			if seed%3 == 0 && i == 3 {
				if err := e.Checkpoint([]byte("snap")); err != nil {
					t.Fatal(err)
				}
				want = nil
			}
		}
		if err := e.Sync(); err != nil {
			t.Fatal(err)
		}
		if seed%2 == 0 {
			mem.Crash()
		} else {
			e.Close()
		}
		mem.SetFaults(storage.MemFaults{BitFlipPPM: 300_000})
		e, err := storage.Open(mem, ctDir)
		if err != nil {
			failed++
			if failed <= 3 {
				t.Logf("seed %d: Open failed: %v", seed, err)
			}
			continue
		}
		mem.SetFaults(storage.MemFaults{})
		_, got, err := e.Load()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("seed %d: Open succeeded under read bit flips with %d records, want all %d synced ones",
				seed, len(got), len(want))
		}
		ctSameRecords(t, got, want)
		e.Close()
		// And nothing was cut on disk.
		e, _, got = ctOpen(t, mem)
		ctSameRecords(t, got, want)
		e.Close()
		succeeded++
	}
	t.Logf("%d opens succeeded with every synced record, %d failed", succeeded, failed)
	if succeeded == 0 {
		t.Fatal("no open succeeded")
	}
}

// ---- torn tails whose payload looks like a frame ----

// ctFakeFrame encodes a frame by the format in journal.go (independently of it).
func ctFakeFrame(seq, durable uint64, typ byte, payload []byte) []byte {
	b := make([]byte, ctFrameHdr, ctFrameHdr+len(payload))
	binary.LittleEndian.PutUint32(b[0:], uint32(len(payload)))
	binary.LittleEndian.PutUint64(b[8:], seq)
	binary.LittleEndian.PutUint64(b[16:], durable)
	b[24] = typ
	b = append(b, payload...)
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(b[8:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// An honest torn tail — the write of the first unsynced record lost, a later unsynced
// record kept — must be cut, whatever the records contain. Records carry client data
// (block writes), so a record may contain bytes that look like a frame; recovery's
// durable-watermark scan (syncedAfter) looks for frames at every byte offset, and takes
// such a payload for a later frame that vouches for the lost record.
func TestTornTailWithFrameLikePayload(t *testing.T) {
	r4 := bytes.Repeat([]byte("r4"), 3000)
	// Client data that happens to hold a well-formed frame claiming records up to 1000
	// durable (e.g. a disk image holding another Cairn journal), 8 KiB into the record so
	// that it lies in sectors of its own.
	r5 := append(append([]byte("client block data: "), make([]byte, 8192)...), ctFakeFrame(1000, 1000, 1, []byte("x"))...)
	setup := func(t *testing.T, fs storage.FS) ([][]byte, int64) {
		synced, offs := ctWriteJournal(t, fs, 3)
		e, _, _ := ctOpen(t, fs)
		for _, r := range [][]byte{r4, r5} {
			if err := e.Append(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.Flush(); err != nil { // one write, never synced
			t.Fatal(err)
		}
		return synced, offs[2] + int64(ctFrameHdr+len(synced[2]))
	}
	t.Run("OSFS", func(t *testing.T) {
		fs := storage.NewOSFS(t.TempDir())
		synced, end := setup(t, fs)
		// The power loss dropped the 4 KiB sectors holding record 4 (which lay past the
		// old end of file, so they read as zeros) and kept the later ones.
		f, err := fs.Open(ctSeg1)
		if err != nil {
			t.Fatal(err)
		}
		const sector = 4096
		lostEnd := (end + ctFrameHdr + int64(len(r4)) + sector - 1) / sector * sector
		f.WriteAt(make([]byte, lostEnd-end), end)
		f.Sync()
		f.Close()
		e, err := storage.Open(fs, ctDir)
		if err != nil {
			t.Fatalf("Open: %v\n(an honest torn tail of unsynced records was taken for mid-journal corruption because a "+
				"later unsynced record's payload contains frame-like bytes; the node cannot restart)", err)
		}
		_, recs, _ := e.Load()
		e.Close()
		ctSameRecords(t, recs, synced)
	})
	t.Run("MemFS", func(t *testing.T) {
		var bad []string
		for seed := uint64(1); seed <= 300; seed++ {
			mem := storage.NewMemFS(seed)
			synced, _ := setup(t, mem)
			mem.Crash()
			e, err := storage.Open(mem, ctDir)
			if err != nil {
				bad = append(bad, fmt.Sprintf("seed %d: %v", seed, err))
				continue
			}
			_, recs, _ := e.Load()
			e.Close()
			if len(recs) < len(synced) || len(recs) > len(synced)+2 {
				t.Fatalf("seed %d: %d records", seed, len(recs))
			}
			ctSameRecords(t, recs[:len(synced)], synced)
		}
		if len(bad) > 0 {
			t.Fatalf("after %d of 300 crashes with only unsynced records torn, Open failed (a later record's payload "+
				"holds frame-like bytes that recovery takes for a frame vouching for the torn one), e.g.\n  %s",
				len(bad), bad[0])
		}
	})
}
