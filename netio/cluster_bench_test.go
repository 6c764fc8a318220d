package netio

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/core/hist"
	"github.com/cairnstore/cairn/internal/testutil"
)

// BenchmarkClusterWrite: durable 4 KiB writes through the client library to an RF 2
// volume on three in-process nodes (TCP on loopback, journal and block files in a
// temporary directory), at QD 1 and 32. For profiles of the whole write path:
//
//	go test ./netio -run '^$' -bench ClusterWrite -cpuprofile cpu.out -trace trace.out
func BenchmarkClusterWrite(b *testing.B) {
	for _, qd := range []int{1, 32} {
		b.Run(fmt.Sprintf("qd%d", qd), func(b *testing.B) { benchCluster(b, qd, false) })
	}
}

// BenchmarkClusterRead: 4 KiB reads, as BenchmarkClusterWrite.
func BenchmarkClusterRead(b *testing.B) {
	for _, qd := range []int{1, 32} {
		b.Run(fmt.Sprintf("qd%d", qd), func(b *testing.B) { benchCluster(b, qd, true) })
	}
}

func benchCluster(b *testing.B, qd int, read bool) {
	tc := newBenchCluster(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cl, err := NewClient(ctx, ClientConfig{ID: 1900, Session: uint64(time.Now().UnixNano()), Authorities: tc.auth, Peers: tc.peers,
		OpTimeout: 30 * time.Second, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	const blocks = 16384
	createVolume(b, ctx, cl, core.AuthRequest{Vol: 9, Blocks: blocks, RF: 2})
	data := make([]byte, core.BlockSize)
	for i := range uint64(64) { // warm: the client knows the primary
		if err := cl.Write(ctx, 9, i, data); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	lat, _ := hist.New(hist.DefaultConfig())
	b.ResetTimer()
	start := time.Now()
	for w := range qd {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, core.BlockSize)
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				blk := uint64(i*7919+int64(w)) % blocks
				var err error
				t0 := time.Now()
				if read {
					_, err = cl.Read(ctx, 9, blk, 1)
				} else {
					err = cl.Write(ctx, 9, blk, buf)
				}
				d := time.Since(t0)
				mu.Lock()
				lat.Record(d.Nanoseconds())
				mu.Unlock()
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
	b.ReportMetric(float64(lat.Quantile(0.5))/1e3, "p50-µs")
	b.ReportMetric(float64(lat.Quantile(0.99))/1e3, "p99-µs")
	b.StopTimer()
	for _, r := range tc.runners {
		var st core.NodeStats
		_ = r.Do(ctx, func(n *core.Node) { st = n.Stats() })
		for _, v := range st.Volumes {
			if h := v.Latency[core.ClassWrite]; v.Primary && h != nil && h.Count() > 0 {
				b.ReportMetric(float64(h.Quantile(0.5))/1e3, "primary-write-p50-µs")
			}
			if h := v.Latency[core.ClassRead]; v.Primary && h != nil && h.Count() > 0 {
				b.ReportMetric(float64(h.Quantile(0.5))/1e3, "primary-read-p50-µs")
			}
		}
		if st.DiskLatency > 0 && os.Getenv("CAIRN_BENCH_VERBOSE") != "" {
			b.Logf("node %d: disk latency %d µs", st.Self, st.DiskLatency/1000)
		}
	}
}

// newBenchCluster starts three nodes for a benchmark (newTestCluster takes a *testing.T).
func newBenchCluster(b *testing.B) *testCluster {
	b.Helper()
	addrs := testutil.FreePorts(b, 3)
	tc := &testCluster{peers: map[core.Addr]string{}, cancel: make([]context.CancelFunc, 3), errs: make([]chan error, 3),
		runners: make([]*Runner, 3)}
	for i := range 3 {
		a := core.Addr(i + 1)
		tc.peers[a] = addrs[i]
		tc.infos = append(tc.infos, core.NodeInfo{Addr: a, Zone: uint32(i)})
		tc.dirs = append(tc.dirs, fmt.Sprintf("%s/n%d", b.TempDir(), i+1))
		tc.auth = append(tc.auth, a)
	}
	for i := range 3 {
		self := core.Addr(i + 1)
		p := core.DefaultParams(self, uint32(i), tc.auth, tc.infos)
		p.CheckpointEvery = 4096 // as `cairn node` runs
		peers := map[core.Addr]string{}
		for a, s := range tc.peers {
			if a != self {
				peers[a] = s
			}
		}
		r, err := NewRunner(RunnerConfig{Params: p, DataDir: tc.dirs[i], Log: slog.New(slog.DiscardHandler),
			Transport: TransportConfig{Listen: tc.peers[self], Peers: peers}})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		tc.cancel[i], tc.runners[i], tc.errs[i] = cancel, r, make(chan error, 1)
		go func() { tc.errs[i] <- r.Run(ctx) }()
	}
	b.Cleanup(func() {
		for i := range 3 {
			tc.cancel[i]()
			<-tc.errs[i]
		}
	})
	return tc
}
