package storage

import (
	"errors"
	"fmt"

	"github.com/cairnstore/cairn/core"
)

// Engine is one node's storage: the journal and the block files under one directory of
// an FS. It implements core.Storage; the driver also calls Append, Sync and Checkpoint to
// carry out the core's storage effects. Not safe for concurrent use.
type Engine struct {
	fs      FS
	dir     string
	journal *Journal
	blocks  *blockStore
	rec     *Recovered
}

var _ core.Storage = (*Engine)(nil)

// Open opens (or creates) the engine in dir and recovers its journal.
func Open(fs FS, dir string) (*Engine, error) {
	if err := fs.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("storage: data dir: %w", err)
	}
	j, rec, err := OpenJournal(fs, dir+"/journal")
	if err != nil {
		return nil, err
	}
	bs, err := newBlockStore(fs, dir)
	if err != nil {
		j.Close()
		return nil, err
	}
	return &Engine{fs: fs, dir: dir, journal: j, blocks: bs, rec: rec}, nil
}

// Load returns what recovery found: the last snapshot and the records after it.
func (e *Engine) Load() ([]byte, [][]byte, error) {
	if e.rec == nil {
		return nil, nil, errors.New("storage: Load called twice")
	}
	r := e.rec
	e.rec = nil
	return r.Snapshot, r.Records, nil
}

// ReadBlocks reads whole blocks; a block that fails its checksum is an error wrapping ErrCorrupt.
func (e *Engine) ReadBlocks(vol core.VolumeID, block uint64, buf []byte) error {
	return e.blocks.read(uint32(vol), block, buf)
}

// WriteBlocks writes whole blocks in place (durable at the next checkpoint).
func (e *Engine) WriteBlocks(vol core.VolumeID, block uint64, data []byte) error {
	return e.blocks.write(uint32(vol), block, data)
}

// DeleteVolume removes a volume's block file (reads return zeros at once; durable at the
// next checkpoint, which syncs the directory).
func (e *Engine) DeleteVolume(vol core.VolumeID) error {
	return e.blocks.drop(uint32(vol))
}

// Append journals a record (durable after the next Sync).
func (e *Engine) Append(rec []byte) error { return e.journal.Append(rec) }

// Flush writes appended records to the journal file without making them durable.
func (e *Engine) Flush() error { return e.journal.Flush() }

// Sync makes every appended record durable.
func (e *Engine) Sync() error { return e.journal.Sync() }

// Checkpoint makes the block files durable, then replaces the journal with snapshot.
func (e *Engine) Checkpoint(snapshot []byte) error {
	if err := e.journal.Sync(); err != nil {
		return err
	}
	if err := e.blocks.sync(); err != nil {
		return err
	}
	return e.journal.Checkpoint(snapshot)
}

// presyncable: see blockStore.presyncable.
func (e *Engine) presyncable() []File { return e.blocks.presyncable() }

// JournalSize is the current journal segment's size in bytes.
func (e *Engine) JournalSize() int64 { return e.journal.Size() }

// Close closes the engine without syncing.
func (e *Engine) Close() error {
	return errors.Join(e.journal.Close(), e.blocks.close())
}
