package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrBadPath is returned (wrapped) for a name that is empty, absolute, contains a ".."
// element or a NUL byte, i.e. one that could escape the FS root.
var ErrBadPath = errors.New("storage: invalid path")

// cleanPath validates a slash-separated name relative to the FS root and returns its
// cleaned form. "." (or "") stands for the root itself and is accepted only when
// allowRoot is set (directory operations).
func cleanPath(op, name string, allowRoot bool) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("storage: %s %q: %w: %s", op, name, ErrBadPath, why)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return bad("contains NUL")
	}
	if strings.HasPrefix(name, "/") || filepath.IsAbs(name) || filepath.VolumeName(name) != "" {
		return bad("absolute path")
	}
	for _, elem := range strings.Split(name, "/") {
		if elem == ".." {
			return bad(`".." escapes the root`)
		}
	}
	c := path.Clean(name)
	if name == "" {
		c = "."
	}
	if c == "." && !allowRoot {
		return bad("names the root directory")
	}
	return c, nil
}

// OSFS is an FS over real files below a root directory.
type OSFS struct {
	root string
}

// NewOSFS returns an FS whose paths are resolved relative to root. The root must
// exist (use os.MkdirAll); names that would escape it are rejected with ErrBadPath.
// Symbolic links inside root are followed and are trusted.
func NewOSFS(root string) FS { return &OSFS{root: root} }

// ConcurrentSync reports that a file may be synced from one goroutine while another writes it (and
// syncing a file another goroutine closed just fails).
func (o *OSFS) ConcurrentSync() bool { return true }

func (o *OSFS) path(op, name string, allowRoot bool) (string, error) {
	c, err := cleanPath(op, name, allowRoot)
	if err != nil {
		return "", err
	}
	return filepath.Join(o.root, filepath.FromSlash(c)), nil
}

// osErr wraps an os error with the operation and name, mapping a missing file to
// ErrNotExist and ENOSPC to ErrNoSpace (the original error stays in the chain).
func osErr(op, name string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("storage: %s %s: %w: %w", op, name, ErrNotExist, err)
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("storage: %s %s: %w: %w", op, name, ErrNoSpace, err)
	default:
		return fmt.Errorf("storage: %s %s: %w", op, name, err)
	}
}

func (o *OSFS) openFile(op, name string, flag int) (File, error) {
	p, err := o.path(op, name, false)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, flag, 0o644)
	if err != nil {
		return nil, osErr(op, name, err)
	}
	return &osFile{f: f, name: name}, nil
}

// Create creates or truncates name (O_RDWR|O_CREATE|O_TRUNC, mode 0644).
func (o *OSFS) Create(name string) (File, error) {
	return o.openFile("create", name, os.O_RDWR|os.O_CREATE|os.O_TRUNC)
}

// Open opens an existing file read-write.
func (o *OSFS) Open(name string) (File, error) {
	return o.openFile("open", name, os.O_RDWR)
}

// Remove removes a file or an empty directory.
func (o *OSFS) Remove(name string) error {
	p, err := o.path("remove", name, false)
	if err != nil {
		return err
	}
	return osErr("remove", name, os.Remove(p))
}

// Rename atomically renames oldname to newname, replacing newname if it exists.
func (o *OSFS) Rename(oldname, newname string) error {
	po, err := o.path("rename", oldname, false)
	if err != nil {
		return err
	}
	pn, err := o.path("rename", newname, false)
	if err != nil {
		return err
	}
	return osErr("rename", oldname+" -> "+newname, os.Rename(po, pn))
}

// MkdirAll creates dir and any missing parents (mode 0755).
func (o *OSFS) MkdirAll(dir string) error {
	p, err := o.path("mkdir", dir, true)
	if err != nil {
		return err
	}
	return osErr("mkdir", dir, os.MkdirAll(p, 0o755))
}

// List returns the sorted names of the entries (files and directories) in dir.
func (o *OSFS) List(dir string) ([]string, error) {
	p, err := o.path("list", dir, true)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(p) // sorted by name
	if err != nil {
		return nil, osErr("list", dir, err)
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, nil
}

// SyncDir opens dir and fsyncs it, making its entries durable.
func (o *OSFS) SyncDir(dir string) error {
	p, err := o.path("syncdir", dir, true)
	if err != nil {
		return err
	}
	d, err := os.Open(p)
	if err != nil {
		return osErr("syncdir", dir, err)
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return osErr("syncdir", dir, serr)
	}
	return osErr("syncdir", dir, cerr)
}

type osFile struct {
	f    *os.File
	name string
}

// ReadAt follows os.File: at or past EOF it returns n < len(p) and a bare io.EOF.
func (f *osFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.f.ReadAt(p, off)
	if err != nil && err != io.EOF {
		err = osErr("read", f.name, err)
	}
	return n, err
}

func (f *osFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.f.WriteAt(p, off)
	return n, osErr("write", f.name, err)
}

// Sync is fdatasync: the data and the metadata needed to read it back (the size), not
// the timestamps. Every Sync in Cairn is about data; directory entries have SyncDir.
func (f *osFile) Sync() error {
	return f.control("sync", func(fd uintptr) error { return syscall.Fdatasync(int(fd)) })
}

// syncFileRangeWrite is SYNC_FILE_RANGE_WRITE (linux/fs.h).
const syncFileRangeWrite = 2

// StartWriteback asks the kernel to start writing the file's dirty pages to the device,
// without waiting for them and without a cache flush (sync_file_range with
// SYNC_FILE_RANGE_WRITE): a later Sync then has less left to write. It makes nothing
// durable.
func (f *osFile) StartWriteback() error {
	return f.control("writeback", func(fd uintptr) error {
		if _, _, e := syscall.Syscall6(syscall.SYS_SYNC_FILE_RANGE, fd, 0, 0, syncFileRangeWrite, 0, 0); e != 0 {
			return e
		}
		return nil
	})
}

// control runs call on the file's descriptor (retrying on EINTR) and names op in its error.
func (f *osFile) control(op string, call func(fd uintptr) error) error {
	rc, err := f.f.SyscallConn()
	if err != nil {
		return osErr(op, f.name, err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if serr = call(fd); serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return osErr(op, f.name, err)
	}
	return osErr(op, f.name, serr)
}

func (f *osFile) Truncate(size int64) error {
	return osErr("truncate", f.name, f.f.Truncate(size))
}

func (f *osFile) Size() (int64, error) {
	fi, err := f.f.Stat()
	if err != nil {
		return 0, osErr("stat", f.name, err)
	}
	return fi.Size(), nil
}

func (f *osFile) Close() error { return osErr("close", f.name, f.f.Close()) }
