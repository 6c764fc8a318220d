package storage

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
)

func TestOSFSContract(t *testing.T) {
	testFSContract(t, func(t *testing.T) FS { return NewOSFS(t.TempDir()) })
}

func TestMemFSContract(t *testing.T) {
	seed := uint64(0)
	testFSContract(t, func(t *testing.T) FS { seed++; return NewMemFS(seed) })
}

// testFSContract checks the behaviour every FS implementation must share.
func testFSContract(t *testing.T, newFS func(t *testing.T) FS) {
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	create := func(t *testing.T, fsys FS, name string, data string) File {
		t.Helper()
		f, err := fsys.Create(name)
		must(t, err)
		if data != "" {
			n, err := f.WriteAt([]byte(data), 0)
			must(t, err)
			if n != len(data) {
				t.Fatalf("WriteAt wrote %d of %d", n, len(data))
			}
		}
		return f
	}
	contents := func(t *testing.T, f File) string {
		t.Helper()
		size, err := f.Size()
		must(t, err)
		buf := make([]byte, size)
		n, err := f.ReadAt(buf, 0)
		if err != nil && !(err == io.EOF && n == len(buf)) {
			t.Fatalf("ReadAt: n=%d err=%v", n, err)
		}
		return string(buf[:n])
	}
	list := func(t *testing.T, fsys FS, dir string) []string {
		t.Helper()
		names, err := fsys.List(dir)
		must(t, err)
		return names
	}

	t.Run("WriteReadSize", func(t *testing.T) {
		fsys := newFS(t)
		f := create(t, fsys, "a", "hello")
		_, err := f.WriteAt([]byte("XY"), 10) // extends with zeros
		must(t, err)
		if got, want := contents(t, f), "hello\x00\x00\x00\x00\x00XY"; got != want {
			t.Fatalf("content %q, want %q", got, want)
		}
		_, err = f.WriteAt([]byte("EL"), 1) // overwrite in place
		must(t, err)
		buf := make([]byte, 20)
		n, err := f.ReadAt(buf, 0)
		if n != 12 || err != io.EOF || string(buf[:n]) != "hELlo\x00\x00\x00\x00\x00XY" {
			t.Fatalf("short read: n=%d err=%v %q", n, err, buf[:n])
		}
		n, err = f.ReadAt(buf[:4], 8)
		if n != 4 || err != nil || string(buf[:4]) != "\x00\x00XY" {
			t.Fatalf("exact read: n=%d err=%v %q", n, err, buf[:4])
		}
		for _, off := range []int64{12, 100} {
			if n, err := f.ReadAt(buf, off); n != 0 || err != io.EOF {
				t.Fatalf("read at %d: n=%d err=%v, want 0, io.EOF", off, n, err)
			}
		}
		if _, err := f.ReadAt(buf, -1); err == nil {
			t.Fatal("negative read offset accepted")
		}
		if _, err := f.WriteAt(buf, -1); err == nil {
			t.Fatal("negative write offset accepted")
		}
		must(t, f.Sync())
		must(t, f.Close())
		if _, err := f.ReadAt(buf, 0); err == nil {
			t.Fatal("read after Close succeeded")
		}
		g, err := fsys.Open("a")
		must(t, err)
		if got := contents(t, g); got != "hELlo\x00\x00\x00\x00\x00XY" {
			t.Fatalf("reopened content %q", got)
		}
		must(t, g.Close())
	})

	t.Run("Truncate", func(t *testing.T) {
		fsys := newFS(t)
		f := create(t, fsys, "a", "abcdefgh")
		must(t, f.Truncate(3))
		if got := contents(t, f); got != "abc" {
			t.Fatalf("after shrink %q", got)
		}
		must(t, f.Truncate(6)) // grows with zeros, not the old bytes
		if got := contents(t, f); got != "abc\x00\x00\x00" {
			t.Fatalf("after grow %q", got)
		}
		if err := f.Truncate(-1); err == nil {
			t.Fatal("negative truncate accepted")
		}
		must(t, f.Close())
		g := create(t, fsys, "a", "") // Create truncates an existing file
		if size, err := g.Size(); err != nil || size != 0 {
			t.Fatalf("Create on existing: size %d err %v", size, err)
		}
		must(t, g.Close())
	})

	t.Run("NotExist", func(t *testing.T) {
		fsys := newFS(t)
		must(t, fsys.MkdirAll("d"))
		checks := map[string]error{}
		_, checks["Open"] = fsys.Open("missing")
		_, checks["OpenInDir"] = fsys.Open("d/missing")
		_, checks["CreateInMissingDir"] = fsys.Create("nodir/a")
		checks["Remove"] = fsys.Remove("missing")
		checks["Rename"] = fsys.Rename("missing", "x")
		_, checks["List"] = fsys.List("nodir")
		checks["SyncDir"] = fsys.SyncDir("nodir")
		for op, err := range checks {
			if !errors.Is(err, ErrNotExist) {
				t.Errorf("%s: err %v, want ErrNotExist", op, err)
			}
		}
	})

	t.Run("RenameRemoveList", func(t *testing.T) {
		fsys := newFS(t)
		must(t, fsys.MkdirAll("d/e"))
		must(t, fsys.MkdirAll("d/e")) // idempotent
		for _, n := range []string{"d/c", "d/a", "d/b"} {
			must(t, create(t, fsys, n, n).Close())
		}
		if got := list(t, fsys, "d"); !slices.Equal(got, []string{"a", "b", "c", "e"}) {
			t.Fatalf("List(d) = %q", got)
		}
		if got := list(t, fsys, "."); !slices.Equal(got, []string{"d"}) {
			t.Fatalf("List(.) = %q", got)
		}
		if got := list(t, fsys, "d/e"); len(got) != 0 {
			t.Fatalf("List(d/e) = %q", got)
		}
		must(t, fsys.Rename("d/a", "d/e/z"))
		must(t, fsys.Rename("d/b", "d/c")) // replaces
		if got := list(t, fsys, "d"); !slices.Equal(got, []string{"c", "e"}) {
			t.Fatalf("after renames List(d) = %q", got)
		}
		f, err := fsys.Open("d/c")
		must(t, err)
		if got := contents(t, f); got != "d/b" {
			t.Fatalf("renamed-over file holds %q", got)
		}
		// An open file stays usable after its name is renamed or removed.
		must(t, fsys.Rename("d/c", "d/c2"))
		_, err = f.WriteAt([]byte("!"), 3)
		must(t, err)
		must(t, fsys.Remove("d/c2"))
		if got := contents(t, f); got != "d/b!" {
			t.Fatalf("after remove the handle reads %q", got)
		}
		must(t, f.Sync())
		must(t, f.Close())
		if _, err := fsys.Open("d/c2"); !errors.Is(err, ErrNotExist) {
			t.Fatalf("removed file opens: %v", err)
		}
		if err := fsys.Remove("d/e"); err == nil {
			t.Fatal("removed a non-empty directory")
		}
		must(t, fsys.Remove("d/e/z"))
		must(t, fsys.Remove("d/e"))
		if got := list(t, fsys, "d"); len(got) != 0 {
			t.Fatalf("List(d) = %q", got)
		}
		must(t, fsys.SyncDir("d"))
		must(t, fsys.SyncDir("."))
		must(t, fsys.SyncDir(""))
	})

	t.Run("PathEscape", func(t *testing.T) {
		fsys := newFS(t)
		must(t, fsys.MkdirAll("d"))
		for _, name := range []string{"../x", "/etc/passwd", "d/../../x", "d/../x", "..", "a\x00b"} {
			_, e1 := fsys.Create(name)
			_, e2 := fsys.Open(name)
			e3 := fsys.Remove(name)
			e4 := fsys.Rename("d", name)
			e5 := fsys.MkdirAll(name)
			_, e6 := fsys.List(name)
			e7 := fsys.SyncDir(name)
			for i, err := range []error{e1, e2, e3, e4, e5, e6, e7} {
				if !errors.Is(err, ErrBadPath) {
					t.Errorf("op %d on %q: err %v, want ErrBadPath", i+1, name, err)
				}
			}
		}
		for _, name := range []string{"", "."} {
			if _, err := fsys.Create(name); !errors.Is(err, ErrBadPath) {
				t.Errorf("Create(%q): %v", name, err)
			}
		}
		if _, err := fsys.Create("./d//ok"); err != nil { // cleaned, stays inside
			t.Fatal(err)
		}
		if got := list(t, fsys, "d"); !slices.Equal(got, []string{"ok"}) {
			t.Fatalf("List(d) = %q", got)
		}
	})

	t.Run("Dirs", func(t *testing.T) {
		fsys := newFS(t)
		must(t, create(t, fsys, "f", "x").Close())
		if _, err := fsys.List("f"); err == nil {
			t.Fatal("List on a file succeeded")
		}
		if err := fsys.MkdirAll("f/g"); err == nil {
			t.Fatal("MkdirAll through a file succeeded")
		}
		must(t, fsys.MkdirAll("d"))
		if _, err := fsys.Create("d"); err == nil {
			t.Fatal("Create on a directory succeeded")
		}
	})

	t.Run("LargeSparse", func(t *testing.T) {
		fsys := newFS(t)
		f := create(t, fsys, "big", "")
		chunk := bytes.Repeat([]byte{0xA5}, 10000)
		for i := range 10 {
			_, err := f.WriteAt(chunk, int64(i)*20000+7)
			must(t, err)
		}
		must(t, f.Sync())
		got := contents(t, f)
		if len(got) != 9*20000+7+10000 {
			t.Fatalf("size %d", len(got))
		}
		for i := range len(got) {
			rel := (i - 7) % 20000
			want := byte(0)
			if i >= 7 && rel < 10000 {
				want = 0xA5
			}
			if got[i] != want {
				t.Fatalf("byte %d = %#x, want %#x", i, got[i], want)
			}
		}
		must(t, f.Close())
	})
}
