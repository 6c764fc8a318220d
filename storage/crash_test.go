package storage_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/storage"
)

// The crash test runs the test binary again as a child (TestCrashChild, selected by
// -test.run and enabled by crashDirEnv). The child appends records through a GroupCommit
// with several goroutines on the real file system and prints "synced <id>" after each
// Append returns; the parent kills it with SIGKILL at a random moment, reopens the journal
// and checks it against what the child reported.
const (
	crashDirEnv    = "CAIRN_CRASH_CHILD_DIR"
	crashRoundEnv  = "CAIRN_CRASH_ROUND"
	crashWriters   = 8
	crashMinRecord = 100
	crashMaxRecord = 64 << 10
	crashMagic     = "CRSH"
	crashHeader    = 24 // magic | round u32 | writer u32 | seq u64 | size u32
	// crashRoundBudget bounds what one child writes, so the journal (reread in full at
	// every reopen) stays small enough for 20 rounds to run in seconds.
	crashRoundBudget = 24 << 20
)

// crashID names one record: the round (child) that wrote it, the writer goroutine and
// that writer's sequence number.
type crashID struct {
	round, writer uint32
	seq           uint64
}

func (id crashID) String() string { return fmt.Sprintf("%d-%d-%d", id.round, id.writer, id.seq) }

func parseCrashID(s string) (crashID, error) {
	var id crashID
	_, err := fmt.Sscanf(s, "%d-%d-%d", &id.round, &id.writer, &id.seq)
	return id, err
}

// crashRecord builds the record for id: a header, then a pattern determined by the header.
func crashRecord(id crashID, size int) []byte {
	b := make([]byte, size)
	copy(b, crashMagic)
	binary.LittleEndian.PutUint32(b[4:], id.round)
	binary.LittleEndian.PutUint32(b[8:], id.writer)
	binary.LittleEndian.PutUint64(b[12:], id.seq)
	binary.LittleEndian.PutUint32(b[20:], uint32(size))
	crashFill(b[crashHeader:], id)
	return b
}

func crashFill(p []byte, id crashID) {
	x := id.seq*0x9e3779b97f4a7c15 ^ uint64(id.writer)<<40 ^ uint64(id.round)<<52
	var w [8]byte
	for i := 0; i < len(p); i += 8 {
		x = x*6364136223846793005 + 1442695040888963407
		binary.LittleEndian.PutUint64(w[:], x^x>>29)
		copy(p[i:], w[:])
	}
}

// parseCrashRecord checks that r has the recognisable form and returns its id.
func parseCrashRecord(r []byte) (crashID, error) {
	if len(r) < crashHeader || string(r[:4]) != crashMagic {
		return crashID{}, fmt.Errorf("not a crash-test record (%d bytes)", len(r))
	}
	id := crashID{
		round:  binary.LittleEndian.Uint32(r[4:]),
		writer: binary.LittleEndian.Uint32(r[8:]),
		seq:    binary.LittleEndian.Uint64(r[12:]),
	}
	size := int(binary.LittleEndian.Uint32(r[20:]))
	if size != len(r) || size < crashMinRecord || size > crashMaxRecord || id.writer >= crashWriters {
		return id, fmt.Errorf("record %v: bad header (size %d, length %d)", id, size, len(r))
	}
	want := make([]byte, size-crashHeader)
	crashFill(want, id)
	if !bytes.Equal(r[crashHeader:], want) {
		return id, fmt.Errorf("record %v: payload damaged", id)
	}
	return id, nil
}

// TestCrashChild is the child process; it does nothing unless crashDirEnv is set.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("only run as the child of TestCrashRecovery")
	}
	round, err := strconv.ParseUint(os.Getenv(crashRoundEnv), 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	// Never outlive a parent that failed to kill us.
	time.AfterFunc(20*time.Second, func() { os.Exit(4) })
	fail := func(err error) {
		fmt.Fprintf(os.Stdout, "error %v\n", err)
		os.Exit(3)
	}
	j, _, err := storage.OpenJournal(storage.NewOSFS(dir), "journal")
	if err != nil {
		fail(err)
	}
	g := storage.NewGroupCommit(j, 16)
	if _, err := os.Stdout.WriteString("open\n"); err != nil {
		fail(err)
	}
	var out sync.Mutex
	var written int64
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(round, uint64(w)))
			for seq := uint64(0); ; seq++ {
				id := crashID{uint32(round), uint32(w), seq}
				// Log-uniform sizes over 100 B–64 KiB (mean about 10 KiB): every size class
				// is exercised while a round writes only a few MiB.
				size := int(crashMinRecord * math.Pow(float64(crashMaxRecord)/crashMinRecord, rng.Float64()))
				if err := g.Append(crashRecord(id, size)); err != nil {
					fail(fmt.Errorf("append %v: %w", id, err))
				}
				out.Lock()
				// One write per line on an unbuffered pipe: the parent sees it at once.
				_, err := os.Stdout.WriteString("synced " + id.String() + "\n")
				written += int64(size)
				over := written > crashRoundBudget
				out.Unlock()
				if err != nil {
					fail(err)
				}
				if over {
					return // wait to be killed
				}
				// A short random pause keeps the journal growing at tens of MB/s rather
				// than ~130, so 20 rounds of rereading it stay within seconds.
				time.Sleep(time.Duration(rng.IntN(1500)) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	select {}
}

// TestCrashRecovery kills a writing child with SIGKILL 20 times at random moments, each
// round continuing the same journal, and checks after every crash that every record the
// child reported synced is present and intact, that no record is damaged or invented,
// that each writer's records form a gap-free prefix in its own order, and that nothing
// recovered after an earlier crash has been lost since.
func TestCrashRecovery(t *testing.T) {
	switch runtime.GOOS {
	case "windows", "plan9", "js", "wasip1":
		t.Skip("needs SIGKILL and fork/exec")
	}
	const rounds = 20
	dir := t.TempDir()
	fsys := storage.NewOSFS(dir)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	// count[{round, writer}] = records of that writer recovered after its round's crash.
	type key struct{ round, writer uint32 }
	count := map[key]uint64{}
	var totalSynced, torn, withRecords int
	start := time.Now()
	for round := uint32(1); round <= rounds; round++ {
		// Mostly the clock starts when the child has recovered the journal and starts
		// appending (recovery takes longer as the journal grows); in every fourth round it
		// starts at exec, so some kills land during the child's own recovery.
		delay := time.Duration(20+rng.IntN(281)) * time.Millisecond
		fromExec := round%4 == 0
		synced, stdout := crashRunChild(t, dir, round, delay, fromExec)

		t0 := time.Now()
		j, rec, err := storage.OpenJournal(fsys, "journal")
		recovery := time.Since(t0)
		if err != nil {
			t.Fatalf("round %d (killed after %v): reopen: %v\nchild output tail:\n%s", round, delay, err, stdout)
		}
		if rec.Snapshot != nil {
			t.Fatalf("round %d: unexpected snapshot", round)
		}
		now := map[key]uint64{}
		for k, r := range rec.Records {
			id, err := parseCrashRecord(r)
			if err != nil {
				t.Fatalf("round %d: recovered record %d of %d: %v", round, k, len(rec.Records), err)
			}
			if id.round == 0 || id.round > round {
				t.Fatalf("round %d: recovered record %v from a round not yet run", round, id)
			}
			kk := key{id.round, id.writer}
			if id.seq != now[kk] {
				t.Fatalf("round %d: record %d is %v, but writer %d of round %d is due #%d (gap, duplicate or reorder)",
					round, k, id, id.writer, id.round, now[kk])
			}
			now[kk]++
		}
		// Earlier rounds' records: exactly what was recovered then, no more, no less.
		for kk, n := range count {
			if now[kk] != n {
				t.Fatalf("round %d: writer %d of round %d has %d records, had %d after its crash",
					round, kk.writer, kk.round, now[kk], n)
			}
		}
		// This round: every record reported synced is there.
		for _, id := range synced {
			if id.round != round || id.writer >= crashWriters {
				t.Fatalf("round %d: child reported a foreign id %v", round, id)
			}
			if id.seq >= now[key{id.round, id.writer}] {
				t.Fatalf("round %d (killed after %v): record %v was reported synced but is lost (writer has %d records)",
					round, delay, id, now[key{id.round, id.writer}])
			}
		}
		for w := range uint32(crashWriters) {
			if n, ok := now[key{round, w}]; ok {
				count[key{round, w}] = n
			}
		}
		totalSynced += len(synced)
		if rec.Truncated > 0 {
			torn++
		}
		if len(synced) > 0 {
			withRecords++
		}
		from := "open"
		if fromExec {
			from = "exec"
		}
		t.Logf("round %d: killed %v after %s, %d synced reported, %d records (%.1f MiB) recovered in %v, %d bytes torn tail cut",
			round, delay, from, len(synced), len(rec.Records), float64(j.Size())/(1<<20), recovery.Round(time.Millisecond), rec.Truncated)
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d rounds in %v: %d records reported synced, %d rounds with a torn tail", rounds,
		time.Since(start).Round(time.Millisecond), totalSynced, torn)
	if withRecords < rounds/2 {
		t.Fatalf("only %d of %d children got a record synced before the kill: the test checks too little", withRecords, rounds)
	}
}

// crashRunChild starts the child for round, kills it with SIGKILL delay after it reports
// the journal open (or after exec, if fromExec), and returns the ids it reported synced
// (complete lines only) and the tail of its output.
func crashRunChild(t *testing.T, dir string, round uint32, delay time.Duration, fromExec bool) ([]crashID, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, fmt.Sprintf("%s=%d", crashRoundEnv, round))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type result struct {
		ids  []crashID
		tail string
		err  error
	}
	done := make(chan result, 1)
	opened := make(chan struct{})
	go func() {
		var res result
		var last []string
		br := bufio.NewReader(pipe)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				if err != io.EOF {
					res.err = err
				}
				break // an unterminated last line is ignored
			}
			line = strings.TrimSuffix(line, "\n")
			if len(last) == 10 {
				last = last[1:]
			}
			last = append(last, line)
			if s, ok := strings.CutPrefix(line, "synced "); ok {
				id, err := parseCrashID(s)
				if err != nil {
					res.err = fmt.Errorf("bad line %q: %w", line, err)
					break
				}
				res.ids = append(res.ids, id)
			} else if line == "open" {
				close(opened)
			} else if res.err == nil {
				res.err = fmt.Errorf("child: %s", line)
			}
		}
		io.Copy(io.Discard, pipe)
		res.tail = strings.Join(last, "\n")
		done <- res
	}()
	var res result
	var got bool
	if !fromExec {
		select {
		case <-opened:
		case res = <-done: // it died: reported below
			got = true
		case <-time.After(15 * time.Second):
		}
	}
	time.Sleep(delay)
	kerr := cmd.Process.Kill() // SIGKILL on unix; fails if the child already exited
	if !got {
		res = <-done
	}
	werr := cmd.Wait()
	if cmd.ProcessState.ExitCode() != -1 { // -1: killed by a signal
		t.Fatalf("round %d: child ended on its own before the kill (%v; kill: %v)\nstdout tail:\n%s\nstderr:\n%s",
			round, werr, kerr, res.tail, stderr.String())
	}
	if res.err != nil {
		t.Fatalf("round %d: %v\nstderr:\n%s", round, res.err, stderr.String())
	}
	return res.ids, res.tail
}
