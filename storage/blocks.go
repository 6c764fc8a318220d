package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"sync"

	"github.com/cairnstore/cairn/core"
)

// Block files. Each volume has one file of fixed-size slots, written in place:
//
//	data (4096 bytes) | crc32c(data) u32 | magic "CRN1"
//
// A slot never written is all zeros and reads as a zero block. Any other slot must carry
// the magic and a matching checksum, or the read fails with a *BlockCorruptError; corrupt
// data is never returned. A read of n blocks is one positioned read of n slots.
// A corrupt block is reported as an error that matches both ErrCorrupt and
// *core.CorruptBlockError (so the core repairs it from another replica).
const (
	BlockSize  = 4096
	slotSize   = BlockSize + 8
	slotMagic  = "CRN1"
	blocksDir  = "blocks"
	volPattern = "vol-%08d.dat"
)

func corruptBlock(vol uint32, block uint64) error {
	return fmt.Errorf("%w: %w", ErrCorrupt, &core.CorruptBlockError{Vol: core.VolumeID(vol), Block: block})
}

// blockStore keeps the block files of every volume.
type blockStore struct {
	fs      FS
	dir     string
	files   map[uint32]File
	created bool // a file was created or removed since the last sync of the directory
	dirty   map[uint32]bool
	// synced: a sync has run since the store was opened. Writes made before this open
	// (by an earlier process, or before a restart) may still be unsynced, so the first
	// sync covers every block file.
	synced bool
}

func newBlockStore(fs FS, dir string) (*blockStore, error) {
	d := dir + "/" + blocksDir
	if err := fs.MkdirAll(d); err != nil {
		return nil, fmt.Errorf("storage: blocks dir: %w", err)
	}
	return &blockStore{fs: fs, dir: d, files: map[uint32]File{}, dirty: map[uint32]bool{}}, nil
}

func (s *blockStore) file(vol uint32, create bool) (File, error) {
	if f := s.files[vol]; f != nil {
		return f, nil
	}
	name := s.dir + "/" + fmt.Sprintf(volPattern, vol)
	f, err := s.fs.Open(name)
	if errors.Is(err, ErrNotExist) {
		if !create {
			return nil, nil
		}
		f, err = s.fs.Create(name)
		s.created = true
	}
	if err != nil {
		return nil, fmt.Errorf("storage: open block file: %w", err)
	}
	s.files[vol] = f
	return f, nil
}

// slotPool holds one-slot read buffers: most reads are of one block.
var slotPool = sync.Pool{New: func() any { b := make([]byte, slotSize); return &b }}

// read fills buf (whole blocks) from block onwards, verifying every slot.
func (s *blockStore) read(vol uint32, block uint64, buf []byte) error {
	if len(buf)%BlockSize != 0 {
		return fmt.Errorf("storage: read of %d bytes is not whole blocks", len(buf))
	}
	n := len(buf) / BlockSize
	f, err := s.file(vol, false)
	if err != nil {
		return err
	}
	if f == nil {
		clear(buf)
		return nil
	}
	var raw []byte
	if n == 1 {
		p := slotPool.Get().(*[]byte)
		defer slotPool.Put(p)
		raw = *p
	} else {
		raw = make([]byte, n*slotSize)
	}
	got, err := f.ReadAt(raw, int64(block)*slotSize)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("storage: read volume %d block %d: %w", vol, block, err)
	}
	clear(raw[got:])
	for i := 0; i < n; i++ {
		slot := raw[i*slotSize : (i+1)*slotSize]
		data, trailer := slot[:BlockSize], slot[BlockSize:]
		dst := buf[i*BlockSize : (i+1)*BlockSize]
		if allZero(trailer) && allZero(data) {
			clear(dst)
			continue
		}
		if string(trailer[4:]) != slotMagic || crc32.Checksum(data, castagnoli) != binary.LittleEndian.Uint32(trailer) {
			return corruptBlock(vol, block+uint64(i))
		}
		copy(dst, data)
	}
	return nil
}

// write stores whole blocks from block onwards with one positioned write.
func (s *blockStore) write(vol uint32, block uint64, data []byte) error {
	if len(data)%BlockSize != 0 {
		return fmt.Errorf("storage: write of %d bytes is not whole blocks", len(data))
	}
	f, err := s.file(vol, true)
	if err != nil {
		return err
	}
	n := len(data) / BlockSize
	raw := make([]byte, n*slotSize)
	for i := 0; i < n; i++ {
		slot := raw[i*slotSize : (i+1)*slotSize]
		copy(slot, data[i*BlockSize:(i+1)*BlockSize])
		binary.LittleEndian.PutUint32(slot[BlockSize:], crc32.Checksum(slot[:BlockSize], castagnoli))
		copy(slot[BlockSize+4:], slotMagic)
	}
	if _, err := f.WriteAt(raw, int64(block)*slotSize); err != nil {
		return fmt.Errorf("storage: write volume %d block %d: %w", vol, block, err)
	}
	s.dirty[vol] = true
	return nil
}

// drop removes a volume's block file: its blocks read as zeros at once, and the removal is
// durable at the next sync (which syncs the directory). A volume without a file is fine.
func (s *blockStore) drop(vol uint32) error {
	var errs []error
	if f := s.files[vol]; f != nil {
		delete(s.files, vol)
		if err := f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("storage: close volume %d: %w", vol, err))
		}
	}
	delete(s.dirty, vol)
	if err := s.fs.Remove(s.dir + "/" + fmt.Sprintf(volPattern, vol)); err != nil && !errors.Is(err, ErrNotExist) {
		errs = append(errs, fmt.Errorf("storage: remove volume %d: %w", vol, err))
	}
	s.created = true // the directory changed: the next sync makes it durable
	return errors.Join(errs...)
}

// presyncable returns the files with writes since the last sync, when the file system's
// files may be synced from another goroutine while the store goes on writing (OSFS; not
// MemFS, which is single-threaded). Syncing them early only shortens the sync that
// counts (sync), which a checkpoint runs under the store's lock.
func (s *blockStore) presyncable() []File {
	if c, ok := s.fs.(interface{ ConcurrentSync() bool }); !ok || !c.ConcurrentSync() {
		return nil
	}
	var out []File
	for v := range s.dirty { // order does not matter: each file is synced once
		if f := s.files[v]; f != nil {
			out = append(out, f)
		}
	}
	return out
}

// sync makes every block write durable, and the directory if files were created or removed.
func (s *blockStore) sync() error {
	if !s.synced {
		names, err := s.fs.List(s.dir)
		if err != nil {
			return fmt.Errorf("storage: list block files: %w", err)
		}
		for _, nm := range names {
			var vol uint32
			if _, err := fmt.Sscanf(nm, volPattern, &vol); err != nil {
				continue
			}
			if _, err := s.file(vol, false); err != nil {
				return err
			}
			s.dirty[vol] = true
		}
		s.created = true
		s.synced = true
	}
	vols := make([]uint32, 0, len(s.dirty))
	for v := range s.dirty {
		vols = append(vols, v)
	}
	slices.Sort(vols)
	for _, v := range vols {
		if err := s.files[v].Sync(); err != nil {
			return fmt.Errorf("storage: sync volume %d: %w", v, err)
		}
	}
	clear(s.dirty)
	if s.created {
		if err := s.fs.SyncDir(s.dir); err != nil {
			return fmt.Errorf("storage: sync blocks dir: %w", err)
		}
		s.created = false
	}
	return nil
}

func (s *blockStore) close() error {
	var errs []error
	for _, f := range s.files {
		errs = append(errs, f.Close())
	}
	s.files = map[uint32]File{}
	return errors.Join(errs...)
}
