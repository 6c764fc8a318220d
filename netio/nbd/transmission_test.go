package nbd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func pattern(seed byte, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = seed + byte(i*7) + byte(i>>9)
	}
	return p
}

func TestReadWrite(t *testing.T) {
	mem := newMem(40 << 20)
	srv := newTestServer(t, Export{Name: "d", Backend: mem})
	cl, done := dial(t, srv)
	if _, err := cl.go_("d"); err != nil {
		t.Fatal(err)
	}
	if cl.size != 40<<20 {
		t.Fatalf("size %d", cl.size)
	}

	// Aligned, unaligned and multi-block writes, each read back whole and
	// in odd pieces.
	writes := []struct {
		off uint64
		n   int
	}{
		{0, 65536}, {4095, 3}, {12345, 1<<20 + 17}, {40<<20 - 1, 1}, {3 << 20, 4096},
	}
	for i, w := range writes {
		p := pattern(byte(i*31+1), w.n)
		cl.write(w.off, p, 0)
		if got := cl.read(w.off, uint32(w.n)); !bytes.Equal(got, p) {
			t.Fatalf("write %d: read back differs", i)
		}
		if got := mem.snapshot(int(w.off), w.n); !bytes.Equal(got, p) {
			t.Fatalf("write %d: backend differs", i)
		}
		for off := 0; off < w.n; off += 777 {
			n := min(777, w.n-off)
			if got := cl.read(w.off+uint64(off), uint32(n)); !bytes.Equal(got, p[off:off+n]) {
				t.Fatalf("write %d: piece at %d differs", i, off)
			}
		}
	}
	// The largest request both ways.
	big := pattern(9, MaxRequestLen)
	cl.write(1, big, 0)
	if got := cl.read(1, MaxRequestLen); !bytes.Equal(got, big) {
		t.Fatal("32 MiB read back differs")
	}

	// FUA reaches the backend.
	before := mem.fuas.Load()
	cl.write(8192, []byte("durable"), cmdFlagFUA)
	if mem.fuas.Load() != before+1 {
		t.Fatal("WRITE with FUA did not reach the backend with fua")
	}
	// FUA on a READ is accepted (and ignored).
	if e, _ := cl.do(cmdRead, cmdFlagFUA, 8192, 7, nil); e != 0 {
		t.Fatalf("READ with FUA: %s", errnoName(e))
	}
	if err := cl.disc(); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, done); err != nil {
		t.Fatal(err)
	}
}

func TestFlushTrimWriteZeroes(t *testing.T) {
	mem := newMem(1 << 20)
	srv := newTestServer(t, Export{Name: "d", Backend: mem})
	cl, _ := dial(t, srv)
	if _, err := cl.go_("d"); err != nil {
		t.Fatal(err)
	}
	ones := bytes.Repeat([]byte{0xff}, 1<<20)
	cl.write(0, ones, 0)

	if e, _ := cl.do(cmdFlush, 0, 0, 0, nil); e != 0 || mem.flushes.Load() != 1 {
		t.Fatalf("FLUSH: %s, %d flushes", errnoName(e), mem.flushes.Load())
	}
	if e, _ := cl.do(cmdTrim, 0, 4096, 8192, nil); e != 0 {
		t.Fatalf("TRIM: %s", errnoName(e))
	}
	fuas := mem.fuas.Load()
	if e, _ := cl.do(cmdTrim, cmdFlagFUA, 100, 1, nil); e != 0 || mem.fuas.Load() != fuas+1 {
		t.Fatalf("TRIM with FUA: %s", errnoName(e))
	}
	if e, _ := cl.do(cmdWriteZeroes, 0, 65536, 3, nil); e != 0 {
		t.Fatalf("WRITE_ZEROES: %s", errnoName(e))
	}
	if e, _ := cl.do(cmdWriteZeroes, cmdFlagNoHole|cmdFlagFUA, 1<<19, 1<<19, nil); e != 0 || mem.fuas.Load() != fuas+2 {
		t.Fatalf("WRITE_ZEROES with NO_HOLE|FUA: %s", errnoName(e))
	}
	// Zero-length TRIM and WRITE_ZEROES are no-ops.
	if e, _ := cl.do(cmdTrim, 0, 0, 0, nil); e != 0 {
		t.Fatalf("empty TRIM: %s", errnoName(e))
	}
	want := bytes.Clone(ones)
	clear(want[4096 : 4096+8192])
	want[100] = 0
	clear(want[65536 : 65536+3])
	clear(want[1<<19:])
	if got := cl.read(0, 1<<20); !bytes.Equal(got, want) {
		t.Fatal("contents after TRIM/WRITE_ZEROES differ")
	}
}

func TestRequestErrors(t *testing.T) {
	const size = 1 << 20
	mem := newMem(size)
	srv := newTestServer(t, Export{Name: "d", Backend: mem})
	cl, done := dial(t, srv)
	if _, err := cl.go_("d"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		cmd    uint16
		flags  uint16
		off    uint64
		length uint32
		want   uint32
	}{
		{"read past end", cmdRead, 0, size - 10, 11, errnoINVAL},
		{"read offset past end", cmdRead, 0, size + 1, 1, errnoINVAL},
		{"read offset overflow", cmdRead, 0, 1<<64 - 1, 2, errnoINVAL},
		{"read zero length", cmdRead, 0, 0, 0, errnoINVAL},
		{"read too long", cmdRead, 0, 0, MaxRequestLen + 1, errnoINVAL},
		{"read bad flag", cmdRead, cmdFlagNoHole, 0, 1, errnoINVAL},
		{"write past end", cmdWrite, 0, size - 1, 2, errnoNOSPC},
		{"write zero length", cmdWrite, 0, 0, 0, errnoINVAL},
		{"write NO_HOLE", cmdWrite, cmdFlagNoHole, 0, 5, errnoINVAL},
		{"write DF", cmdWrite, cmdFlagDF, 0, 5, errnoINVAL},
		{"trim past end", cmdTrim, 0, size, 1, errnoINVAL},
		{"zeroes past end", cmdWriteZeroes, 0, 1, size, errnoNOSPC},
		{"zeroes FAST_ZERO", cmdWriteZeroes, cmdFlagFastZero, 0, 1, errnoINVAL},
		{"cache", cmdCache, 0, 0, 1, errnoINVAL},
		{"block status", cmdBlockStatus, 0, 0, 1, errnoINVAL},
		{"unknown command", 200, 0, 0, 1, errnoINVAL},
	}
	for _, c := range cases {
		var payload []byte
		if c.cmd == cmdWrite {
			payload = pattern(1, int(c.length)) // a refused payload is still read
		}
		if e, _ := cl.do(c.cmd, c.flags, c.off, c.length, payload); e != c.want {
			t.Errorf("%s: %s, want %s", c.name, errnoName(e), errnoName(c.want))
		}
	}
	// Nothing reached the backend, and the connection still works.
	if !bytes.Equal(mem.snapshot(0, size), make([]byte, size)) {
		t.Fatal("a refused request changed the backend")
	}
	cl.write(size-2, []byte{1, 2}, 0)
	if got := cl.read(size-2, 2); !bytes.Equal(got, []byte{1, 2}) {
		t.Fatalf("read %v", got)
	}
	if err := cl.disc(); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, done); err != nil {
		t.Fatal(err)
	}
}

func TestBackendErrors(t *testing.T) {
	mem := newMem(1 << 16)
	mem.gate = func(op string) error {
		switch op {
		case "read":
			return errors.New("disk on fire")
		case "write":
			return fmt.Errorf("cluster: %w", ErrNoSpace)
		case "trim":
			panic("backend bug")
		}
		return nil
	}
	srv := newTestServer(t, Export{Name: "d", Backend: mem})
	cl, _ := dial(t, srv)
	if _, err := cl.go_("d"); err != nil {
		t.Fatal(err)
	}
	if e, d := cl.do(cmdRead, 0, 0, 4096, nil); e != errnoIO || d != nil {
		t.Fatalf("failing READ: %s with %d bytes, want EIO without payload", errnoName(e), len(d))
	}
	if e, _ := cl.do(cmdWrite, 0, 0, 3, []byte("abc")); e != errnoNOSPC {
		t.Fatalf("WRITE wrapping ErrNoSpace: %s", errnoName(e))
	}
	if e, _ := cl.do(cmdTrim, 0, 0, 3, nil); e != errnoIO {
		t.Fatalf("panicking TRIM: %s", errnoName(e))
	}
	if e, _ := cl.do(cmdFlush, 0, 0, 0, nil); e != 0 {
		t.Fatalf("FLUSH after errors: %s", errnoName(e))
	}
}

func TestReadOnlyExport(t *testing.T) {
	mem := newMem(1 << 16)
	copy(mem.data, "read me")
	srv := newTestServer(t, Export{Name: "ro", Backend: mem, ReadOnly: true})
	cl, _ := dial(t, srv)
	if _, err := cl.go_("ro"); err != nil {
		t.Fatal(err)
	}
	if cl.tflags&tflagReadOnly == 0 {
		t.Fatalf("flags %#x lack READ_ONLY", cl.tflags)
	}
	for _, c := range []struct {
		cmd     uint16
		length  uint32
		payload []byte
	}{{cmdWrite, 4, []byte("nope")}, {cmdTrim, 4, nil}, {cmdWriteZeroes, 4, nil}} {
		if e, _ := cl.do(c.cmd, 0, 0, c.length, c.payload); e != errnoPERM {
			t.Fatalf("%s on a read-only export: %s, want EPERM", cmdName(c.cmd), errnoName(e))
		}
	}
	if got := cl.read(0, 7); string(got) != "read me" {
		t.Fatalf("read %q", got)
	}
}

func TestProtocolViolationsClose(t *testing.T) {
	srv := newTestServer(t, Export{Name: "d", Backend: newMem(1 << 16)})

	// A WRITE longer than the maximum: EINVAL, then the server closes
	// rather than read 32 MiB+ of payload.
	cl, done := dial(t, srv)
	if _, err := cl.go_("d"); err != nil {
		t.Fatal(err)
	}
	c, err := cl.send(cmdWrite, 0, 0, MaxRequestLen+1, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("no reply")
	}
	if c.err != nil || c.errno != errnoINVAL {
		t.Fatalf("oversized WRITE: %v %s, want EINVAL", c.err, errnoName(c.errno))
	}
	<-cl.rdone
	if err := waitErr(t, done); err == nil {
		t.Fatal("ServeConn returned nil after an oversized WRITE")
	}

	// A bad request magic closes the connection.
	cl, done = dial(t, srv)
	if _, err := cl.go_("d"); err != nil {
		t.Fatal(err)
	}
	cl.c.Write(make([]byte, 28))
	<-cl.rdone
	if err := waitErr(t, done); err == nil {
		t.Fatal("ServeConn returned nil after a bad request magic")
	}

	// Closing between requests without DISC is a clean end.
	cl, done = dial(t, srv)
	if _, err := cl.go_("d"); err != nil {
		t.Fatal(err)
	}
	cl.read(0, 10)
	cl.c.Close()
	if err := waitErr(t, done); err != nil {
		t.Fatalf("ServeConn after the client closed: %v", err)
	}
}

// holdGate holds every backend call until release is closed, counting the
// calls inside.
type holdGate struct {
	cur, max atomic.Int64
	release  chan struct{}
	reached  chan struct{}
	target   int64
	once     sync.Once
}

func newHoldGate(target int64) *holdGate {
	return &holdGate{release: make(chan struct{}), reached: make(chan struct{}), target: target}
}

func (g *holdGate) gate(string) error {
	n := g.cur.Add(1)
	for {
		m := g.max.Load()
		if n <= m || g.max.CompareAndSwap(m, n) {
			break
		}
	}
	if n == g.target {
		g.once.Do(func() { close(g.reached) })
	}
	defer g.cur.Add(-1)
	select {
	case <-g.release:
		return nil
	case <-time.After(20 * time.Second):
		return errors.New("holdGate: never released")
	}
}

func TestManyInFlight(t *testing.T) {
	const reqs, n = 100, 4096
	mem := newMem(reqs * n)
	for i := range reqs {
		copy(mem.data[i*n:], pattern(byte(i), n))
	}
	g := newHoldGate(64)
	mem.gate = g.gate
	srv := newTestServer(t, Export{Name: "d", Backend: mem})
	cl, _ := dial(t, srv)
	if _, err := cl.go_("d"); err != nil {
		t.Fatal(err)
	}
	// Reads in a shuffled order; the replies must match by cookie.
	order := rand.New(rand.NewPCG(1, 2)).Perm(reqs)
	calls := make([]*call, reqs)
	for _, i := range order {
		c, err := cl.send(cmdRead, 0, uint64(i*n), n, nil)
		if err != nil {
			t.Fatal(err)
		}
		calls[i] = c
	}
	select {
	case <-g.reached:
	case <-time.After(10 * time.Second):
		t.Fatalf("only %d requests reached the backend at once, want 64", g.cur.Load())
	}
	time.Sleep(100 * time.Millisecond) // room for a 65th, which must not come
	if c := g.cur.Load(); c != 64 {
		t.Fatalf("%d requests in the backend at once, want exactly 64", c)
	}
	close(g.release)
	for i, c := range calls {
		e, d := c.wait(t)
		if e != 0 || !bytes.Equal(d, pattern(byte(i), n)) {
			t.Fatalf("request %d: %s, data matches %v", i, errnoName(e), bytes.Equal(d, pattern(byte(i), n)))
		}
	}
	if m := g.max.Load(); m != 64 {
		t.Fatalf("max in flight %d, want 64", m)
	}
}

func TestDiscWaitsForInFlight(t *testing.T) {
	mem := newMem(1 << 16)
	g := newHoldGate(3)
	mem.gate = g.gate
	srv := newTestServer(t, Export{Name: "d", Backend: mem})
	cl, done := dial(t, srv)
	if _, err := cl.go_("d"); err != nil {
		t.Fatal(err)
	}
	w, _ := cl.send(cmdWrite, cmdFlagFUA, 10, 5, []byte("after"))
	r, _ := cl.send(cmdRead, 0, 0, 4, nil)
	f, _ := cl.send(cmdFlush, 0, 0, 0, nil)
	<-g.reached
	if _, err := cl.send(cmdDisc, 0, 0, 0, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cl.rdone:
		t.Fatal("server closed before its requests in flight finished")
	case err := <-done:
		t.Fatalf("ServeConn returned %v with requests in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(g.release)
	for _, c := range []*call{w, r, f} {
		if e, _ := c.wait(t); e != 0 {
			t.Fatalf("in-flight request: %s", errnoName(e))
		}
	}
	<-cl.rdone
	if err := waitErr(t, done); err != nil {
		t.Fatal(err)
	}
	if got := mem.snapshot(10, 5); string(got) != "after" {
		t.Fatalf("backend holds %q", got)
	}
}

func TestServeShutdown(t *testing.T) {
	mem := newMem(1 << 16)
	g := newHoldGate(1)
	mem.gate = g.gate
	srv := newTestServer(t, Export{Name: "d", Backend: mem})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l) }()

	c, err := net.DialTimeout("tcp", l.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	cl, err := newClient(t, c, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.go_("d"); err != nil {
		t.Fatal(err)
	}
	w, _ := cl.send(cmdWrite, 0, 0, 4, []byte("last"))
	<-g.reached
	cancel()
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v with a request in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	if c2, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
		// The listener is closed: the port may have been reused, but not
		// by this server, which must not greet.
		c2.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := c2.Read(make([]byte, 1)); err == nil {
			t.Fatal("server accepted a connection after shutdown")
		}
		c2.Close()
	}
	close(g.release)
	if e, _ := w.wait(t); e != 0 {
		t.Fatalf("in-flight WRITE at shutdown: %s", errnoName(e))
	}
	<-cl.rdone // the server closes the connection
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after shutdown")
	}
}

func TestServeListenerFails(t *testing.T) {
	srv := newTestServer(t, Export{Name: "d", Backend: newMem(512)})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(t.Context(), l) }()
	time.Sleep(50 * time.Millisecond)
	l.Close()
	select {
	case err := <-served:
		if err == nil {
			t.Fatal("Serve returned nil after its listener failed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
}
