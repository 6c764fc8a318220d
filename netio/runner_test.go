package netio

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/internal/testutil"
)

// client starts a client library with endpoint id on tc (opTimeout 0: the default),
// closed at the end of the test.
func (tc *testCluster) client(tb testing.TB, ctx context.Context, id core.Addr, opTimeout time.Duration) *Client {
	tb.Helper()
	cl, err := NewClient(ctx, ClientConfig{ID: id, Session: uint64(time.Now().UnixNano()), Authorities: tc.auth, Peers: tc.peers,
		OpTimeout: opTimeout})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cl.Close() })
	return cl
}

type testCluster struct {
	peers   map[core.Addr]string
	infos   []core.NodeInfo
	auth    []core.Addr
	dirs    []string
	cancel  []context.CancelFunc
	errs    []chan error
	runners []*Runner
}

func (tc *testCluster) start(t *testing.T, i int) {
	t.Helper()
	self := core.Addr(i + 1)
	p := core.DefaultParams(self, uint32(i), tc.auth, tc.infos)
	peers := map[core.Addr]string{}
	for a, s := range tc.peers {
		if a != self {
			peers[a] = s
		}
	}
	r, err := NewRunner(RunnerConfig{Params: p, DataDir: tc.dirs[i], Transport: TransportConfig{Listen: tc.peers[self], Peers: peers}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tc.cancel[i] = cancel
	tc.runners[i] = r
	tc.errs[i] = make(chan error, 1)
	go func() { tc.errs[i] <- r.Run(ctx) }()
}

func (tc *testCluster) stop(t *testing.T, i int) {
	t.Helper()
	tc.cancel[i]()
	select {
	case err := <-tc.errs[i]:
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("node %d did not stop within 10 s", i+1)
	}
}

func newTestCluster(t *testing.T, n int) *testCluster {
	addrs := testutil.FreePorts(t, n)
	tc := &testCluster{peers: map[core.Addr]string{}, cancel: make([]context.CancelFunc, n), errs: make([]chan error, n),
		runners: make([]*Runner, n)}
	for i := range n {
		a := core.Addr(i + 1)
		tc.peers[a] = addrs[i]
		tc.infos = append(tc.infos, core.NodeInfo{Addr: a, Zone: uint32(i)})
		tc.dirs = append(tc.dirs, filepath.Join(t.TempDir(), fmt.Sprint("n", i+1)))
		if i < 3 {
			tc.auth = append(tc.auth, a)
		}
	}
	for i := range n {
		tc.start(t, i)
	}
	t.Cleanup(func() {
		for i := range n {
			tc.cancel[i]()
		}
	})
	return tc
}

// Three real nodes on loopback (TCP, files, the real clock): create a volume through the
// authority cell, write and read it back, flush; then stop a node gracefully and restart
// it from its directory; data and configuration survive.
func TestRunnerEndToEnd(t *testing.T) {
	tc := newTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := tc.client(t, ctx, 1000, 10*time.Second)
	if rep := createVolume(t, ctx, cl, core.AuthRequest{Vol: 1, Blocks: 256, RF: 2}); rep.Status != core.StatusOK && rep.Status != core.StatusConflict {
		t.Fatalf("create volume: %+v", rep)
	}
	data := bytes.Repeat([]byte("cairn!"), 4*core.BlockSize/6+1)[:4*core.BlockSize]
	if err := cl.Write(ctx, 1, 10, data); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := cl.Flush(ctx, 1); err != nil {
		t.Fatalf("flush: %v", err)
	}
	got, err := cl.Read(ctx, 1, 10, 4)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %v (equal %v)", err, bytes.Equal(got, data))
	}
	// A graceful stop and a restart of every node, one at a time.
	for i := range 3 {
		tc.stop(t, i)
		tc.start(t, i)
	}
	got, err = cl.Read(ctx, 1, 10, 4)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read after restarts: %v", err)
	}
}

// A data directory belongs to one node: another node refuses it with a clear message. Its
// disk identity is made once and kept; a wiped directory gets a new one.
func TestRunnerRefusesForeignDataDir(t *testing.T) {
	dir := t.TempDir()
	d1, err := claimDataDir(dir, 1, 0)
	if err != nil || d1 == 0 {
		t.Fatal(d1, err)
	}
	if d, err := claimDataDir(dir, 1, 0); err != nil || d != d1 {
		t.Fatalf("the owner was refused or got another disk: %x %v (first %x)", d, err, d1)
	}
	if _, err := claimDataDir(dir, 2, 1); err == nil || !strings.Contains(err.Error(), "belongs to node 1") {
		t.Fatalf("another node's directory: %v", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if d, err := claimDataDir(dir, 1, 0); err != nil || d == 0 || d == d1 {
		t.Fatalf("a wiped directory: disk %x %v, want a new one (old %x)", d, err, d1)
	}
	if err := os.WriteFile(filepath.Join(dir, identityFile), []byte(`{"node":1,"zone":0,"disk":"zz"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := claimDataDir(dir, 1, 0); err == nil || !strings.Contains(err.Error(), "bad disk identity") {
		t.Fatalf("a damaged identity: %v", err)
	}
}

// The NBD backend over a real cluster: unaligned, multi-block and multi-chunk requests,
// zeroing, and reads across chunk boundaries, checked against a model byte slice.
func TestVolumeBackend(t *testing.T) {
	tc := newTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := tc.client(t, ctx, 1001, 10*time.Second)
	const blocks = 600 // more than two chunks
	createVolume(t, ctx, cl, core.AuthRequest{Vol: 2, Blocks: blocks, RF: 3})
	v := NewVolume(cl, 2, blocks)
	model := make([]byte, v.Size())
	write := func(off uint64, n int, b byte) {
		p := bytes.Repeat([]byte{b}, n)
		for i := range p {
			p[i] ^= byte(i)
		}
		if err := v.WriteAt(ctx, p, off, false); err != nil {
			t.Fatalf("write %d+%d: %v", off, n, err)
		}
		copy(model[off:], p)
	}
	write(0, 4096, 1)
	write(4095, 3, 2)                                                // straddles a block edge
	write(10_000, 9_000, 3)                                          // unaligned, multi-block
	write(100*4096+17, 300*4096, 4)                                  // crosses a chunk boundary, unaligned
	write(v.Size()-5, 5, 5)                                          // the last bytes
	if err := v.WriteZeroes(ctx, 12_000, 5_000, false); err != nil { // inside the earlier write
		t.Fatal(err)
	}
	clear(model[12_000:17_000])
	if err := v.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, v.Size())
	if err := v.ReadAt(ctx, got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, model) {
		for i := range got {
			if got[i] != model[i] {
				t.Fatalf("byte %d: %d, want %d", i, got[i], model[i])
			}
		}
	}
	if err := v.ReadAt(ctx, make([]byte, 10), v.Size()-5); err == nil {
		t.Fatal("a read past the end succeeded")
	}
}

// The attach path follows a failover: the primary's process stops, a secondary takes
// over after the health check, and reads and writes through the same client go on.
func TestVolumeFollowsFailover(t *testing.T) {
	tc := newTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl := tc.client(t, ctx, 1004, 30*time.Second)
	rep := createVolume(t, ctx, cl, core.AuthRequest{Vol: 4, Blocks: 64, RF: 3})
	if rep.Status != core.StatusOK {
		t.Fatalf("create: %+v", rep)
	}
	v := NewVolume(cl, 4, 64)
	before := bytes.Repeat([]byte{0x42}, 8*core.BlockSize)
	if err := v.WriteAt(ctx, before, 0, true); err != nil {
		t.Fatal(err)
	}
	old := rep.Config.Primary
	tc.stop(t, int(old)-1) // the primary goes away
	after := bytes.Repeat([]byte{0x43}, 8*core.BlockSize)
	start := time.Now()
	if err := v.WriteAt(ctx, after, 8*core.BlockSize, true); err != nil {
		t.Fatalf("write after the primary stopped: %v", err)
	}
	t.Logf("first write after the primary stopped completed in %v", time.Since(start))
	got := make([]byte, 16*core.BlockSize)
	if err := v.ReadAt(ctx, got, 0); err != nil || !bytes.Equal(got, append(before, after...)) {
		t.Fatalf("read after failover: %v", err)
	}
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	now, err := cl.Admin(actx, core.AuthRequest{Op: core.OpGetConfig, Vol: 4})
	if err != nil || now.Config.Primary == old {
		t.Fatalf("no failover: %v %+v", err, now)
	}
}

// createVolume sends a create to the cell until it gets a definite answer (the cell may
// still be electing its first leader) and returns it; callers check the status.
func createVolume(tb testing.TB, ctx context.Context, cl *Client, req core.AuthRequest) *core.AuthReply {
	tb.Helper()
	req.Op = core.OpCreateVolume
	var err error
	for range 100 {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		var rep *core.AuthReply
		rep, err = cl.Admin(actx, req)
		acancel()
		if err == nil && rep.Status != core.StatusUnavailable && rep.Status != core.StatusNotLeader {
			return rep
		}
	}
	tb.Fatalf("create volume %d: no definite answer: %v", req.Vol, err)
	return nil
}
