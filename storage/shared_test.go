package storage

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
)

// A block reader/writer and a journal writer use one Shared engine at once (run with
// -race); afterwards a reopen recovers every synced record and every checkpointed block.
func TestSharedConcurrentUse(t *testing.T) {
	fs := NewOSFS(t.TempDir()) // the OS file system is safe for concurrent use; MemFS (simulator) is not
	e, err := Open(fs, "d")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Load(); err != nil {
		t.Fatal(err)
	}
	s := NewShared(e)
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
