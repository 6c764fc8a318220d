package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/cairnstore/cairn/core"
)

// ErrCrashed is returned (wrapped) by every operation on a File handle that was open
// when its MemFS crashed.
var ErrCrashed = errors.New("storage: file system crashed")

var (
	errIsDir    = errors.New("is a directory")
	errNotDir   = errors.New("not a directory")
	errNotEmpty = errors.New("directory not empty")
	errNegative = errors.New("negative offset or size")
)

// MemFaults configures MemFS fault injection. Probabilities are in parts per million
// per call; zero disables a fault (and consumes no randomness).
type MemFaults struct {
	ReadErrorPPM  uint32 // ReadAt fails with ErrInjected, reading nothing
	WriteErrorPPM uint32 // WriteAt fails with ErrInjected, writing nothing
	BitFlipPPM    uint32 // ReadAt succeeds but one bit of the returned data is flipped
	// CapacityBytes bounds the total size of all linked files; a WriteAt that would grow
	// the total beyond it fails with ErrNoSpace, writing nothing. 0 means unlimited.
	// (Truncate is not checked: growing by truncation allocates nothing on real disks.)
	CapacityBytes int64
}

// MemStats counts MemFS activity and injected faults.
type MemStats struct {
	Reads, Writes, Syncs, SyncDirs uint64
	ReadErrors                     uint64 // injected ReadAt errors
	WriteErrors                    uint64 // injected WriteAt errors
	BitFlips                       uint64 // reads returned with a flipped bit
	NoSpace                        uint64 // writes refused by the capacity limit
	Corruptions                    uint64 // CorruptByte calls
	Crashes                        uint64
}

// MemFS is an in-memory FS that can simulate power loss (Crash) and inject faults,
// for the deterministic simulator. All randomness comes from the seed given to
// NewMemFS, so the same sequence of calls yields the same results.
//
// MemFS is NOT safe for concurrent use: it has no locks, and the simulator drives it
// from a single goroutine (concurrent use would also destroy determinism).
//
// Model. Every file is an inode holding its current bytes, its durable bytes (as of the
// last File.Sync) and the ordered list of writes and truncates made since. Every
// directory holds its current entries and its durable entries (as of the last SyncDir).
// Create, Rename and Remove change only current entries; open handles keep referring to
// their inode across Rename and Remove. MkdirAll is the exception: directories it
// creates are durable at once. Crash reverts every directory to its durable entries
// and, for each file, keeps a random subset of the unsynced operations (each write
// dropped, kept whole, or torn at sector granularity), then makes the result durable.
type MemFS struct {
	root     *memNode
	epoch    uint64 // bumped by Crash; handles from an older epoch are dead
	crashRNG *core.Rand
	faultRNG *core.Rand
	saltRNG  *core.Rand
	sector   int64
	faults   MemFaults
	stats    MemStats
	used     int64 // total bytes of files with nlink > 0
}

type memNode struct {
	dir bool
	// directory
	cur, dur map[string]*memNode
	// file
	data    []byte  // current content
	durable []byte  // content as of the last Sync (never aliases data)
	pending []memOp // unsynced operations, in order
	nlink   int     // number of current directory entries referring to this node
}

// memOp is one unsynced operation: a write of data at off, or a truncate to off.
type memOp struct {
	trunc bool
	off   int64
	data  []byte // private copy of the written bytes
}

// NewMemFS returns an empty MemFS whose randomness (crash outcomes, faults, sector
// size of 512 or 4096 bytes) is derived from seed.
func NewMemFS(seed uint64) *MemFS {
	s := core.NewRand(seed)
	m := &MemFS{
		root:     newMemDir(),
		crashRNG: core.NewRand(s.Uint64()),
		faultRNG: core.NewRand(s.Uint64()),
		saltRNG:  core.NewRand(s.Uint64()),
		sector:   512,
	}
	if s.Uint64()&1 == 1 {
		m.sector = 4096
	}
	m.root.nlink = 1
	return m
}

func newMemDir() *memNode {
	return &memNode{dir: true, cur: map[string]*memNode{}, dur: map[string]*memNode{}}
}

// SetFaults replaces the fault-injection configuration.
func (m *MemFS) SetFaults(f MemFaults) { m.faults = f }

// Faults returns the current fault-injection configuration.
func (m *MemFS) Faults() MemFaults { return m.faults }

// Stats returns counts of operations and injected faults so far.
func (m *MemFS) Stats() MemStats { return m.stats }

// SectorSize is the torn-write granularity used by Crash (512 or 4096).
func (m *MemFS) SectorSize() int { return int(m.sector) }

// Used returns the total current size of all linked files, as checked against
// MemFaults.CapacityBytes.
func (m *MemFS) Used() int64 { return m.used }

// ---- paths ----

func (m *MemFS) lookup(op, name string, allowRoot bool) (*memNode, string, error) {
	c, err := cleanPath(op, name, allowRoot)
	if err != nil {
		return nil, "", err
	}
	n := m.root
	if c == "." {
		return n, c, nil
	}
	for _, elem := range strings.Split(c, "/") {
		if !n.dir {
			return nil, "", fmt.Errorf("storage: %s %s: %w", op, name, errNotDir)
		}
		n = n.cur[elem]
		if n == nil {
			return nil, "", fmt.Errorf("storage: %s %s: %w", op, name, ErrNotExist)
		}
	}
	return n, c, nil
}

// parent resolves the directory holding name and name's last element.
func (m *MemFS) parent(op, name string) (*memNode, string, error) {
	c, err := cleanPath(op, name, false)
	if err != nil {
		return nil, "", err
	}
	d, _, err := m.lookup(op, path.Dir(c), true)
	if err != nil {
		return nil, "", err
	}
	if !d.dir {
		return nil, "", fmt.Errorf("storage: %s %s: %w", op, name, errNotDir)
	}
	return d, path.Base(c), nil
}

func (m *MemFS) link(n *memNode) {
	if n.nlink == 0 && !n.dir {
		m.used += int64(len(n.data))
	}
	n.nlink++
}

func (m *MemFS) unlink(n *memNode) {
	n.nlink--
	if n.nlink == 0 && !n.dir {
		m.used -= int64(len(n.data))
	}
}

// ---- FS ----

// Create creates name, or truncates it (same inode) if it exists.
func (m *MemFS) Create(name string) (File, error) {
	d, base, err := m.parent("create", name)
	if err != nil {
		return nil, err
	}
	n := d.cur[base]
	switch {
	case n == nil:
		n = &memNode{}
		d.cur[base] = n
		m.link(n)
	case n.dir:
		return nil, fmt.Errorf("storage: create %s: %w", name, errIsDir)
	default:
		m.truncate(n, 0)
	}
	return m.handle(n, name), nil
}

// Open opens an existing file.
func (m *MemFS) Open(name string) (File, error) {
	n, _, err := m.lookup("open", name, false)
	if err != nil {
		return nil, err
	}
	if n.dir {
		return nil, fmt.Errorf("storage: open %s: %w", name, errIsDir)
	}
	return m.handle(n, name), nil
}

func (m *MemFS) handle(n *memNode, name string) *memFile {
	return &memFile{fs: m, n: n, name: name, epoch: m.epoch}
}

// Remove removes a file or an empty directory (durable after SyncDir of its parent).
func (m *MemFS) Remove(name string) error {
	d, base, err := m.parent("remove", name)
	if err != nil {
		return err
	}
	n := d.cur[base]
	if n == nil {
		return fmt.Errorf("storage: remove %s: %w", name, ErrNotExist)
	}
	if n.dir && len(n.cur) > 0 {
		return fmt.Errorf("storage: remove %s: %w", name, errNotEmpty)
	}
	delete(d.cur, base)
	m.unlink(n)
	return nil
}

// Rename renames oldname to newname, replacing a file at newname. It is durable once
// both parents are synced with SyncDir (atomic if they are the same directory).
func (m *MemFS) Rename(oldname, newname string) error {
	od, ob, err := m.parent("rename", oldname)
	if err != nil {
		return err
	}
	nd, nb, err := m.parent("rename", newname)
	if err != nil {
		return err
	}
	src := od.cur[ob]
	if src == nil {
		return fmt.Errorf("storage: rename %s -> %s: %w", oldname, newname, ErrNotExist)
	}
	dst := nd.cur[nb]
	if dst == src {
		return nil
	}
	if dst != nil && (dst.dir || src.dir) {
		return fmt.Errorf("storage: rename %s -> %s: destination exists: %w", oldname, newname, fs.ErrExist)
	}
	if src.dir {
		oc, _ := cleanPath("rename", oldname, false)
		nc, _ := cleanPath("rename", newname, false)
		if strings.HasPrefix(nc, oc+"/") {
			return fmt.Errorf("storage: rename %s -> %s: %w", oldname, newname, ErrBadPath)
		}
	}
	delete(od.cur, ob)
	if dst != nil {
		m.unlink(dst)
	}
	nd.cur[nb] = src
	return nil
}

// MkdirAll creates dir and missing parents. Unlike other entry changes, the
// directories it creates are durable immediately.
func (m *MemFS) MkdirAll(dir string) error {
	c, err := cleanPath("mkdir", dir, true)
	if err != nil {
		return err
	}
	d := m.root
	if c == "." {
		return nil
	}
	for _, elem := range strings.Split(c, "/") {
		n := d.cur[elem]
		if n == nil {
			n = newMemDir()
			d.cur[elem] = n
			d.dur[elem] = n
			m.link(n)
		} else if !n.dir {
			return fmt.Errorf("storage: mkdir %s: %w", dir, errNotDir)
		}
		d = n
	}
	return nil
}

// List returns the sorted names of dir's current entries.
func (m *MemFS) List(dir string) ([]string, error) {
	d, _, err := m.lookup("list", dir, true)
	if err != nil {
		return nil, err
	}
	if !d.dir {
		return nil, fmt.Errorf("storage: list %s: %w", dir, errNotDir)
	}
	return slices.Sorted(maps.Keys(d.cur)), nil
}

// SyncDir makes dir's current entries durable.
func (m *MemFS) SyncDir(dir string) error {
	d, _, err := m.lookup("syncdir", dir, true)
	if err != nil {
		return err
	}
	if !d.dir {
		return fmt.Errorf("storage: syncdir %s: %w", dir, errNotDir)
	}
	m.stats.SyncDirs++
	d.dur = maps.Clone(d.cur)
	return nil
}

// ---- crash & corruption ----

// Crash simulates power loss. Every open File becomes invalid (ErrCrashed); every
// directory reachable through durable entries reverts to them; every file's content
// becomes its durable content plus a random subset of its unsynced operations applied
// in order: a truncate is kept or dropped whole, a write is dropped, kept whole, or torn
// (each sector it touches kept or dropped independently; a partial sector at either end
// keeps only the bytes actually written). The result becomes durable.
func (m *MemFS) Crash() {
	m.epoch++
	m.stats.Crashes++
	m.used = 0
	seen := map[*memNode]bool{m.root: true}
	var walk func(d *memNode)
	walk = func(d *memNode) {
		d.cur = maps.Clone(d.dur)
		for _, name := range slices.Sorted(maps.Keys(d.dur)) { // deterministic order
			n := d.dur[name]
			if seen[n] {
				n.nlink++
				continue
			}
			seen[n] = true
			n.nlink = 1
			if n.dir {
				walk(n)
			} else {
				m.crashFile(n)
				m.used += int64(len(n.data))
			}
		}
	}
	walk(m.root)
}

func (m *MemFS) crashFile(n *memNode) {
	if len(n.pending) == 0 {
		return // data already equals durable
	}
	res := slices.Clone(n.durable)
	for _, op := range n.pending {
		if op.trunc {
			if m.crashRNG.Uint64()&1 == 1 {
				setLen(&res, op.off)
			}
			continue
		}
		switch m.crashRNG.Intn(3) {
		case 0: // dropped
		case 1: // kept whole
			writeInto(&res, op.off, op.data)
		case 2: // torn
			end := op.off + int64(len(op.data))
			for s := op.off / m.sector; s*m.sector < end; s++ {
				if m.crashRNG.Uint64()&1 == 0 {
					continue
				}
				lo, hi := max(op.off, s*m.sector), min(end, (s+1)*m.sector)
				writeInto(&res, lo, op.data[lo-op.off:hi-op.off])
			}
		}
	}
	n.durable = res
	n.data = slices.Clone(res)
	n.pending = nil
}

// CorruptByte flips one (random) bit of the byte at off in name, in the durable and the
// current content and in every unsynced write covering off, so the corruption persists
// across Sync and Crash — media corruption for tests.
func (m *MemFS) CorruptByte(name string, off int64) error {
	n, _, err := m.lookup("corrupt", name, false)
	if err != nil {
		return err
	}
	if n.dir {
		return fmt.Errorf("storage: corrupt %s: %w", name, errIsDir)
	}
	if off < 0 || (off >= int64(len(n.data)) && off >= int64(len(n.durable))) {
		return fmt.Errorf("storage: corrupt %s at %d: offset out of range", name, off)
	}
	mask := byte(1) << m.faultRNG.Intn(8)
	if off < int64(len(n.data)) {
		n.data[off] ^= mask
	}
	if off < int64(len(n.durable)) {
		n.durable[off] ^= mask
	}
	for _, op := range n.pending {
		if !op.trunc && off >= op.off && off < op.off+int64(len(op.data)) {
			op.data[off-op.off] ^= mask
		}
	}
	m.stats.Corruptions++
	return nil
}

// ---- helpers ----

func (m *MemFS) truncate(n *memNode, size int64) {
	if n.nlink > 0 {
		m.used += size - int64(len(n.data))
	}
	setLen(&n.data, size)
	n.pending = append(n.pending, memOp{trunc: true, off: size})
}

func (m *MemFS) chance(ppm uint32) bool {
	if ppm == 0 {
		return false
	}
	return m.faultRNG.Chance(ppm)
}

// setLen resizes *b to n bytes; bytes exposed by growing are zero.
func setLen(b *[]byte, n int64) {
	old := int64(len(*b))
	if n <= old {
		*b = (*b)[:n]
		return
	}
	if n > int64(cap(*b)) {
		// Double: a journal grows by small appends, and the runtime's 1.25x growth for
		// large slices would copy it over and over.
		grown := make([]byte, old, max(n, 2*int64(cap(*b))))
		copy(grown, *b)
		*b = grown
	}
	*b = (*b)[:n]
	clear((*b)[old:])
}

// writeInto copies p into *b at off, growing *b (zero-filled) as needed.
func writeInto(b *[]byte, off int64, p []byte) {
	if end := off + int64(len(p)); end > int64(len(*b)) {
		setLen(b, end)
	}
	copy((*b)[off:], p)
}

// ---- File ----

type memFile struct {
	fs     *MemFS
	n      *memNode
	name   string
	epoch  uint64
	closed bool
}

func (f *memFile) check(op string) error {
	if f.epoch != f.fs.epoch {
		return fmt.Errorf("storage: %s %s: %w", op, f.name, ErrCrashed)
	}
	if f.closed {
		return fmt.Errorf("storage: %s %s: %w", op, f.name, fs.ErrClosed)
	}
	return nil
}

// ReadAt follows os.File: reading at or past EOF returns n < len(p) and a bare io.EOF.
func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.check("read"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("storage: read %s: %w", f.name, errNegative)
	}
	m := f.fs
	m.stats.Reads++
	if len(p) == 0 {
		return 0, nil
	}
	if m.chance(m.faults.ReadErrorPPM) {
		m.stats.ReadErrors++
		return 0, fmt.Errorf("storage: read %s at %d: %w", f.name, off, ErrInjected)
	}
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.n.data[off:])
	if n > 0 && m.chance(m.faults.BitFlipPPM) {
		m.stats.BitFlips++
		bit := m.faultRNG.Int63n(int64(n) * 8)
		p[bit/8] ^= 1 << (bit % 8)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt writes p at off, zero-filling any gap past EOF. It is all or nothing.
func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.check("write"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("storage: write %s: %w", f.name, errNegative)
	}
	m, n := f.fs, f.n
	m.stats.Writes++
	if len(p) == 0 {
		return 0, nil
	}
	if m.chance(m.faults.WriteErrorPPM) {
		m.stats.WriteErrors++
		return 0, fmt.Errorf("storage: write %s at %d: %w", f.name, off, ErrInjected)
	}
	growth := max(0, off+int64(len(p))-int64(len(n.data)))
	if n.nlink > 0 {
		if c := m.faults.CapacityBytes; c > 0 && growth > 0 && m.used+growth > c {
			m.stats.NoSpace++
			return 0, fmt.Errorf("storage: write %s at %d: %w", f.name, off, ErrNoSpace)
		}
		m.used += growth
	}
	writeInto(&n.data, off, p)
	n.pending = append(n.pending, memOp{off: off, data: slices.Clone(p)})
	return len(p), nil
}

// Sync makes the file's content durable, in time proportional to the bytes written
// since the last Sync.
func (f *memFile) Sync() error {
	if err := f.check("sync"); err != nil {
		return err
	}
	n := f.n
	f.fs.stats.Syncs++
	for _, op := range n.pending {
		if op.trunc {
			setLen(&n.durable, op.off)
		} else {
			writeInto(&n.durable, op.off, op.data)
		}
	}
	n.pending = nil
	return nil
}

func (f *memFile) Truncate(size int64) error {
	if err := f.check("truncate"); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("storage: truncate %s: %w", f.name, errNegative)
	}
	f.fs.truncate(f.n, size)
	return nil
}

func (f *memFile) Size() (int64, error) {
	if err := f.check("stat"); err != nil {
		return 0, err
	}
	return int64(len(f.n.data)), nil
}

// Close releases the handle; later calls on it fail with fs.ErrClosed (or ErrCrashed
// if the file system crashed while it was open).
func (f *memFile) Close() error {
	if err := f.check("close"); err != nil {
		return err
	}
	f.closed = true
	return nil
}

// Salt returns a value for the journal to salt its checksums with, from the seed (the
// journal uses crypto/rand on other file systems).
func (m *MemFS) Salt() uint64 { return m.saltRNG.Uint64() }

// PreallocChunk is the journal's zero-fill step on this file system: 4 KiB, so the
// simulator exercises preallocated tails at every few records without copying megabytes
// of zeros per segment (the real file system's step is 4 MiB).
func (m *MemFS) PreallocChunk() int64 { return 4096 }
