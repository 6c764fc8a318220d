package fuzz

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/cairnstore/cairn/storage"
)

// FuzzJournalOpen writes arbitrary bytes as the only segment of a journal and recovers
// it. Recovery must never panic, and must never invent a record: it either fails with a
// corruption error, or returns exactly the records an independent parser of the format
// (journal.go's comment, re-implemented below) finds in the valid prefix of the segment.
// A journal that opened must then take one more record and keep everything across a
// reopen.
func FuzzJournalOpen(f *testing.F) {
	for _, s := range journalSeeds(f) {
		f.Add(s)
	}
	// Found by this target: a well-formed header whose first sequence number is 0 (one
	// bit flip away from a fresh segment's 1). See TestJournalHeaderStartSeqZero.
	f.Add(jHeaderBytes(0, 42))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkJournalOpen(t, data)
	})
}

const (
	jDir    = "j"
	jSeg    = jDir + "/00000000000000000001.log"
	jMagic  = "CAIRNJ02"
	jHeader = 32
	jFrame  = 25
)

var jTable = crc32.MakeTable(crc32.Castagnoli)

type jFrameRec struct {
	typ     byte
	payload []byte
}

// jParse is an independent parser of one segment. ok reports a well-formed header;
// frames is the longest valid prefix of frames, and end the offset after it.
func jParse(b []byte) (ok bool, start uint64, frames []jFrameRec, end int) {
	if len(b) < jHeader || string(b[:8]) != jMagic || crc32.Checksum(b[:24], jTable) != binary.LittleEndian.Uint32(b[24:28]) {
		return false, 0, nil, 0
	}
	start = binary.LittleEndian.Uint64(b[8:16])
	salt := b[16:24]
	seq, off := start, jHeader
	for len(b)-off >= jFrame {
		h := b[off : off+jFrame]
		if bytes.Equal(h, make([]byte, jFrame)) {
			break
		}
		n := binary.LittleEndian.Uint32(h[0:4])
		if n > storage.MaxRecord || int(n) > len(b)-off-jFrame {
			break
		}
		if crc32.Update(crc32.Checksum(salt, jTable), jTable, b[off+8:off+jFrame+int(n)]) != binary.LittleEndian.Uint32(h[4:8]) {
			break
		}
		if binary.LittleEndian.Uint64(h[8:16]) != seq {
			break
		}
		typ := h[24]
		if typ != storage.TypeRecord && typ != storage.TypeSnapshot {
			break
		}
		frames = append(frames, jFrameRec{typ, bytes.Clone(b[off+jFrame : off+jFrame+int(n)])})
		off += jFrame + int(n)
		seq++
	}
	return true, start, frames, off
}

// jFold applies frames: the last snapshot and the records after it.
func jFold(frames []jFrameRec) (snap []byte, recs [][]byte) {
	for _, fr := range frames {
		if fr.typ == storage.TypeSnapshot {
			snap, recs = fr.payload, nil
		} else {
			recs = append(recs, fr.payload)
		}
	}
	return snap, recs
}

func jEqual(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func jWriteSegment(t testing.TB, data []byte) *storage.MemFS {
	mem := storage.NewMemFS(1)
	if err := mem.MkdirAll(jDir); err != nil {
		t.Fatal(err)
	}
	f, err := mem.Create(jSeg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, 0); err != nil && len(data) > 0 {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := mem.SyncDir(jDir); err != nil {
		t.Fatal(err)
	}
	return mem
}

func checkJournalOpen(t *testing.T, data []byte) {
	mem := jWriteSegment(t, data)
	j, rec, err := storage.OpenJournal(mem, jDir)
	ok, start, frames, end := jParse(data)
	if err != nil {
		if !errors.Is(err, storage.ErrCorrupt) && !errors.Is(err, storage.ErrInjected) && !errors.Is(err, storage.ErrNoSpace) {
			t.Fatalf("OpenJournal: %v: neither corruption nor an I/O error", err)
		}
		if ok && end == len(data) {
			t.Fatalf("OpenJournal: %v, but the whole segment parses (%d frames)", err, len(frames))
		}
		if !ok && jTornHeader(data) {
			t.Fatalf("OpenJournal: %v on a segment whose header never became durable (nothing after it)", err)
		}
		var ce *storage.CorruptError
		if errors.As(err, &ce) && ce.Offset != 0 && ce.Offset != int64(end) {
			t.Fatalf("OpenJournal: %v: offset is neither the header nor the first bad frame (%d)", err, end)
		}
		return
	}
	if !ok && !jTornHeader(data) {
		j.Close()
		t.Fatalf("OpenJournal succeeded (%d records) on a segment with a bad header and data after it", len(rec.Records))
	}
	// No invented records: what came back is what the valid prefix holds, exactly.
	wantSnap, wantRecs := jFold(frames)
	if (rec.Snapshot == nil) != (wantSnap == nil) || !bytes.Equal(rec.Snapshot, wantSnap) || !jEqual(rec.Records, wantRecs) {
		j.Close()
		t.Fatalf("OpenJournal returned snapshot %q + %d records; the segment's %d valid frames give %q + %d records",
			rec.Snapshot, len(rec.Records), len(frames), wantSnap, len(wantRecs))
	}
	// Truncated counts the torn bytes up to the last nonzero one: a zero tail is the
	// journal's own preallocation.
	torn := len(bytes.TrimRight(data[min(end, len(data)):], "\x00"))
	if ok && rec.Truncated != int64(torn) {
		j.Close()
		t.Fatalf("Truncated = %d, want %d (segment %d bytes, valid prefix %d, first sequence number %d)",
			rec.Truncated, torn, len(data), end, start)
	}
	// The recovered journal keeps working, and keeps what it recovered.
	extra := []byte("one more record")
	if err := j.Append(extra); err != nil {
		t.Fatal(err)
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	j.Close()
	wantRecs = append(wantRecs, extra)
	for i := range 2 { // twice: a reopen must not lose what the previous one returned
		j, rec2, err := storage.OpenJournal(mem, jDir)
		if err != nil {
			t.Fatalf("reopen %d after append: %v", i+1, err)
		}
		j.Close()
		if !bytes.Equal(rec2.Snapshot, wantSnap) || (rec2.Snapshot == nil) != (wantSnap == nil) ||
			!jEqual(rec2.Records, wantRecs) || rec2.Truncated != 0 {
			t.Fatalf("reopen %d after appending one record: snapshot %q + %d records (%d bytes truncated), want %q + %d "+
				"(first sequence number in the header: %d)", i+1, rec2.Snapshot, len(rec2.Records), rec2.Truncated,
				wantSnap, len(wantRecs), start)
		}
	}
}

// journalSeeds returns real journal segments written by storage.Journal, and
// truncations and bit flips of them.
func journalSeeds(tb testing.TB) [][]byte {
	read := func(mem *storage.MemFS, name string) []byte {
		f, err := mem.Open(name)
		if err != nil {
			tb.Fatal(err)
		}
		defer f.Close()
		n, _ := f.Size()
		b := make([]byte, n)
		f.ReadAt(b, 0)
		// Without the preallocated zero tail (each seed's prefixes are copied below), but
		// with a few zero bytes kept, as a preallocated segment has.
		return b[:min(len(bytes.TrimRight(b, "\x00"))+9, len(b))]
	}
	mem := storage.NewMemFS(3)
	j, _, err := storage.OpenJournal(mem, jDir)
	if err != nil {
		tb.Fatal(err)
	}
	for i, r := range []string{"alpha", "", "gamma gamma", "delta"} {
		j.Append([]byte(r))
		if i%2 == 1 {
			j.Sync()
		}
	}
	j.Sync()
	valid := read(mem, jSeg)
	// A checkpointed segment: header, snapshot frame, records.
	j.Checkpoint([]byte("snapshot!"))
	j.Append([]byte("after the snapshot"))
	j.Sync()
	j.Append([]byte("and another"))
	j.Flush()
	ckpt := read(mem, jDir+"/00000000000000000002.log")
	j.Close()

	seeds := [][]byte{valid, ckpt, nil, make([]byte, 16), make([]byte, 40), []byte(jMagic)}
	for _, base := range [][]byte{valid, ckpt} {
		for n := 0; n < len(base); n += 7 {
			seeds = append(seeds, bytes.Clone(base[:n]))
		}
		for _, off := range []int{0, 8, 9, 16, 17, 20, 25, 30, 41, len(base) - 1} {
			b := bytes.Clone(base)
			b[off] ^= 0x04
			seeds = append(seeds, b)
		}
		seeds = append(seeds, append(bytes.Clone(base), make([]byte, 30)...))
	}
	return seeds
}

// TestJournalSeedsParse checks the independent parser against the real journal on the
// valid seeds, so that the fuzz target's oracle is itself right.
func TestJournalSeedsParse(t *testing.T) {
	seeds := journalSeeds(t)
	for i, want := range []int{4, 3} {
		ok, _, frames, end := jParse(seeds[i])
		if !ok || len(frames) != want || end != len(bytes.TrimRight(seeds[i], "\x00")) {
			t.Fatalf("seed %d: ok=%v, %d frames, end %d of %d; want %d frames", i, ok, len(frames), end, len(seeds[i]), want)
		}
	}
	for i, s := range seeds {
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkJournalOpen(t, s) })
	}
}

// OpenJournal uses a first sequence number of 0 as its "header never became durable"
// sentinel, but 0 is also a value a well-formed header can hold (a fresh, empty
// segment's 1 with one bit flipped). Such a segment is recreated empty at every open —
// after its records were returned — so records appended and synced afterwards vanish at
// the second reopen, and every open reports the whole segment as truncated.
func TestJournalHeaderStartSeqZero(t *testing.T) {
	mem := jWriteSegment(t, jHeaderBytes(0, 42))
	var synced [][]byte
	for i := range 3 {
		j, rec, err := storage.OpenJournal(mem, jDir)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		if !jEqual(rec.Records, synced) {
			j.Close()
			t.Fatalf("open %d: %d records, want the %d appended and synced before (truncated %d bytes)",
				i, len(rec.Records), len(synced), rec.Truncated)
		}
		r := []byte(fmt.Sprintf("record %d", i))
		if err := j.Append(r); err != nil {
			t.Fatal(err)
		}
		if err := j.Sync(); err != nil {
			t.Fatal(err)
		}
		j.Close()
		synced = append(synced, r)
	}
}

// jHeaderBytes builds a well-formed segment header (format in storage/journal.go).
func jHeaderBytes(start, salt uint64) []byte {
	b := make([]byte, jHeader)
	copy(b, jMagic)
	binary.LittleEndian.PutUint64(b[8:], start)
	binary.LittleEndian.PutUint64(b[16:], salt)
	binary.LittleEndian.PutUint32(b[24:], crc32.Checksum(b[:24], jTable))
	return b
}

// jTornHeader: a bad header with nothing after it is a segment whose creation never
// completed (the journal makes the header durable before writing anything after it).
func jTornHeader(data []byte) bool {
	return len(data) <= jHeader || bytes.Equal(data[jHeader:], make([]byte, len(data)-jHeader))
}
