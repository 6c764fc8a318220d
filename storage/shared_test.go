package storage

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cairnstore/cairn/core"
)

// A block reader/writer and a journal writer use one Shared engine at once (run with
// -race); afterwards a reopen recovers every synced record and every checkpointed block.
func TestSharedConcurrentUse(t *testing.T) {
	fs := NewOSFS(t.TempDir()) // the OS file system is safe for concurrent use; MemFS (simulator) is not
	s := openShared(t, fs, false)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		buf := make([]byte, 4096)
		for i := range 200 {
			b := bytes.Repeat([]byte{byte(i)}, 4096)
			if err := s.WriteBlocks(1, uint64(i%8), b); err != nil {
				errs <- err
				return
			}
			if err := s.ReadBlocks(1, uint64(i%8), buf); err != nil || !bytes.Equal(buf, b) {
				errs <- fmt.Errorf("read back block %d: %v", i%8, err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := range 100 {
			if err := s.AppendSync([][]byte{[]byte(fmt.Sprint("rec", i))}); err != nil {
				errs <- err
				return
			}
			if i == 50 {
				if err := s.Checkpoint([]byte("snap")); err != nil {
					errs <- err
					return
				}
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := s.Checkpoint([]byte("final")); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendSync([][]byte{[]byte("after")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	e2, err := Open(fs, "d")
	if err != nil {
		t.Fatal(err)
	}
	snap, recs, err := e2.Load()
	if err != nil || string(snap) != "final" || len(recs) != 1 || string(recs[0]) != "after" {
		t.Fatalf("recovered %q %q %v", snap, recs, err)
	}
	buf := make([]byte, 4096)
	if err := e2.ReadBlocks(1, 7, buf); err != nil || buf[0] != byte(199) {
		t.Fatalf("block 7 after recovery: %v %d", err, buf[0])
	}
}

// With write-behind, a queued block write is invisible to nobody: reads, deletes and
// checkpoints apply the queue first, the caller's buffer is copied, the queue is bounded,
// and a failed deferred write is sticky.
func TestSharedWriteBehind(t *testing.T) {
	fs := NewOSFS(t.TempDir())
	s := openShared(t, fs, true)
	blk := func(b byte) []byte { return bytes.Repeat([]byte{b}, BlockSize) }
	buf := make([]byte, BlockSize)

	a := blk(0xa)
	if err := s.WriteBlocks(1, 0, a); err != nil {
		t.Fatal(err)
	}
	if len(s.pending) != 1 {
		t.Fatalf("%d writes queued, want 1", len(s.pending))
	}
	a[0] = 0xff // the queued write holds its own copy
	if err := s.ReadBlocks(1, 0, buf); err != nil || !bytes.Equal(buf, blk(0xa)) {
		t.Fatalf("read of a queued write: %v %x", err, buf[:2])
	}

	if err := s.WriteBlocks(2, 0, blk(0xb)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteVolume(2); err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyPending(); err != nil {
		t.Fatal(err)
	}
	if err := s.ReadBlocks(2, 0, buf); err != nil || !bytes.Equal(buf, make([]byte, BlockSize)) {
		t.Fatalf("a deleted volume came back: %v %x", err, buf[:2])
	}

	for i := range maxPendingWrites + 10 {
		if err := s.WriteBlocks(3, uint64(i), blk(byte(i))); err != nil {
			t.Fatal(err)
		}
		if len(s.pending) > maxPendingWrites {
			t.Fatalf("%d writes queued, bound %d", len(s.pending), maxPendingWrites)
		}
	}

	if err := s.WriteBlocks(1, 1, blk(0xc)); err != nil {
		t.Fatal(err)
	}
	if err := s.Checkpoint([]byte("snap")); err != nil {
		t.Fatal(err)
	}
	if len(s.pending) != 0 {
		t.Fatalf("%d writes still queued after a checkpoint", len(s.pending))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	e2, err := Open(fs, "d")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e2.Load(); err != nil {
		t.Fatal(err)
	}
	if err := e2.ReadBlocks(1, 1, buf); err != nil || !bytes.Equal(buf, blk(0xc)) {
		t.Fatalf("block written before the checkpoint, after reopening: %v %x", err, buf[:2])
	}
	e2.Close()

	// A deferred write that fails: every later call reports it.
	m := NewMemFS(1)
	s3 := openShared(t, m, true)
	if err := s3.WriteBlocks(1, 0, blk(1)); err != nil {
		t.Fatal(err)
	}
	m.SetFaults(MemFaults{WriteErrorPPM: 1_000_000})
	if err := s3.ApplyPending(); !errors.Is(err, ErrInjected) {
		t.Fatalf("apply with failing writes: %v", err)
	}
	m.SetFaults(MemFaults{})
	if err := s3.WriteBlocks(1, 1, blk(2)); !errors.Is(err, ErrInjected) {
		t.Fatalf("write after a failed deferred write: %v", err)
	}
	if err := s3.ReadBlocks(1, 0, buf); !errors.Is(err, ErrInjected) {
		t.Fatalf("read after a failed deferred write: %v", err)
	}
}

// openShared opens (recovers) an engine in fs's "d" and wraps it.
func openShared(t *testing.T, fs FS, writeBehind bool) *Shared {
	t.Helper()
	e, err := Open(fs, "d")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Load(); err != nil {
		t.Fatal(err)
	}
	s := NewShared(e)
	if err := s.SetWriteBehind(writeBehind); err != nil {
		t.Fatal(err)
	}
	return s
}

// StartWriteback reaches the OS file (an error on a closed one shows the call goes
// through), and the store's writeback runs alongside writes and a checkpoint without
// changing what reads back.
func TestStartWriteback(t *testing.T) {
	fs := NewOSFS(t.TempDir())
	f, err := fs.Create("f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{1}, 1<<20), 0); err != nil {
		t.Fatal(err)
	}
	w, ok := f.(interface{ StartWriteback() error })
	if !ok {
		t.Fatal("an OSFS file cannot start its writeback")
	}
	if err := w.StartWriteback(); err != nil {
		t.Fatalf("writeback: %v", err)
	}
	f.Close()
	if err := w.StartWriteback(); err == nil {
		t.Fatal("writeback of a closed file: no error")
	}

	s := openShared(t, fs, true)
	blk := func(b byte) []byte { return bytes.Repeat([]byte{b}, BlockSize) }
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			s.StartWriteback()
		}
	}()
	for i := range 64 {
		if err := s.WriteBlocks(core.VolumeID(1+i%3), uint64(i), blk(byte(i))); err != nil {
			t.Fatal(err)
		}
		if err := s.ApplyPending(); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	if err := s.Checkpoint([]byte("snap")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, BlockSize)
	for i := range 64 {
		if err := s.ReadBlocks(core.VolumeID(1+i%3), uint64(i), buf); err != nil || !bytes.Equal(buf, blk(byte(i))) {
			t.Fatalf("block %d after writeback: %v", i, err)
		}
	}
}
