package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// tb is what the helpers need from *testing.T and *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

func mustT(t tb, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func readAll(t tb, fsys FS, name string) []byte {
	t.Helper()
	f, err := fsys.Open(name)
	mustT(t, err)
	defer f.Close()
	size, err := f.Size()
	mustT(t, err)
	buf := make([]byte, size)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !(err == io.EOF && n == len(buf)) {
		t.Fatalf("ReadAt %s: n=%d err=%v", name, n, err)
	}
	return buf
}

func writeFile(t tb, fsys FS, name string, data []byte, sync bool) File {
	t.Helper()
	f, err := fsys.Create(name)
	mustT(t, err)
	_, err = f.WriteAt(data, 0)
	mustT(t, err)
	if sync {
		mustT(t, f.Sync())
	}
	return f
}

func TestMemFSSyncedDataSurvivesCrash(t *testing.T) {
	for seed := range uint64(50) {
		m := NewMemFS(seed)
		mustT(t, m.MkdirAll("d"))
		want := bytes.Repeat([]byte(fmt.Sprint(seed)), 3000)
		f := writeFile(t, m, "d/f", want, true)
		mustT(t, m.SyncDir("d"))
		g := writeFile(t, m, "d/g", []byte("unsynced"), false) // neither data nor entry synced
		m.Crash()
		if _, err := f.WriteAt([]byte("x"), 0); !errors.Is(err, ErrCrashed) {
			t.Fatalf("write on pre-crash handle: %v", err)
		}
		if err := g.Close(); !errors.Is(err, ErrCrashed) {
			t.Fatalf("close on pre-crash handle: %v", err)
		}
		if got := readAll(t, m, "d/f"); !bytes.Equal(got, want) {
			t.Fatalf("seed %d: synced file lost data (len %d, want %d)", seed, len(got), len(want))
		}
		if names, _ := m.List("d"); !slices.Equal(names, []string{"f"}) {
			t.Fatalf("seed %d: entries after crash %q", seed, names)
		}
	}
}

func TestMemFSDirEntriesCrash(t *testing.T) {
	m := NewMemFS(1)
	mustT(t, m.MkdirAll("a/b")) // durable at once
	mustT(t, writeFile(t, m, "a/kept", []byte("k"), true).Close())
	mustT(t, m.SyncDir("a"))
	mustT(t, writeFile(t, m, "a/lost", []byte("l"), true).Close())
	mustT(t, writeFile(t, m, "a/b/lost", []byte("l"), true).Close())
	m.Crash()
	if names, _ := m.List("a"); !slices.Equal(names, []string{"b", "kept"}) {
		t.Fatalf("after crash List(a) = %q", names)
	}
	if names, _ := m.List("a/b"); len(names) != 0 {
		t.Fatalf("after crash List(a/b) = %q", names)
	}

	// Unsynced remove and rename revert; synced ones stick.
	mustT(t, m.Remove("a/kept"))
	m.Crash()
	if got := readAll(t, m, "a/kept"); string(got) != "k" {
		t.Fatalf("unsynced remove did not revert: %q", got)
	}
	mustT(t, m.Rename("a/kept", "a/renamed"))
	m.Crash()
	if names, _ := m.List("a"); !slices.Equal(names, []string{"b", "kept"}) {
		t.Fatalf("unsynced rename did not revert: %q", names)
	}
	mustT(t, m.Rename("a/kept", "a/renamed"))
	mustT(t, m.SyncDir("a"))
	m.Crash()
	if names, _ := m.List("a"); !slices.Equal(names, []string{"b", "renamed"}) {
		t.Fatalf("synced rename lost: %q", names)
	}
	mustT(t, m.Remove("a/renamed"))
	mustT(t, m.SyncDir("a"))
	m.Crash()
	if names, _ := m.List("a"); !slices.Equal(names, []string{"b"}) {
		t.Fatalf("synced remove lost: %q", names)
	}

	// A file removed (durably) while open keeps working until the crash.
	f := writeFile(t, m, "a/tmp", []byte("tmp"), true)
	mustT(t, m.SyncDir("a"))
	mustT(t, m.Remove("a/tmp"))
	mustT(t, m.SyncDir("a"))
	if _, err := f.WriteAt([]byte("!"), 3); err != nil {
		t.Fatal(err)
	}
	if m.Used() != 0 {
		t.Fatalf("unlinked file still counted: used %d", m.Used())
	}
	m.Crash()
	if _, err := m.Open("a/tmp"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("durably removed file reappeared: %v", err)
	}
}

// crashModel tracks, for one file, what content a crash may legitimately produce.
type crashModel struct {
	cur     []byte      // exact current content
	durable []byte      // exact durable content
	poss    [][4]uint64 // per offset: bitset of byte values a crash may leave there
	pending bool        // unsynced operations exist
	minLen  int         // bound on the post-crash length; offsets >= minLen may be 0
	maxLen  int
}

func (c *crashModel) reset(durable []byte) {
	c.durable = slices.Clone(durable)
	c.cur = slices.Clone(durable)
	c.poss = make([][4]uint64, len(durable))
	for i, b := range durable {
		c.poss[i][b/64] |= 1 << (b % 64)
	}
	c.pending = false
	c.minLen, c.maxLen = len(durable), len(durable)
}

func (c *crashModel) write(off int, p []byte) {
	end := off + len(p)
	if end > len(c.cur) {
		c.cur = append(c.cur, make([]byte, end-len(c.cur))...)
	}
	copy(c.cur[off:], p)
	for len(c.poss) < end {
		c.poss = append(c.poss, [4]uint64{})
	}
	for i, b := range p {
		c.poss[off+i][b/64] |= 1 << (b % 64)
	}
	c.maxLen = max(c.maxLen, end)
	c.pending = true
}

func (c *crashModel) truncate(n int) {
	if n < len(c.cur) {
		c.cur = c.cur[:n]
	} else {
		c.cur = append(c.cur, make([]byte, n-len(c.cur))...)
	}
	for len(c.poss) < n {
		c.poss = append(c.poss, [4]uint64{})
	}
	c.minLen = min(c.minLen, n)
	c.maxLen = max(c.maxLen, n)
	c.pending = true
}

func (c *crashModel) checkCrash(t *rapid.T, got []byte) {
	if !c.pending {
		if !bytes.Equal(got, c.durable) {
			t.Fatalf("crash changed fully synced file: len %d, want %d", len(got), len(c.durable))
		}
		return
	}
	if len(got) < c.minLen || len(got) > c.maxLen {
		t.Fatalf("post-crash length %d outside [%d, %d]", len(got), c.minLen, c.maxLen)
	}
	for i, b := range got {
		ok := c.poss[i][b/64]&(1<<(b%64)) != 0 || (b == 0 && i >= c.minLen)
		if !ok {
			t.Fatalf("post-crash byte %d = %#x was never written there", i, b)
		}
	}
}

// TestMemFSCrashNeverInventsBytes: after a crash every byte is the durable byte or one
// written by an unsynced write covering it (or a zero from extension), synced data is
// exact, and reads before a crash always see the current content.
func TestMemFSCrashNeverInventsBytes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := NewMemFS(rapid.Uint64().Draw(t, "seed"))
		f, err := m.Create("f")
		mustT(t, err)
		mustT(t, m.SyncDir("."))
		var model crashModel
		model.reset(nil)
		const span = 3*4096 + 700

		t.Repeat(map[string]func(*rapid.T){
			"write": func(t *rapid.T) {
				off := rapid.IntRange(0, span).Draw(t, "off")
				n := rapid.IntRange(1, 5000).Draw(t, "n")
				fill := rapid.Byte().Draw(t, "fill")
				p := make([]byte, n)
				for i := range p {
					p[i] = fill + byte(i*7) // distinct-ish values per offset
				}
				_, err := f.WriteAt(p, int64(off))
				mustT(t, err)
				model.write(off, p)
			},
			"truncate": func(t *rapid.T) {
				n := rapid.IntRange(0, span).Draw(t, "size")
				mustT(t, f.Truncate(int64(n)))
				model.truncate(n)
			},
			"sync": func(t *rapid.T) {
				mustT(t, f.Sync())
				model.reset(model.cur)
			},
			"crash": func(t *rapid.T) {
				m.Crash()
				got := readAll(t, m, "f")
				model.checkCrash(t, got)
				model.reset(got)
				f, err = m.Open("f")
				mustT(t, err)
			},
			"": func(t *rapid.T) { // invariant: reads see the current content
				if got := readAll(t, m, "f"); !bytes.Equal(got, model.cur) {
					t.Fatalf("content diverged from model: len %d, want %d", len(got), len(model.cur))
				}
			},
		})
	})
}

// TestMemFSCrashOutcomesVary checks that crashes really do drop, keep and tear writes.
func TestMemFSCrashOutcomesVary(t *testing.T) {
	kinds := map[string]int{}
	for seed := range uint64(300) {
		m := NewMemFS(seed)
		f, err := m.Create("f")
		mustT(t, err)
		mustT(t, m.SyncDir("."))
		size := 8 * m.SectorSize()
		_, err = f.WriteAt(bytes.Repeat([]byte{0xAB}, size), 0)
		mustT(t, err)
		m.Crash()
		got := readAll(t, m, "f")
		switch c := bytes.Count(got, []byte{0xAB}); {
		case len(got) == 0:
			kinds["dropped"]++
		case c == size && len(got) == size:
			kinds["whole"]++
		default:
			kinds["torn"]++
			for i := 0; i < len(got); i += m.SectorSize() {
				s := got[i:min(len(got), i+m.SectorSize())]
				if c := bytes.Count(s, []byte{0xAB}); c != 0 && c != len(s) {
					t.Fatalf("seed %d: sector at %d torn inside", seed, i)
				}
			}
		}
	}
	for _, k := range []string{"dropped", "whole", "torn"} {
		if kinds[k] < 30 {
			t.Errorf("outcome %q seen %d/300 times: %v", k, kinds[k], kinds)
		}
	}
}

// crashScenario runs a fixed workload and returns a snapshot after a crash.
func crashScenario(t *testing.T, seed uint64) string {
	m := NewMemFS(seed)
	mustT(t, m.MkdirAll("d"))
	var files []File
	for i := range 4 {
		f, err := m.Create(fmt.Sprintf("d/f%d", i))
		mustT(t, err)
		files = append(files, f)
	}
	mustT(t, m.SyncDir("d"))
	for step := range 200 {
		f := files[step%4]
		_, err := f.WriteAt(bytes.Repeat([]byte{byte(step)}, 300+step), int64(step*97%5000))
		mustT(t, err)
		if step%37 == 0 {
			mustT(t, f.Truncate(int64(step*11)))
		}
		if step%50 == 0 {
			mustT(t, f.Sync())
		}
	}
	mustT(t, m.Rename("d/f0", "d/g"))
	m.Crash()
	var sb bytes.Buffer
	names, err := m.List("d")
	mustT(t, err)
	for _, n := range names {
		fmt.Fprintf(&sb, "%s=%x\n", n, readAll(t, m, "d/"+n))
	}
	return sb.String()
}

func TestMemFSSameSeedSameCrash(t *testing.T) {
	distinct := map[string]bool{}
	for seed := range uint64(10) {
		a, b := crashScenario(t, seed), crashScenario(t, seed)
		if a != b {
			t.Fatalf("seed %d: crash outcome not deterministic", seed)
		}
		distinct[a] = true
	}
	if len(distinct) < 5 {
		t.Fatalf("only %d distinct crash outcomes over 10 seeds", len(distinct))
	}
}

func TestMemFSFaultRates(t *testing.T) {
	const ops, ppm = 20000, 100_000 // 10%
	run := func(seed uint64) (MemStats, []int) {
		m := NewMemFS(seed)
		f, err := m.Create("f")
		mustT(t, err)
		data := bytes.Repeat([]byte{0x5A}, 64)
		_, err = f.WriteAt(data, 0)
		mustT(t, err)
		m.SetFaults(MemFaults{ReadErrorPPM: ppm, WriteErrorPPM: ppm, BitFlipPPM: ppm})
		var events []int
		buf := make([]byte, 64)
		for i := range ops {
			n, err := f.ReadAt(buf, 0)
			switch {
			case errors.Is(err, ErrInjected):
				if n != 0 {
					t.Fatalf("failed read returned %d bytes", n)
				}
				events = append(events, i)
			case err != nil:
				t.Fatal(err)
			case !bytes.Equal(buf, data):
				diff := 0
				for j := range buf {
					diff += popcount(buf[j] ^ data[j])
				}
				if diff != 1 {
					t.Fatalf("corrupted read differs in %d bits", diff)
				}
				events = append(events, -i)
			}
			if _, err := f.WriteAt([]byte{0xEE}, 64+int64(i)); errors.Is(err, ErrInjected) {
				events = append(events, ops+i)
			} else if err != nil {
				t.Fatal(err)
			}
		}
		m.SetFaults(MemFaults{})
		// Stored data is untouched by bit flips; failed writes wrote nothing.
		got := readAll(t, m, "f")
		if !bytes.Equal(got[:64], data) {
			t.Fatal("bit flip on read changed stored data")
		}
		failed := map[int]bool{}
		last := -1
		for _, e := range events {
			if e >= ops {
				failed[e-ops] = true
			}
		}
		for i := range ops {
			if !failed[i] {
				last = i
			}
		}
		if len(got) != 64+last+1 {
			t.Fatalf("size %d, want %d", len(got), 64+last+1)
		}
		for i, b := range got[64:] {
			want := byte(0xEE)
			if failed[i] {
				want = 0
			}
			if b != want {
				t.Fatalf("byte %d = %#x, want %#x", 64+i, b, want)
			}
		}
		return m.Stats(), events
	}
	s1, e1 := run(7)
	s2, e2 := run(7)
	if s1 != s2 || !slices.Equal(e1, e2) {
		t.Fatal("fault injection not deterministic for a seed")
	}
	_, e3 := run(8)
	if slices.Equal(e1, e3) {
		t.Fatal("different seeds injected identical faults")
	}
	lo, hi := uint64(ops*ppm/1e6*0.8), uint64(ops*ppm/1e6*1.2)
	// Bit flips are drawn only for reads that did not fail.
	for name, got := range map[string]uint64{"read": s1.ReadErrors, "write": s1.WriteErrors, "flip": s1.BitFlips} {
		if got < lo || got > hi {
			t.Errorf("%s faults: %d, want in [%d, %d]", name, got, lo, hi)
		}
	}
}

func popcount(b byte) int {
	n := 0
	for ; b != 0; b &= b - 1 {
		n++
	}
	return n
}

func TestMemFSCapacity(t *testing.T) {
	m := NewMemFS(3)
	m.SetFaults(MemFaults{CapacityBytes: 1000})
	f, err := m.Create("a")
	mustT(t, err)
	_, err = f.WriteAt(make([]byte, 800), 0)
	mustT(t, err)
	g, err := m.Create("b")
	mustT(t, err)
	if _, err := g.WriteAt(make([]byte, 300), 0); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("over-capacity write: %v", err)
	}
	if size, _ := g.Size(); size != 0 {
		t.Fatalf("refused write changed size to %d", size)
	}
	if _, err := f.WriteAt(make([]byte, 201), 800); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("over-capacity append: %v", err)
	}
	_, err = f.WriteAt(bytes.Repeat([]byte{1}, 800), 0) // overwrite: no growth
	mustT(t, err)
	_, err = g.WriteAt(make([]byte, 200), 0) // exactly full
	mustT(t, err)
	if m.Used() != 1000 || m.Stats().NoSpace != 2 {
		t.Fatalf("used %d, nospace %d", m.Used(), m.Stats().NoSpace)
	}
	mustT(t, m.Remove("a")) // frees space
	_, err = g.WriteAt(make([]byte, 800), 200)
	mustT(t, err)
	if _, err := f.WriteAt(make([]byte, 5000), 0); err != nil { // unlinked: not counted
		t.Fatal(err)
	}
	if m.Used() != 1000 {
		t.Fatalf("used %d, want 1000", m.Used())
	}
}

func TestMemFSCorruptByte(t *testing.T) {
	m := NewMemFS(5)
	want := bytes.Repeat([]byte{0x33}, 100)
	f := writeFile(t, m, "f", want, true)
	mustT(t, m.SyncDir("."))
	mustT(t, m.CorruptByte("f", 10))
	// Also corrupt a byte under an unsynced write: it must stay corrupt after Sync.
	_, err := f.WriteAt([]byte{0x44, 0x44}, 50)
	mustT(t, err)
	want[50], want[51] = 0x44, 0x44
	mustT(t, m.CorruptByte("f", 51))
	mustT(t, f.Sync())
	check := func(stage string) {
		got := readAll(t, m, "f")
		for i := range got {
			bad := popcount(got[i] ^ want[i])
			if (i == 10 || i == 51) != (bad == 1) || bad > 1 {
				t.Fatalf("%s: byte %d = %#x (want %#x corrupted only at 10, 51)", stage, i, got[i], want[i])
			}
		}
	}
	check("before crash")
	m.Crash()
	check("after crash")
	if err := m.CorruptByte("f", 100); err == nil {
		t.Fatal("corrupting past EOF succeeded")
	}
	if err := m.CorruptByte("nope", 0); !errors.Is(err, ErrNotExist) {
		t.Fatalf("corrupting missing file: %v", err)
	}
	if m.Stats().Corruptions != 2 {
		t.Fatalf("stats %+v", m.Stats())
	}
}

// TestMemFSSmallWritesFast guards the O(write) / O(dirty) cost model: many small
// writes and syncs to a large file must not copy the file each time.
func TestMemFSSmallWritesFast(t *testing.T) {
	m := NewMemFS(9)
	f, err := m.Create("big")
	mustT(t, err)
	_, err = f.WriteAt(make([]byte, 64<<20), 0)
	mustT(t, err)
	mustT(t, f.Sync())
	rec := make([]byte, 100)
	res := testing.Benchmark(func(b *testing.B) {
		for i := range b.N {
			if _, err := f.WriteAt(rec, int64(i%(1<<20))*64); err != nil {
				b.Fatal(err)
			}
			if i%8 == 0 {
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	if ns := res.NsPerOp(); ns > 20_000 {
		t.Fatalf("small write+sync on a 64 MiB file costs %d ns/op", ns)
	}
}

func BenchmarkMemFSAppendSync(b *testing.B) {
	m := NewMemFS(1)
	f, _ := m.Create("j")
	rec := make([]byte, 128)
	for i := range b.N {
		f.WriteAt(rec, int64(i)*128)
		if i%16 == 15 {
			f.Sync()
		}
	}
}
