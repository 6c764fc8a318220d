// Package storage is Cairn's on-disk engine: a CRC32C-framed journal with group commit
// and a checksummed block store, over a small file-system interface with two
// implementations — the OS one and an in-memory crashable one the simulator drives.
package storage

import (
	"errors"
	"io"
)

// FS is the file system the engine runs on. Paths are slash-separated and relative to
// the FS root; directories must exist before files are created in them. Absolute
// paths and paths with a ".." element are rejected with ErrBadPath; "." names the root
// (for List, SyncDir, MkdirAll). A missing file or directory yields ErrNotExist.
type FS interface {
	// Create creates (or truncates) a file for reading and writing.
	Create(name string) (File, error)
	// Open opens an existing file for reading and writing.
	Open(name string) (File, error)
	// Remove removes a file or an empty directory. Open handles to it stay usable.
	Remove(name string) error
	// Rename renames oldname to newname, replacing a file at newname.
	Rename(oldname, newname string) error
	// MkdirAll creates dir and any missing parents.
	MkdirAll(dir string) error
	// List returns the names (not paths) in dir, sorted.
	List(dir string) ([]string, error)
	// SyncDir makes dir's entries (creates, renames, removes) durable.
	SyncDir(dir string) error
}

// File is an open file. Writes are positioned; Sync makes the data durable.
type File interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	Truncate(size int64) error
	Size() (int64, error)
	Close() error
}

// Errors the file systems report (wrapped with the path).
var (
	ErrNotExist = errors.New("storage: file does not exist")
	ErrNoSpace  = errors.New("storage: no space left on device")
	ErrInjected = errors.New("storage: injected I/O error")
)
