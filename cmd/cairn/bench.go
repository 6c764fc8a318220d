package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cairnstore/cairn/bench"
	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/netio"
)

const benchUsage = `Usage:
  cairn bench --volume V [--target PEERS] [--workload randwrite|randread|mixed] [--bs 4096] [--qd N] [--duration D] [--json]
  cairn bench --target etcd://HOST:PORT[,HOST:PORT...] [same flags]

Drives a closed loop of --qd operations in flight, each a random --bs-byte read or write,
for --duration, and prints throughput and latency quantiles (a line of progress on
stderr every second). Every Cairn write is acknowledged only once it is durable on every
in-sync replica, so write figures are durable-write figures.

--target is the cluster's node list (ID=ZONE@HOST:PORT,..., as for 'cairn node
--peers'; default $CAIRN_PEERS, else the 'make run' cluster). The benchmark uses the
client library directly, as an application embedding it would; to benchmark through
NBD, run 'cairn attach' and point fio's nbd engine at it (BENCHMARKS.md has the job).
With etcd://, it puts and gets 4 KiB values through an etcd cluster's JSON gateway
instead, for comparison with a replicated, fsyncing peer.

With --json the last line of output is one JSON object: ops_per_second, mib_per_second,
p50_us, p90_us, p99_us, p999_us, max_us, ops, errors, ...

Examples:
  make run     # in another terminal
  cairn bench --volume demo --workload randwrite --qd 32 --duration 20s
  cairn bench --volume demo --workload randread --qd 1 --prefill --json

Flags:
`

const makeRunPeers = "1=0@127.0.0.1:7001,2=1@127.0.0.1:7002,3=2@127.0.0.1:7003"

func benchMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cairn bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, benchUsage); fs.PrintDefaults() }
	target := fs.String("target", envDefault("CAIRN_PEERS", makeRunPeers), "`PEERS` of a Cairn cluster, or etcd://HOST:PORT,...")
	auth := fs.String("authorities", envDefault("CAIRN_AUTHORITIES", ""), "authority cell members `IDS` (default: the lowest id of each of the first three zones)")
	vol := fs.String("volume", "", "the Cairn `VOLUME` to use (number or name); it must exist")
	c := bench.Config{}
	fs.StringVar(&c.Workload, "workload", bench.RandWrite, "randwrite, randread or mixed")
	fs.IntVar(&c.BS, "bs", 4096, "bytes per operation (a multiple of 4096, at most 1 MiB)")
	fs.IntVar(&c.QD, "qd", 1, "operations in flight (1-1024)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long to measure")
	fs.IntVar(&c.ReadPct, "read-pct", 70, "mixed: percentage of reads")
	span := fs.String("span", "", "bytes of the volume to use from offset 0, like 256M (default: the whole volume, at most 1 GiB)")
	prefill := fs.Bool("prefill", false, "write every --bs slot of the span once before measuring (so reads read data)")
	fs.DurationVar(&c.OpTimeout, "op-timeout", 30*time.Second, "count an operation as an error after this long")
	seed := fs.Uint64("seed", 0, "offsets and payloads (0: random)")
	asJSON := fs.Bool("json", false, "print the result as one JSON object on the last line")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	bad := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "cairn bench: %s\n(see 'cairn bench --help')\n", fmt.Sprintf(format, a...))
		return 2
	}
	if fs.NArg() > 0 {
		return bad("unexpected arguments %q", fs.Args())
	}
	if c.Seed = *seed; c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	var spanBytes uint64
	if *span != "" {
		var err error
		if spanBytes, err = netio.ParseSize(*span); err != nil {
			return bad("--span: %v", err)
		}
	}
	// Validate what does not depend on the target before connecting.
	probe := c
	probe.Span = uint64(max(c.BS, 1))
	if err := probe.Validate(); err != nil {
		return bad("%v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	var t bench.Target
	var size uint64
	var what string
	if rest, ok := strings.CutPrefix(*target, "etcd://"); ok {
		e, err := bench.NewEtcd(strings.Split(rest, ","), c.QD)
		if err != nil {
			return bad("%v", err)
		}
		t, size, what = e, 1<<30, "etcd at "+rest
	} else {
		if *vol == "" {
			return bad("--volume is required for a Cairn target")
		}
		id, err := volumeID(*vol)
		if err != nil {
			return bad("%v", err)
		}
		cf := clusterFlags{peers: *target, auth: *auth, timeout: c.OpTimeout}
		cl, err := cf.connect(ctx)
		if err != nil {
			return bad("%v", err)
		}
		defer cl.Close()
		rep, err := admin(ctx, cl, core.AuthRequest{Op: core.OpGetConfig, Vol: id}, 30*time.Second)
		if err != nil {
			fmt.Fprintf(stderr, "cairn bench: %v\n", err)
			return 1
		}
		if rep.Status != core.StatusOK {
			fmt.Fprintf(stderr, "cairn bench: volume %s: %v\n", *vol, rep.Status)
			return 1
		}
		t, size = volumeTarget{netio.NewVolume(cl, id, rep.Config.Blocks)}, rep.Config.Blocks*core.BlockSize
		what = fmt.Sprintf("volume %s (RF %d, primary node %d)", *vol, rep.Config.RF, rep.Config.Primary)
	}
	if spanBytes == 0 {
		spanBytes = min(size, 1<<30)
	}
	if spanBytes > size {
		return bad("--span %d is larger than the target's %d bytes", spanBytes, size)
	}
	c.Span = spanBytes - spanBytes%uint64(c.BS)
	if err := c.Validate(); err != nil {
		return bad("%v", err)
	}
	if *prefill {
		fmt.Fprintf(stderr, "prefilling %d MiB of %s\n", c.Span>>20, what)
		if err := bench.Prefill(ctx, t, c, func(done, total uint64) {
			fmt.Fprintf(stderr, "  prefill %d/%d MiB\n", done>>20, total>>20)
		}); err != nil {
			fmt.Fprintf(stderr, "cairn bench: prefill: %v\n", err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "%s %d B at QD %d for %v on %s (span %d MiB, seed %d)\n", c.Workload, c.BS, c.QD, c.Duration, what, c.Span>>20, c.Seed)
	r, err := bench.Run(ctx, c, t, func(p bench.Progress) {
		fmt.Fprintf(stderr, "  %4.0fs  %9d ops  %6d errors\n", p.Elapsed.Seconds(), p.Ops, p.Errors)
	})
	if err != nil {
		fmt.Fprintf(stderr, "cairn bench: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s bs=%d qd=%d: %.0f ops/s, %.1f MiB/s, latency p50 %.0f µs, p90 %.0f µs, p99 %.0f µs, p99.9 %.0f µs, max %.0f µs; %d ops, %d errors\n",
		r.Workload, r.BS, r.QD, r.OpsPerSecond, r.MiBPerSecond, r.P50, r.P90, r.P99, r.P999, r.Max, r.Ops, r.Errors)
	if r.FirstError != "" {
		fmt.Fprintf(stdout, "first error: %s\n", r.FirstError)
	}
	if *asJSON {
		b, _ := json.Marshal(r)
		fmt.Fprintf(stdout, "%s\n", b)
	}
	if r.Errors > 0 {
		return 1
	}
	return 0
}

// volumeTarget adapts a netio.Volume to bench.Target (writes are durable when acknowledged).
type volumeTarget struct{ v *netio.Volume }

func (t volumeTarget) ReadAt(ctx context.Context, p []byte, off uint64) error {
	return t.v.ReadAt(ctx, p, off)
}

func (t volumeTarget) WriteAt(ctx context.Context, p []byte, off uint64) error {
	return t.v.WriteAt(ctx, p, off, false)
}
