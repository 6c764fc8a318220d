package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gcFaultFS wraps an FS; its files' Sync fails with ErrInjected while failSync is set, and
// blocks while gate is non-nil and open.
type gcFaultFS struct {
	FS
	failSync atomic.Bool
	syncs    atomic.Int64
	gate     chan struct{} // if set, every Sync waits to receive from it
}

func (f *gcFaultFS) Create(name string) (File, error) { return f.wrap(f.FS.Create(name)) }
func (f *gcFaultFS) Open(name string) (File, error)   { return f.wrap(f.FS.Open(name)) }

func (f *gcFaultFS) wrap(file File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	return &gcFaultFile{File: file, fs: f}, nil
}

type gcFaultFile struct {
	File
	fs *gcFaultFS
}

func (f *gcFaultFile) Sync() error {
	if f.fs.gate != nil {
		<-f.fs.gate
	}
	f.fs.syncs.Add(1)
	if f.fs.failSync.Load() {
		return fmt.Errorf("sync: %w", ErrInjected)
	}
	return f.File.Sync()
}

// gcRecord is writer w's i-th record, padded to a size that varies with i.
func gcRecord(w, i int) []byte {
	b := make([]byte, 8+(i*37)%300)
	binary.LittleEndian.PutUint32(b[0:], uint32(w))
	binary.LittleEndian.PutUint32(b[4:], uint32(i))
	for k := 8; k < len(b); k++ {
		b[k] = byte(w*7 + i + k)
	}
	return b
}

func gcOpen(t *testing.T, fsys FS) (*Journal, *Recovered) {
	t.Helper()
	j, rec, err := OpenJournal(fsys, "journal")
	if err != nil {
		t.Fatal(err)
	}
	return j, rec
}

// TestGroupCommitConcurrent appends from 64 goroutines on the OS file system, then checks
// after reopening that every record is there once, intact, and in each writer's order, and
// that syncs were shared.
func TestGroupCommitConcurrent(t *testing.T) {
	const writers, perWriter = 64, 60
	fsys := NewOSFS(t.TempDir())
	j, _ := gcOpen(t, fsys)
	g := NewGroupCommit(j, 32)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if err := g.Append(gcRecord(w, i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	st := g.Stats()
	t.Logf("%d records, %d syncs, largest batch %d", st.Records, st.Syncs, st.MaxBatch)
	if st.Records != writers*perWriter || st.Failed != 0 {
		t.Fatalf("stats %+v, want %d records", st, writers*perWriter)
	}
	if st.Syncs >= st.Records || st.MaxBatch < 2 {
		t.Fatalf("no batching: %+v", st)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	j2, rec := gcOpen(t, fsys)
	defer j2.Close()
	if len(rec.Records) != writers*perWriter {
		t.Fatalf("recovered %d records, want %d", len(rec.Records), writers*perWriter)
	}
	next := make([]int, writers)
	for k, r := range rec.Records {
		if len(r) < 8 {
			t.Fatalf("record %d too short", k)
		}
		w, i := int(binary.LittleEndian.Uint32(r)), int(binary.LittleEndian.Uint32(r[4:]))
		if w >= writers || i != next[w] || string(r) != string(gcRecord(w, i)) {
			t.Fatalf("record %d is writer %d #%d, want #%d next (or it is damaged)", k, w, i, next[w])
		}
		next[w]++
	}
}

// TestGroupCommitSyncErrorSticky checks that a failed sync fails its whole batch, then
// every later Append without touching the journal, and that Close reports it.
func TestGroupCommitSyncErrorSticky(t *testing.T) {
	fsys := &gcFaultFS{FS: NewMemFS(1)}
	j, _ := gcOpen(t, fsys)
	g := NewGroupCommit(j, 8)
	for i := range 5 {
		if err := g.Append(gcRecord(0, i)); err != nil {
			t.Fatal(err)
		}
	}
	fsys.failSync.Store(true)
	var wg sync.WaitGroup
	var broken atomic.Int64
	for w := 1; w <= 16; w++ {
		wg.Go(func() {
			// The failed batch gets the sync error itself; writers queued behind it or
			// arriving later get ErrJournalBroken wrapping it.
			err := g.Append(gcRecord(w, 0))
			if !errors.Is(err, ErrInjected) {
				t.Errorf("writer %d: Append = %v, want an error wrapping ErrInjected", w, err)
			}
			if errors.Is(err, ErrJournalBroken) {
				broken.Add(1)
			}
		})
	}
	wg.Wait()
	fsys.failSync.Store(false) // the disk "recovers", but the journal stays broken
	syncs := fsys.syncs.Load()
	start := time.Now()
	for i := range 100 {
		if err := g.Append(gcRecord(99, i)); !errors.Is(err, ErrJournalBroken) {
			t.Fatalf("Append after failure = %v, want ErrJournalBroken", err)
		}
	}
	if fsys.syncs.Load() != syncs {
		t.Fatalf("Appends after the failure still synced the journal")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("failing fast took %v", d)
	}
	st := g.Stats()
	if st.Records != 5 || st.Failed != 16+100 || st.Syncs != 5+1 {
		t.Fatalf("stats %+v, want 5 records, 6 syncs and 116 failed", st)
	}
	t.Logf("of 16 writers, %d got ErrJournalBroken, the rest the sync error", broken.Load())
	if broken.Load() == 16 {
		t.Fatalf("no writer saw the sync error itself")
	}
	if err := g.Close(); !errors.Is(err, ErrJournalBroken) {
		t.Fatalf("Close = %v, want the sticky error", err)
	}
	j.Close()

	// The acknowledged records survive reopening.
	j2, rec := gcOpen(t, fsys.FS)
	defer j2.Close()
	if len(rec.Records) < 5 {
		t.Fatalf("recovered %d records, want at least the 5 acknowledged", len(rec.Records))
	}
	for i := range 5 {
		if string(rec.Records[i]) != string(gcRecord(0, i)) {
			t.Fatalf("record %d damaged", i)
		}
	}
}

func TestGroupCommitClose(t *testing.T) {
	fsys := NewMemFS(2)
	j, _ := gcOpen(t, fsys)
	defer j.Close()
	g := NewGroupCommit(j, 4)
	if err := g.Append([]byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := g.Append(make([]byte, MaxRecord+1)); err == nil || errors.Is(err, ErrJournalBroken) {
		t.Fatalf("oversized record: %v, want a plain refusal", err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Append([]byte("two")); !errors.Is(err, ErrCommitClosed) {
		t.Fatalf("Append after Close = %v, want ErrCommitClosed", err)
	}
	if st := g.Stats(); st.Records != 1 || st.Syncs != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestGroupCommitBoundedQueue holds the leader's sync and checks that the queue stops at
// 16*maxBatch records while more writers wait, and that all of them complete afterwards,
// including those Close finds queued.
func TestGroupCommitBoundedQueue(t *testing.T) {
	const maxBatch, writers = 2, 100
	fsys := &gcFaultFS{FS: NewMemFS(3)}
	j, _ := gcOpen(t, fsys)
	defer j.Close()
	fsys.gate = make(chan struct{})
	g := NewGroupCommit(j, maxBatch)
	var wg sync.WaitGroup
	var ok, refused atomic.Int64
	for w := range writers {
		wg.Go(func() {
			switch err := g.Append(gcRecord(w, 0)); {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrCommitClosed):
				refused.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	queued := func() int {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.queue)
	}
	deadline := time.Now().Add(5 * time.Second)
	for queued() < 16*maxBatch && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the rest pile up against the bound
	if n := queued(); n != 16*maxBatch {
		t.Fatalf("queue holds %d records, want exactly the bound %d", n, 16*maxBatch)
	}
	closed := make(chan error, 1)
	go func() { closed <- g.Close() }()
	close(fsys.gate) // let the syncs through
	wg.Wait()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	// Writers still blocked on the full queue when Close came fail with ErrCommitClosed;
	// every record that was queued committed.
	st := g.Stats()
	if int64(st.Records) != ok.Load() || st.Records < 16*maxBatch+1 || ok.Load()+refused.Load() != writers {
		t.Fatalf("stats %+v, %d Appends succeeded, %d refused", st, ok.Load(), refused.Load())
	}
}
