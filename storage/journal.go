package storage

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
)

// Journal format. A journal is a directory of segment files named by a zero-padded
// number. A segment starts with a 32-byte header:
//
//	magic "CAIRNJ02" | first seq u64 | salt u64 | crc32c u32 (of the 24 bytes before) | 0 u32
//
// made durable before any frame is written after it, then holds frames:
//
//	len u32 | crc u32 | seq u64 | durable u64 | type u8 | payload (len bytes)
//
// little-endian; crc is CRC32C over the segment's salt and then everything after it.
// The salt is random per segment, so bytes inside a payload (client data) can never pass
// for a frame. Sequence numbers are
// consecutive across segments; durable is the highest sequence number known durable (by
// a completed fsync) when the frame was written. A checkpoint starts a new segment whose
// first record is the snapshot; once it is durable the older segments are removed.
//
// Recovery reads every segment in order and stops at the first bad frame (one that does
// not fit, fails its checksum, is zeroed, or is out of sequence). Without a sync, a disk
// may keep a later write and lose an earlier one, so a bad frame followed by valid ones
// can be an honest torn tail. The durable field tells them apart: if a valid frame after
// the bad one says the bad one's sequence number had already been synced, the journal is
// corrupt in the middle and Open fails with a *CorruptError naming the segment and offset
// (it never skips records); otherwise everything from the bad frame on was never
// acknowledged and is cut off.
const (
	segMagic      = "CAIRNJ02"
	segHeaderSize = 32
	frameHeader   = 25
	// MaxRecord bounds one record's payload.
	MaxRecord = 64 << 20
	// maxBatch bounds the bytes buffered before they are written out (not synced).
	maxBatch = 4 << 20
	// preallocChunk: a segment is zero-filled ahead of its frames in steps of this many
	// bytes, so appending a frame overwrites allocated blocks instead of growing the
	// file, and the fsync after it flushes data only, not the file's size and extents.
	// On ext4 that halves the cost of the fsync every acknowledged write waits for. A
	// zero tail reads as the end of a segment (a zeroed frame is never valid). A file
	// system may choose its own step (MemFS: 4 KiB).
	preallocChunk = 4 << 20
)

// Record types.
const (
	TypeRecord   byte = 1 // an ordinary record
	TypeSnapshot byte = 2 // a checkpoint: everything before it is obsolete
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped by every corruption report.
var ErrCorrupt = errors.New("storage: corrupt data")

// CorruptError says where a journal is corrupt.
type CorruptError struct {
	Segment string
	Offset  int64
	Reason  string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("storage: journal corrupt in %s at offset %d: %s", e.Segment, e.Offset, e.Reason)
}

func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// Journal is an append-only log of records. It is not safe for concurrent use (see
// GroupCommit for concurrent writers).
type Journal struct {
	fs      FS
	dir     string
	seg     File
	segName string
	segNum  uint64
	salt    uint64
	off     int64  // end of the durable-or-written part of the segment
	alloc   int64  // bytes of the segment written (frames or zero fill); frames never pass it
	nextSeq uint64 // sequence number of the next record
	synced  uint64 // highest sequence number made durable by a completed fsync
	buf     []byte // appended, not yet written
	bufRecs int
}

// Recovered is what OpenJournal found.
type Recovered struct {
	Snapshot  []byte   // the latest snapshot record (nil if none)
	Records   [][]byte // the records after it, in order
	Truncated int64    // bytes of torn tail cut off (up to its last nonzero byte; a zero tail is preallocation)
}

func segName(dir string, n uint64) string {
	return dir + "/" + fmt.Sprintf("%020d.log", n)
}

func parseSegName(name string) (uint64, bool) {
	s, ok := strings.CutSuffix(name, ".log")
	if !ok || len(s) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// OpenJournal opens (or creates) the journal in dir and recovers it.
func OpenJournal(fs FS, dir string) (*Journal, *Recovered, error) {
	if err := fs.MkdirAll(dir); err != nil {
		return nil, nil, fmt.Errorf("storage: journal dir: %w", err)
	}
	names, err := fs.List(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: list journal: %w", err)
	}
	var segs []uint64
	for _, nm := range names {
		if n, ok := parseSegName(nm); ok {
			segs = append(segs, n)
		}
	}
	j := &Journal{fs: fs, dir: dir, nextSeq: 1}
	rec := &Recovered{}
	if len(segs) == 0 {
		if err := j.newSegment(1, nil); err != nil {
			return nil, nil, err
		}
		return j, rec, nil
	}
	first := -1 // index of the newest segment that starts with a snapshot
	for i, n := range segs {
		last := i == len(segs)-1
		f, err := fs.Open(segName(dir, n))
		if err != nil {
			return nil, nil, fmt.Errorf("storage: open segment: %w", err)
		}
		res, err := scanSegment(f, segName(dir, n), last, j.nextSeq, i == 0)
		if err != nil {
			f.Close()
			return nil, nil, err
		}
		if res.startSeq != 0 {
			j.nextSeq = res.startSeq
		}
		for _, fr := range res.frames {
			if fr.typ == TypeSnapshot {
				rec.Snapshot, rec.Records, first = fr.payload, nil, i
				continue
			}
			rec.Records = append(rec.Records, fr.payload)
		}
		j.nextSeq = res.nextSeq
		if !last {
			f.Close()
			continue
		}
		if res.torn {
			// The newest segment's header never became durable: recreate it empty.
			f.Close()
			if err := j.newSegment(n, nil); err != nil {
				return nil, nil, err
			}
			rec.Truncated = res.size
			continue
		}
		if res.end < res.size {
			// Cut the torn part and the preallocated zeros after it (the next append
			// preallocates again). Only the torn bytes count as truncated.
			if err := f.Truncate(res.end); err != nil {
				f.Close()
				return nil, nil, fmt.Errorf("storage: truncate torn tail: %w", err)
			}
			rec.Truncated = res.dirty - res.end
		}
		// What recovery found may never have been synced (the OS kept it across a process
		// crash): sync it before later frames vouch for it as durable.
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("storage: sync recovered segment: %w", err)
		}
		j.seg, j.segName, j.segNum, j.off, j.salt = f, segName(dir, n), n, res.end, res.salt
		j.alloc = res.end
		j.synced = j.nextSeq - 1
	}
	// Segments before the newest snapshot are obsolete (a checkpoint that crashed before
	// removing them).
	if first > 0 {
		for _, n := range segs[:first] {
			if err := fs.Remove(segName(dir, n)); err != nil {
				return nil, nil, fmt.Errorf("storage: remove obsolete segment: %w", err)
			}
		}
		if err := fs.SyncDir(dir); err != nil {
			return nil, nil, fmt.Errorf("storage: sync journal dir: %w", err)
		}
	}
	return j, rec, nil
}

type frame struct {
	typ     byte
	payload []byte
}

type scanResult struct {
	frames   []frame
	torn     bool // the header never became durable (nothing follows it)
	salt     uint64
	startSeq uint64
	nextSeq  uint64
	end      int64 // offset after the last valid frame
	dirty    int64 // offset after the last nonzero byte at or after end (end: a zero tail)
	size     int64
}

// scanSegment reads a segment's frames. In the last segment an invalid tail with no valid
// frame after it is a torn write (end marks where to cut); anywhere else it is corruption.
func scanSegment(f File, name string, last bool, wantSeq uint64, firstSeg bool) (*scanResult, error) {
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("storage: size of %s: %w", name, err)
	}
	res := &scanResult{size: size, nextSeq: wantSeq}
	data, err := readStable(f, size)
	if err != nil {
		return nil, fmt.Errorf("storage: read %s: %w", name, err)
	}
	if size < segHeaderSize || !validHeader(data) {
		// The header is made durable before anything is written after it, so a bad header
		// with nothing after it is a segment whose creation never completed.
		if last && (size <= segHeaderSize || allZero(data[segHeaderSize:])) {
			res.end, res.torn = 0, true
			return res, nil
		}
		return nil, &CorruptError{Segment: name, Offset: 0, Reason: "bad segment header"}
	}
	start := binary.LittleEndian.Uint64(data[8:16])
	res.salt = binary.LittleEndian.Uint64(data[16:24])
	if !firstSeg && start != wantSeq {
		return nil, &CorruptError{Segment: name, Offset: 8, Reason: fmt.Sprintf("segment starts at record %d, want %d", start, wantSeq)}
	}
	res.startSeq, res.nextSeq = start, start
	off := int64(segHeaderSize)
	for off < size {
		fr, n, why := parseFrame(data[off:], res.salt, res.nextSeq)
		if why != "" && allZero(data[off:]) {
			break // the preallocated tail: the end of the frames, in any segment
		}
		if why != "" {
			if syncedAfter(data, off+1, res.salt, res.nextSeq) {
				return nil, &CorruptError{Segment: name, Offset: off, Reason: fmt.Sprintf("%s at record %d, which a later record says was durable", why, res.nextSeq)}
			}
			if !last {
				return nil, &CorruptError{Segment: name, Offset: off, Reason: why + " (in a sealed segment)"}
			}
			break // torn tail
		}
		res.frames = append(res.frames, fr)
		res.nextSeq++
		off += int64(n)
	}
	res.end, res.dirty = off, off
	for i := size - 1; i >= off; i-- {
		if data[i] != 0 {
			res.dirty = i + 1
			break
		}
	}
	return res, nil
}

// readStable reads a whole file, then reads it again in chunks to confirm it, so a
// transient error on the read path (a flipped bit in flight) is not mistaken for a torn
// or corrupt journal. It retries a bounded number of times.
func readStable(f File, size int64) ([]byte, error) {
	const attempts = 5
	const chunk = 1 << 20
	data := make([]byte, size)
	check := make([]byte, min(size, chunk))
	for i := 0; i < attempts; i++ {
		if _, err := f.ReadAt(data, 0); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		same := true
		for off := int64(0); off < size && same; off += chunk {
			c := check[:min(chunk, size-off)]
			if _, err := f.ReadAt(c, off); err != nil && !errors.Is(err, io.EOF) {
				return nil, err
			}
			same = string(c) == string(data[off:off+int64(len(c))])
		}
		if same {
			return data, nil
		}
	}
	return nil, fmt.Errorf("%d reads of %d bytes disagree", attempts, size)
}

func validHeader(b []byte) bool {
	return string(b[:8]) == segMagic && crc32.Checksum(b[:24], castagnoli) == binary.LittleEndian.Uint32(b[24:28])
}

// frameSum is a frame's checksum: CRC32C of the segment salt, then the frame body.
func frameSum(salt uint64, body []byte) uint32 {
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], salt)
	return crc32.Update(crc32.Checksum(s[:], castagnoli), castagnoli, body)
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// parseFrame parses one frame with sequence number seq; why is "" when it is valid.
func parseFrame(b []byte, salt, seq uint64) (frame, int, string) {
	if len(b) < frameHeader {
		return frame{}, 0, "truncated frame header"
	}
	n := binary.LittleEndian.Uint32(b[0:4])
	sum := binary.LittleEndian.Uint32(b[4:8])
	if n == 0 && sum == 0 && allZero(b[:frameHeader]) {
		return frame{}, 0, "zeroed frame"
	}
	if n > MaxRecord || int64(n) > int64(len(b)-frameHeader) {
		return frame{}, 0, fmt.Sprintf("frame length %d does not fit", n)
	}
	body := b[8 : frameHeader+int(n)]
	if frameSum(salt, body) != sum {
		return frame{}, 0, "checksum mismatch"
	}
	if got := binary.LittleEndian.Uint64(b[8:16]); got != seq {
		return frame{}, 0, fmt.Sprintf("record %d where %d was due", got, seq)
	}
	typ := b[24]
	if typ != TypeRecord && typ != TypeSnapshot {
		return frame{}, 0, fmt.Sprintf("unknown record type %d", typ)
	}
	// The payload aliases the segment buffer, which is read afresh for each recovery and
	// never reused (capacity is cut so an append cannot overwrite the next frame).
	payload := b[frameHeader : frameHeader+int(n) : frameHeader+int(n)]
	return frame{typ: typ, payload: payload}, frameHeader + int(n), ""
}

// syncedAfter reports whether a valid frame at or after from says that record seq was
// already durable when it was written: then a bad record seq is corruption, not a tear.
func syncedAfter(data []byte, from int64, salt, seq uint64) bool {
	for off := from; off+frameHeader <= int64(len(data)); off++ {
		b := data[off:]
		n := binary.LittleEndian.Uint32(b[0:4])
		if n > MaxRecord || int64(n) > int64(len(b)-frameHeader) {
			continue
		}
		s := binary.LittleEndian.Uint64(b[8:16])
		if s <= seq || s > seq+1<<32 {
			continue
		}
		if frameSum(salt, b[8:frameHeader+int(n)]) != binary.LittleEndian.Uint32(b[4:8]) {
			continue
		}
		if binary.LittleEndian.Uint64(b[16:24]) >= seq {
			return true
		}
	}
	return false
}

func (j *Journal) newSegment(n uint64, first []byte) error {
	name := segName(j.dir, n)
	f, err := j.fs.Create(name)
	if err != nil {
		return fmt.Errorf("storage: create segment: %w", err)
	}
	salt := newSalt(j.fs)
	hdr := make([]byte, segHeaderSize)
	copy(hdr, segMagic)
	binary.LittleEndian.PutUint64(hdr[8:], j.nextSeq)
	binary.LittleEndian.PutUint64(hdr[16:], salt)
	binary.LittleEndian.PutUint32(hdr[24:], crc32.Checksum(hdr[:24], castagnoli))
	// The header is durable before any frame follows it (recovery relies on that).
	if _, err := f.WriteAt(hdr, 0); err != nil {
		f.Close()
		return fmt.Errorf("storage: write segment header: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("storage: sync segment: %w", err)
	}
	seq, off := j.nextSeq, int64(segHeaderSize)
	if first != nil {
		fr := appendFrame(nil, salt, seq, j.synced, TypeSnapshot, first)
		if _, err := f.WriteAt(fr, off); err != nil {
			f.Close()
			return fmt.Errorf("storage: write snapshot: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("storage: sync segment: %w", err)
		}
		seq++
		off += int64(len(fr))
	}
	if err := j.fs.SyncDir(j.dir); err != nil {
		f.Close()
		return fmt.Errorf("storage: sync journal dir: %w", err)
	}
	if j.seg != nil {
		j.seg.Close()
	}
	j.seg, j.segName, j.segNum, j.off, j.nextSeq, j.salt = f, name, n, off, seq, salt
	j.alloc = off
	j.synced = seq - 1
	return nil
}

// newSalt draws a segment salt: from the file system when it supplies one (the
// simulator's, for determinism), else from crypto/rand.
func newSalt(fs FS) uint64 {
	if s, ok := fs.(interface{ Salt() uint64 }); ok {
		return s.Salt()
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("storage: crypto/rand: %v", err)) // documented never to fail
	}
	return binary.LittleEndian.Uint64(b[:])
}

func appendFrame(b []byte, salt, seq, durable uint64, typ byte, payload []byte) []byte {
	start := len(b)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint64(b, seq)
	b = binary.LittleEndian.AppendUint64(b, durable)
	b = append(b, typ)
	b = append(b, payload...)
	binary.LittleEndian.PutUint32(b[start+4:], frameSum(salt, b[start+8:]))
	return b
}

// Append adds a record. It is durable after the next Sync.
func (j *Journal) Append(payload []byte) error {
	if len(payload) > MaxRecord {
		return fmt.Errorf("storage: record of %d bytes exceeds %d", len(payload), MaxRecord)
	}
	j.buf = appendFrame(j.buf, j.salt, j.nextSeq+uint64(j.bufRecs), j.synced, TypeRecord, payload)
	j.bufRecs++
	if len(j.buf) >= maxBatch {
		return j.flush()
	}
	return nil
}

// Flush writes buffered records to the segment without syncing.
func (j *Journal) Flush() error { return j.flush() }

func (j *Journal) flush() error {
	if len(j.buf) == 0 {
		return nil
	}
	if end := j.off + int64(len(j.buf)); end > j.alloc {
		if err := j.prealloc(end); err != nil {
			return err
		}
	}
	if _, err := j.seg.WriteAt(j.buf, j.off); err != nil {
		return fmt.Errorf("storage: journal write: %w", err)
	}
	j.off += int64(len(j.buf))
	j.nextSeq += uint64(j.bufRecs)
	j.buf, j.bufRecs = j.buf[:0], 0
	return nil
}

// prealloc zero-fills the segment from alloc to past end, a whole number of chunks. The
// zeros become durable with the next Sync, together with the frames written over them.
func (j *Journal) prealloc(end int64) error {
	chunk := int64(preallocChunk)
	if p, ok := j.fs.(interface{ PreallocChunk() int64 }); ok && p.PreallocChunk() > 0 {
		chunk = p.PreallocChunk()
	}
	target := (end + chunk - 1) / chunk * chunk
	zeros := make([]byte, min(target-j.alloc, 1<<20))
	for j.alloc < target {
		n := min(int64(len(zeros)), target-j.alloc)
		if _, err := j.seg.WriteAt(zeros[:n], j.alloc); err != nil {
			return fmt.Errorf("storage: journal preallocation: %w", err)
		}
		j.alloc += n
	}
	return nil
}

// Sync makes every appended record durable (one write and one fsync for the batch).
func (j *Journal) Sync() error {
	if err := j.flush(); err != nil {
		return err
	}
	if err := j.seg.Sync(); err != nil {
		return fmt.Errorf("storage: journal sync: %w", err)
	}
	j.synced = j.nextSeq - 1
	return nil
}

// Checkpoint starts a new segment whose first record is snapshot, makes it durable, and
// removes the older segments. The caller must have made the state the snapshot describes
// durable first (the block files).
func (j *Journal) Checkpoint(snapshot []byte) error {
	if err := j.Sync(); err != nil {
		return err
	}
	old := j.segNum
	if err := j.newSegment(old+1, snapshot); err != nil {
		return err
	}
	names, err := j.fs.List(j.dir)
	if err != nil {
		return fmt.Errorf("storage: list journal: %w", err)
	}
	for _, nm := range names {
		if n, ok := parseSegName(nm); ok && n <= old {
			if err := j.fs.Remove(j.dir + "/" + nm); err != nil {
				return fmt.Errorf("storage: remove segment: %w", err)
			}
		}
	}
	if err := j.fs.SyncDir(j.dir); err != nil {
		return fmt.Errorf("storage: sync journal dir: %w", err)
	}
	return nil
}

// Size is the bytes in the current segment (written or buffered).
func (j *Journal) Size() int64 { return j.off + int64(len(j.buf)) }

// Close closes the journal without syncing buffered records.
func (j *Journal) Close() error {
	if j.seg == nil {
		return nil
	}
	err := j.seg.Close()
	j.seg = nil
	return err
}
