package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/netio"
)

// clusterClient is an in-process client library instance on the cluster (through the
// same address book the nodes use).
func (c *cluster) client(t *testing.T, id core.Addr, opTimeout time.Duration) *netio.Client {
	t.Helper()
	book := map[core.Addr]string{}
	for i, addr := range c.peerAddrs() {
		book[core.Addr(i+1)] = addr
	}
	var auth []core.Addr
	for i := range min(3, len(c.nodes)) {
		auth = append(auth, core.Addr(i+1))
	}
	// The context is the client's lifetime (its transport stops with it), not a deadline.
	cl, err := netio.NewClient(context.Background(), netio.ClientConfig{ID: id, Session: uint64(time.Now().UnixNano()), Authorities: auth,
		Peers: book, OpTimeout: opTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// Failover time as a user sees it: a client writes 4 KiB blocks one at a time; the
// primary's process is SIGKILLed; the time until the first write completes afterwards
// (necessarily on the new primary) is the failover time. E2E_FAILOVER_RUNS (default 1)
// repeats it on fresh volumes, restarting the killed node in between, and logs p50 and
// max. The test asserts the failover happened and the data written before it is
// intact, not how long it took (BENCHMARKS.md records the figures).
func TestFailoverTime(t *testing.T) {
	runs := 1
	if s := os.Getenv("E2E_FAILOVER_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			t.Fatalf("E2E_FAILOVER_RUNS=%q: want 1 to 100", s)
		}
		runs = n
	}
	c := newCluster(t, 3)
	cl := c.client(t, 1100, 20*time.Second)
	var times []time.Duration
	for run := range runs {
		name := fmt.Sprintf("fo%d", run)
		v := c.createVolume(name, "64M", 2)
		id := core.VolumeID(v.ID)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		block := func(i uint64) []byte {
			b := make([]byte, core.BlockSize)
			copy(b, fmt.Sprintf("run %d block %d", run, i))
			return b
		}
		// Warm up: the client knows the primary and writes go through.
		for i := range uint64(20) {
			if err := cl.Write(ctx, id, i, block(i)); err != nil {
				t.Fatalf("run %d: write before the kill: %v", run, err)
			}
		}
		// Measure from a healthy volume: every replica in sync (a fresh volume's secondary
		// may still be joining, and a primary alone in its set cannot fail over).
		deadline := time.Now().Add(20 * time.Second)
		for v = c.volume(name); len(v.InSync) < int(v.RF); v = c.volume(name) {
			if time.Now().After(deadline) {
				t.Fatalf("run %d: volume %s not fully in sync within 20 s: %+v", run, name, v)
			}
			time.Sleep(50 * time.Millisecond)
		}
		host := int(v.Primary) - 1
		killed := time.Now()
		c.nodes[host].signal(t, syscall.SIGKILL)
		if err := cl.Write(ctx, id, 20, block(20)); err != nil {
			_, st := c.api("GET", "/v1/volumes/"+name, nil)
			_, status := c.api("GET", "/v1/status", nil)
			t.Fatalf("run %d: first write after SIGKILL of primary node %d: %v\nvolume now: %s\nstatus: %s", run, v.Primary, err, st, status)
		}
		took := time.Since(killed)
		times = append(times, took)
		for i := range uint64(21) {
			got, err := cl.Read(ctx, id, i, 1)
			if err != nil || string(got) != string(block(i)) {
				t.Fatalf("run %d: block %d after failover: %v", run, i, err)
			}
		}
		cancel()
		now := c.volume(name)
		if now.Primary == v.Primary || now.Epoch <= v.Epoch {
			t.Fatalf("run %d: no failover: before %+v, after %+v", run, v, now)
		}
		t.Logf("run %d: SIGKILL of primary node %d -> first write done on node %d after %v", run, v.Primary, now.Primary, took.Round(time.Millisecond))
		c.start(host)
		c.waitHealthy(host)
	}
	slices.Sort(times)
	t.Logf("failover over %d runs: p50 %v, max %v", runs, times[len(times)/2].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond))
}

// peerAddrs is the address book's HOST:PORT of node 1, 2, ... (from --peers).
func (c *cluster) peerAddrs() []string {
	var out []string
	for _, item := range strings.Split(c.peers, ",") {
		_, addr, _ := strings.Cut(item, "@")
		out = append(out, addr)
	}
	return out
}
