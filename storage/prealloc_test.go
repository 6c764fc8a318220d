package storage_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/cairnstore/cairn/storage"
)

// The journal zero-fills its segment ahead of the frames (whole chunks: 4 MiB on real
// files, 4 KiB on MemFS), records survive a reopen over the zero tail, and a reopen cuts
// the tail (nothing torn).
func TestJournalPreallocates(t *testing.T) {
	for _, fs := range []storage.FS{storage.NewOSFS(t.TempDir()), storage.NewMemFS(1)} {
		chunk := int64(4 << 20)
		if _, mem := fs.(*storage.MemFS); mem {
			chunk = 4096
		}
		j, _, err := storage.OpenJournal(fs, "j")
		if err != nil {
			t.Fatal(err)
		}
		var want [][]byte
		for i := range 10 {
			rec := bytes.Repeat([]byte{byte(i + 1)}, 4096)
			want = append(want, rec)
			if err := j.Append(rec); err != nil {
				t.Fatal(err)
			}
			if err := j.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		size := fileSize(t, fs, "j/00000000000000000001.log")
		if size%chunk != 0 || size < 10*4096 || size > 10*4096+32+10*25+chunk {
			t.Fatalf("segment is %d bytes after 10 records, want whole %d-byte chunks just past them", size, chunk)
		}
		j.Close()
		j, rec, err := storage.OpenJournal(fs, "j")
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Records) != len(want) || rec.Truncated != 0 {
			t.Fatalf("recovered %d records, truncated %d; want %d and 0", len(rec.Records), rec.Truncated, len(want))
		}
		for i := range want {
			if !bytes.Equal(rec.Records[i], want[i]) {
				t.Fatalf("record %d differs", i)
			}
		}
		// Past a chunk: the next chunk is filled.
		big := make([]byte, 3<<20)
		for range 2 {
			if err := j.Append(big); err != nil {
				t.Fatal(err)
			}
			if err := j.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		if size := fileSize(t, fs, "j/00000000000000000001.log"); size%chunk != 0 || size < 6<<20 || size > 6<<20+64<<10+chunk {
			t.Fatalf("segment is %d bytes, want whole %d-byte chunks just past 6 MiB", size, chunk)
		}
		j.Close()
	}
}

// A checkpoint that crashed before removing the old segment leaves a sealed segment with
// a preallocated zero tail: recovery reads it and goes on to the new one.
func TestJournalSealedSegmentWithZeroTail(t *testing.T) {
	fs := storage.NewOSFS(t.TempDir())
	j, _, err := storage.OpenJournal(fs, "j")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := j.Append(fmt.Appendf(nil, "before %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	// Keep a copy of the sealed segment as it was, zero tail included.
	old := readAll(t, fs, "j/00000000000000000001.log")
	if err := j.Checkpoint([]byte("snap")); err != nil {
		t.Fatal(err)
	}
	if err := j.Append([]byte("after")); err != nil {
		t.Fatal(err)
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	j.Close()
	f, err := fs.Create("j/00000000000000000001.log")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(old, 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	j, rec, err := storage.OpenJournal(fs, "j")
	if err != nil {
		t.Fatalf("recovery with a sealed, zero-tailed segment: %v", err)
	}
	defer j.Close()
	if string(rec.Snapshot) != "snap" || len(rec.Records) != 1 || string(rec.Records[0]) != "after" {
		t.Fatalf("recovered snapshot %q and %d records", rec.Snapshot, len(rec.Records))
	}
}

func fileSize(t *testing.T, fs storage.FS, name string) int64 {
	t.Helper()
	f, err := fs.Open(name)
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

func readAll(t *testing.T, fs storage.FS, name string) []byte {
	t.Helper()
	n := fileSize(t, fs, name)
	f, err := fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}
