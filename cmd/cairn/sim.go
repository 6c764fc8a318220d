package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/cairnstore/cairn/sim"
)

const simUsage = `Usage:
  cairn sim --seed N [--json] [--trace] [--duration D] [--scenario S] [--burst-scale K]
  cairn sim --seeds COUNT [--from FIRST] [--json] [--workers W]

Runs the deterministic simulator. One seed draws a whole cluster (nodes, zones,
volumes, clients, timeouts, fault rates), runs a safety phase with faults, then a
liveness phase with the cluster healed, and checks every history with Porcupine.
The same seed on the same commit replays bit-identically (same trace_hash).

Scenarios:
  mixed            the swarm: every seed its own cluster, workload, QoS and faults (default)
  fault-free       3 nodes, 1 volume, 4 clients, no faults: the speed baseline
  burst            one volume with the cloud-disk burst vectors of a 100 GiB volume
                   (300 IOPS baseline, 3,000 burst, 5.4 M credits), divided by
                   --burst-scale, saturated for 2,100 s; checks Q1 (admitted rate within
                   ±5% over every 10 s window) and that the burst lasts 2,000 s
  noisy-neighbour  a bursting volume beside a provisioned one on shared disks; checks
                   Q2 (the provisioned volume keeps its rate)
With --json each seed's object has a "volumes" array: provisioned_iops,
admitted_iops, throttled, busy, write_p50_us, write_p99_us, read_p99_us, ...

Exit status: 0 only if every seed is "ok"; 1 if any is "violation" or "stuck";
2 for bad usage.

Examples:
  cairn sim --seed 42                 one seed, human summary
  cairn sim --seed 42 --trace         print every event of the run
  cairn sim --seeds 1000 --json       a campaign; last line is a JSON summary
  cairn sim --seeds 200 --from 5000   seeds 5000..5199
  cairn sim --seed 1 --scenario burst --json
  cairn sim --seed 1 --scenario burst --burst-scale 1   the real vectors (minutes)

Flags:
`

type simFlags struct {
	seed     uint64
	seedSet  bool
	seeds    int
	from     uint64
	json     bool
	trace    bool
	duration time.Duration
	scenario string
	workers  int
	failures string
	nodes    int
	volumes  int
	clients  int
	failFast bool
	scale    int64
}

func simMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cairn sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f simFlags
	fs.Uint64Var(&f.seed, "seed", 0, "run this one seed")
	fs.IntVar(&f.seeds, "seeds", 0, "run a campaign of `COUNT` seeds")
	fs.Uint64Var(&f.from, "from", 1, "first seed of a campaign")
	fs.BoolVar(&f.json, "json", false, "end with one JSON object on the last line of standard output")
	fs.BoolVar(&f.trace, "trace", false, "print every event (one seed only)")
	fs.DurationVar(&f.duration, "duration", 0, "simulated length of the safety (fault) phase (0: the scenario's: 20s, burst 2100s, noisy-neighbour 60s)")
	fs.StringVar(&f.scenario, "scenario", string(sim.ScenarioMixed), "workload and faults: mixed, fault-free, burst or noisy-neighbour")
	fs.Int64Var(&f.scale, "burst-scale", sim.DefaultBurstScale, "burst scenario: divide the cloud-disk rates and credits by `K` (1: the real vectors)")
	fs.IntVar(&f.workers, "workers", runtime.NumCPU(), "seeds run in parallel in a campaign (each seed is still single-threaded)")
	fs.StringVar(&f.failures, "failures", "sim-failures", "`DIR` for Porcupine's HTML of failing histories (empty: none)")
	fs.IntVar(&f.nodes, "nodes", 0, "override the number of nodes (0: the seed decides)")
	fs.IntVar(&f.volumes, "volumes", 0, "override the number of volumes (0: the seed decides)")
	fs.IntVar(&f.clients, "clients", 0, "override the number of clients (0: the seed decides)")
	fs.BoolVar(&f.failFast, "fail-fast", false, "stop starting new seeds after the first failure (campaigns)")
	fs.Usage = func() { fmt.Fprint(stderr, simUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "seed" {
			f.seedSet = true
		}
	})
	if err := f.validate(fs.NArg()); err != nil {
		fmt.Fprintf(stderr, "cairn sim: %v\n(see 'cairn sim --help')\n", err)
		return 2
	}
	if f.seedSet {
		return runOne(&f, stdout, stderr)
	}
	return runCampaign(&f, stdout, stderr)
}

func (f *simFlags) validate(extra int) error {
	switch {
	case extra > 0:
		return fmt.Errorf("unexpected arguments")
	case f.seedSet == (f.seeds > 0):
		return fmt.Errorf("give exactly one of --seed N or --seeds COUNT")
	case f.seeds < 0:
		return fmt.Errorf("--seeds must be positive")
	case f.trace && !f.seedSet:
		return fmt.Errorf("--trace works with --seed only")
	case f.duration != 0 && (f.duration < time.Second || f.duration > time.Hour):
		return fmt.Errorf("--duration %v out of range [1s, 1h]", f.duration)
	case !slices.Contains(sim.Scenarios, sim.Scenario(f.scenario)):
		return fmt.Errorf("unknown --scenario %q (mixed, fault-free, burst, noisy-neighbour)", f.scenario)
	case f.scale < 1 || f.scale > 3000:
		return fmt.Errorf("--burst-scale %d out of range [1, 3000]", f.scale)
	case f.workers < 1:
		return fmt.Errorf("--workers must be at least 1")
	case f.nodes < 0 || f.nodes > 64 || f.volumes < 0 || f.volumes > 64 || f.clients < 0 || f.clients > 256:
		return fmt.Errorf("--nodes, --volumes, --clients out of range")
	}
	return nil
}

func (f *simFlags) options(seed uint64) sim.Options {
	return sim.Options{Seed: seed, Scenario: sim.Scenario(f.scenario), Duration: int64(f.duration),
		FailureDir: f.failures, Nodes: f.nodes, Volumes: f.volumes, Clients: f.clients, BurstScale: f.scale}
}

func runOne(f *simFlags, stdout, stderr io.Writer) int {
	o := f.options(f.seed)
	if f.trace {
		o.Trace = func(line string) { fmt.Fprintln(stdout, line) }
	}
	r := sim.Run(o)
	printResult(stdout, &r)
	if f.json {
		b, _ := json.Marshal(r)
		fmt.Fprintln(stdout, string(b))
	}
	if r.Result != "ok" {
		fmt.Fprintf(stderr, "seed %d: %s — reproduce with: %s\n", r.Seed, r.Result, r.Replay)
		return 1
	}
	return 0
}

func printResult(w io.Writer, r *sim.Result) {
	fmt.Fprintf(w, "seed %d: %s  trace=%s  sim=%.1fs wall=%.2fs (%.0fx)  events=%d ops=%d (unknown %d)  failovers=%d (unnecessary %d)  crashes=%d pauses=%d partitions=%d\n",
		r.Seed, r.Result, r.TraceHash, r.SimSeconds, r.WallSeconds, r.SimSeconds/max(r.WallSeconds, 1e-9), r.Events, r.Ops, r.OpsUnknown,
		r.Failovers, r.UnnecessaryFailovers, r.Crashes, r.Pauses, r.Partitions)
	fmt.Fprintf(w, "  shape: %s\n", r.Shape)
	for _, v := range r.Volumes {
		prov := "unthrottled"
		if v.ProvisionedIOPS > 0 {
			prov = fmt.Sprintf("%d IOPS (burst %d)", v.ProvisionedIOPS, v.BurstIOPS)
		}
		fmt.Fprintf(w, "  volume %d: %s  admitted %.1f/s  throttled %d busy %d lent %d  write p50 %.0fµs p99 %.0fµs  read p99 %.0fµs",
			v.ID, prov, v.AdmittedIOPS, v.Throttled, v.Busy, v.Lent, v.WriteP50us, v.WriteP99us, v.ReadP99us)
		if v.BurstSeconds != 0 {
			fmt.Fprintf(w, "  burst %.0fs", v.BurstSeconds)
		}
		fmt.Fprintln(w)
	}
	for _, v := range r.Violations {
		fmt.Fprintf(w, "  %s\n", v)
	}
	for _, h := range r.HTML {
		fmt.Fprintf(w, "  history visualisation: %s\n", h)
	}
	if r.Result != "ok" {
		fmt.Fprintf(w, "  reproduce with: %s\n", r.Replay)
	}
}

type campaignSummary struct {
	Seeds          int      `json:"seeds"`
	From           uint64   `json:"from"`
	Failed         []uint64 `json:"failed"`
	Violations     int      `json:"violations"`
	Stuck          int      `json:"stuck"`
	SeedsPerSecond float64  `json:"seeds_per_second"`
	SimSeconds     float64  `json:"sim_seconds"`
	WallSeconds    float64  `json:"wall_seconds"`
	Ops            int      `json:"ops"`
	Events         uint64   `json:"events"`
	Failovers      int      `json:"failovers"`
	Unnecessary    int      `json:"unnecessary_failovers"`
	SyncParts      int      `json:"sync_parts"`     // catch-up parts sent
	SyncMultipart  int      `json:"sync_multipart"` // catch-ups that went in parts, completed
	WipedReplicas  int      `json:"wiped_replicas"` // replica hosts whose disk was lost
	WipeSeeds      int      `json:"wipe_seeds"`     // seeds with at least one
	ReMirrors      int      `json:"re_mirrors"`     // replicas rebuilt under a new disk
	ReMirrorBytes  int64    `json:"re_mirror_bytes"`
	DegradedSecs   float64  `json:"degraded_seconds"`
	MaxReMirrors   int      `json:"max_concurrent_re_mirrors"`
	NodesLost      int      `json:"nodes_lost"` // gone for good or removed (sim/lost.go)
	NodesDrained   int      `json:"nodes_drained"`
	NodesJoined    int      `json:"nodes_joined"` // fresh nodes that joined a running cluster
	CopyThrottled  uint64   `json:"copy_throttled"`
	CheckSeconds   float64  `json:"check_seconds"`
	MaxCheck       float64  `json:"max_check_seconds"`
	MaxCheckSeed   uint64   `json:"max_check_seed"`
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func runCampaign(f *simFlags, stdout, stderr io.Writer) int {
	start := time.Now()
	results := make([]sim.Result, f.seeds)
	next := 0
	var mu sync.Mutex
	done, failed := 0, 0
	tty := isTerminal(stderr)
	var wg sync.WaitGroup
	for i := 0; i < min(f.workers, f.seeds); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				k := next
				next++
				stop := f.failFast && failed > 0
				mu.Unlock()
				if k >= f.seeds || stop {
					return
				}
				r := sim.Run(f.options(f.from + uint64(k)))
				mu.Lock()
				results[k] = r
				done++
				if r.Result != "ok" {
					failed++
					if tty {
						fmt.Fprint(stderr, "\r\033[K")
					}
					fmt.Fprintf(stderr, "seed %d: %s — reproduce with: %s\n", r.Seed, r.Result, r.Replay)
					for _, v := range r.Violations {
						fmt.Fprintf(stderr, "  %s\n", v)
					}
				}
				if tty {
					el := time.Since(start).Seconds()
					fmt.Fprintf(stderr, "\r\033[K%d/%d seeds  %.1f seeds/s  elapsed %.0fs  eta %.0fs", done, f.seeds, float64(done)/el, el,
						el/float64(done)*float64(f.seeds-done))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if tty {
		fmt.Fprint(stderr, "\r\033[K")
	}
	s := campaignSummary{Seeds: done, From: f.from, Failed: []uint64{}}
	for _, r := range results {
		if r.Events == 0 {
			continue // not run (fail-fast)
		}
		s.SimSeconds += r.SimSeconds
		s.Ops += r.Ops
		s.Events += r.Events
		s.Failovers += r.Failovers
		s.Unnecessary += r.UnnecessaryFailovers
		s.SyncParts += r.SyncParts
		s.SyncMultipart += r.SyncMultipart
		s.WipedReplicas += r.WipedReplicas
		if r.WipedReplicas > 0 {
			s.WipeSeeds++
		}
		s.ReMirrors += r.ReMirrors
		s.ReMirrorBytes += r.ReMirrorBytes
		s.DegradedSecs += r.DegradedSeconds
		s.MaxReMirrors = max(s.MaxReMirrors, r.MaxConcurrentReMirrors)
		s.CopyThrottled += r.CopyThrottled
		if r.NodeJoined {
			s.NodesJoined++
		}
		switch r.NodeLoss {
		case "gone", "removed":
			s.NodesLost++
		case "drained":
			s.NodesDrained++
		}
		s.CheckSeconds += r.CheckSeconds
		if r.CheckSeconds > s.MaxCheck {
			s.MaxCheck, s.MaxCheckSeed = r.CheckSeconds, r.Seed
		}
		switch r.Result {
		case "ok":
		case "stuck":
			s.Stuck++
			s.Failed = append(s.Failed, r.Seed)
		default:
			s.Violations++
			s.Failed = append(s.Failed, r.Seed)
		}
	}
	s.WallSeconds = time.Since(start).Seconds()
	s.SeedsPerSecond = float64(f.seeds) / s.WallSeconds
	fmt.Fprintf(stdout, "%d seeds from %d: %d failed (%d violation, %d stuck)  %.2f seeds/s  sim %.0fs in wall %.1fs  ops=%d failovers=%d (unnecessary %d)  wiped replicas=%d in %d seeds, re-mirrors=%d, nodes lost=%d drained=%d joined=%d\n",
		s.Seeds, s.From, len(s.Failed), s.Violations, s.Stuck, s.SeedsPerSecond, s.SimSeconds, s.WallSeconds, s.Ops, s.Failovers, s.Unnecessary,
		s.WipedReplicas, s.WipeSeeds, s.ReMirrors, s.NodesLost, s.NodesDrained, s.NodesJoined)
	if f.json {
		b, _ := json.Marshal(s)
		fmt.Fprintln(stdout, string(b))
	}
	if len(s.Failed) > 0 {
		return 1
	}
	return 0
}
