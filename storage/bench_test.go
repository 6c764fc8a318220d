//go:build linux

// Benchmarks for the storage engine on the real file system (Linux only: the physical
// baseline uses fdatasync(2) through package syscall). Results and the command that
// produced them are in BENCHMARKS.md.
package storage_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/storage"
)

const benchRecord = 4096

// benchJournalAppend makes b.N durable 4 KiB appends through a GroupCommit, shared
// among writers goroutines, on a fresh journal in b.TempDir().
func benchJournalAppend(b *testing.B, writers int) {
	j, _, err := storage.OpenJournal(storage.NewOSFS(b.TempDir()), "journal")
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	g := storage.NewGroupCommit(j, 64)
	rec := make([]byte, benchRecord)
	for i := range rec {
		rec[i] = byte(i * 7)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.SetBytes(benchRecord)
	b.ResetTimer()
	start := time.Now()
	for range writers {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := g.Append(rec); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err := g.Close(); err != nil {
		b.Fatal(err)
	}
	st := g.Stats()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
	b.ReportMetric(float64(st.Syncs)/elapsed.Seconds(), "syncs/s")
	b.ReportMetric(float64(st.Records)/float64(max(st.Syncs, 1)), "records/sync")
}

func BenchmarkJournalAppend1Writers(b *testing.B)  { benchJournalAppend(b, 1) }
func BenchmarkJournalAppend8Writers(b *testing.B)  { benchJournalAppend(b, 8) }
func BenchmarkJournalAppend64Writers(b *testing.B) { benchJournalAppend(b, 64) }

// BenchmarkRawPwriteFdatasync is the physical baseline: one 4 KiB pwrite and one
// fdatasync per operation, no journal. "append" extends the file as the journal does
// (so each fdatasync also commits the new size); "overwrite" rewrites the blocks of a
// preallocated, synced 64 MiB file in order (data only); "append-fsync" is "append" with
// fsync, the call the journal's Sync makes (os.File.Sync).
func BenchmarkRawPwriteFdatasync(b *testing.B) {
	for _, mode := range []string{"append", "overwrite", "append-fsync"} {
		b.Run(mode, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, benchRecord)
			const span = 64 << 20
			if mode == "overwrite" {
				big := make([]byte, 1<<20)
				for off := int64(0); off < span; off += int64(len(big)) {
					if _, err := f.WriteAt(big, off); err != nil {
						b.Fatal(err)
					}
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			fd := int(f.Fd())
			b.SetBytes(benchRecord)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				off := int64(i) * benchRecord
				if mode == "overwrite" {
					off %= span
				}
				if _, err := f.WriteAt(buf, off); err != nil {
					b.Fatal(err)
				}
				if mode == "append-fsync" {
					err = f.Sync()
				} else {
					err = syscall.Fdatasync(fd)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
		})
	}
}

// BenchmarkBlockRandomRead reads single 4 KiB blocks at random from a 64 MiB volume
// through Engine.ReadBlocks. The volume was just written, so the page cache is warm:
// this measures the engine's read path (pread, checksum, copy), not the disk.
func BenchmarkBlockRandomRead(b *testing.B) {
	const blocks = 64 << 20 / storage.BlockSize
	e, err := storage.Open(storage.NewOSFS(b.TempDir()), "node")
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	const vol = core.VolumeID(1)
	chunk := make([]byte, 256*storage.BlockSize)
	for blk := uint64(0); blk < blocks; blk += 256 {
		for i := range chunk {
			chunk[i] = byte(blk + uint64(i))
		}
		if err := e.WriteBlocks(vol, blk, chunk); err != nil {
			b.Fatal(err)
		}
	}
	if err := e.Checkpoint([]byte("bench")); err != nil { // makes the block file durable
		b.Fatal(err)
	}
	buf := make([]byte, storage.BlockSize)
	rng := rand.New(rand.NewPCG(1, 2))
	b.SetBytes(storage.BlockSize)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := e.ReadBlocks(vol, rng.Uint64N(blocks), buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reads/s")
}

// BenchmarkJournalRecovery times OpenJournal recovering a 1 GiB journal of 64 KiB
// records. The journal is built once (only when this benchmark is selected by -bench),
// and not at all with less than 4 GiB free. It was just written, so it is read from the
// page cache: this is the engine's recovery cost (read, CRC32C, copy), not the disk's.
// Run it with -benchtime 1x.
func BenchmarkJournalRecovery(b *testing.B) {
	const (
		recSize = 64 << 10
		total   = 1 << 30
		records = total / recSize
	)
	dir := b.TempDir()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		b.Fatal(err)
	}
	if free := st.Bavail * uint64(st.Bsize); free < 4<<30 {
		b.Skipf("only %d MiB free in %s, want 4 GiB", free>>20, dir)
	}
	fsys := storage.NewOSFS(dir)
	j, _, err := storage.OpenJournal(fsys, "journal")
	if err != nil {
		b.Fatal(err)
	}
	rec := make([]byte, recSize)
	for i := range records {
		rec[0], rec[1] = byte(i), byte(i>>8)
		if err := j.Append(rec); err != nil {
			b.Fatal(err)
		}
		if i%64 == 63 {
			if err := j.Sync(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := j.Sync(); err != nil {
		b.Fatal(err)
	}
	size := j.Size()
	j.Close()

	b.Run("1GiB", func(b *testing.B) {
		b.SetBytes(size)
		var elapsed time.Duration
		for i := 0; i < b.N; i++ {
			start := time.Now()
			j, r, err := storage.OpenJournal(fsys, "journal")
			elapsed += time.Since(start)
			if err != nil {
				b.Fatal(err)
			}
			if len(r.Records) != records {
				b.Fatalf("recovered %d records, want %d", len(r.Records), records)
			}
			j.Close()
		}
		b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/recovery")
	})
}
