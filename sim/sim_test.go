package sim

import (
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
)

// campaignSeeds is how many seeds `make test` runs (CAIRN_SIM_SEEDS overrides).
func campaignSeeds(t *testing.T) int {
	if s := os.Getenv("CAIRN_SIM_SEEDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("CAIRN_SIM_SEEDS=%q: want a positive number", s)
		}
		return n
	}
	if testing.Short() {
		return 20
	}
	return 100
}

// TestCampaign runs the full fault model over many seeds; every one must pass.
func TestCampaign(t *testing.T) {
	n := campaignSeeds(t)
	results := make([]Result, n)
	var wg sync.WaitGroup
	next := make(chan int, n)
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = Run(Options{Seed: uint64(1000 + i)})
			}
		}()
	}
	wg.Wait()
	failovers, ops := 0, 0
	for _, r := range results {
		failovers += r.Failovers
		ops += r.Ops
		if r.Result != "ok" {
			t.Errorf("seed %d: %s: %v\nreproduce with: %s", r.Seed, r.Result, r.Violations, r.Replay)
		}
	}
	t.Logf("%d seeds, %d ops, %d failovers", n, ops, failovers)
	if failovers == 0 {
		t.Errorf("no failover in %d seeds: the fault model is not reaching the failover path", n)
	}
}

// TestDeterminism: the same seed gives the same trace hash, event count and history.
func TestDeterminism(t *testing.T) {
	for _, seed := range []uint64{1, 7, 42, 1234} {
		a, b := Run(Options{Seed: seed}), Run(Options{Seed: seed})
		if a.TraceHash != b.TraceHash || a.Events != b.Events || a.Ops != b.Ops || a.Result != b.Result {
			t.Errorf("seed %d not deterministic: %s/%d/%d/%s vs %s/%d/%d/%s", seed,
				a.TraceHash, a.Events, a.Ops, a.Result, b.TraceHash, b.Events, b.Ops, b.Result)
		}
		if a.Events == 0 || a.Ops == 0 {
			t.Errorf("seed %d did nothing: %+v", seed, a)
		}
	}
	if Run(Options{Seed: 1}).TraceHash == Run(Options{Seed: 2}).TraceHash {
		t.Errorf("different seeds gave the same trace hash")
	}
}

// TestFaultFree: without faults nothing fails over, times out or is lost.
func TestFaultFree(t *testing.T) {
	r := Run(Options{Seed: 5, Scenario: ScenarioFaultFree})
	if r.Result != "ok" || r.Failovers != 0 || r.OpsUnknown != 0 || r.Crashes+r.Pauses+r.Partitions != 0 {
		t.Fatalf("fault-free run: %+v", r)
	}
	if r.Ops < 10_000 {
		t.Errorf("fault-free run completed only %d ops", r.Ops)
	}
}

func TestPatternRoundTrip(t *testing.T) {
	b := make([]byte, 4096)
	for _, v := range []uint64{1, 0xdeadbeef, 1<<48 | 77<<8 | 2} {
		pattern(b, v)
		if got := decodeBlock(b); got != v {
			t.Fatalf("pattern %x decoded as %x", v, got)
		}
		b[100] ^= 1
		if got := decodeBlock(b); got != ^uint64(0) {
			t.Fatalf("flipped bit decoded as %x, want corrupt", got)
		}
	}
	clear(b)
	if decodeBlock(b) != 0 {
		t.Fatal("zero block not 0")
	}
}

// BenchmarkFaultFree measures simulator speed on the baseline shape: 3 nodes, 1 volume,
// 4 clients, no faults. Reported: simulated seconds per wall second and events per second.
func BenchmarkFaultFree(b *testing.B) {
	var simS, events float64
	for i := 0; i < b.N; i++ {
		r := Run(Options{Seed: uint64(i + 1), Scenario: ScenarioFaultFree})
		simS += r.SimSeconds
		events += float64(r.Events)
	}
	wall := b.Elapsed().Seconds()
	b.ReportMetric(simS/wall, "sim-s/wall-s")
	b.ReportMetric(events/wall, "events/s")
}

// TestRegressionSeeds replays seeds that once found bugs (see DESIGN.md): 1040 (a retried
// write applied twice after the dedup window evicted it), 231 (a member promised to the old
// primary while its own promotion request was in flight), 723 (a recovered authority revealed
// a configuration it had never issued), 269 (a primary alone in its in-sync set served
// under a lease while its own Grow request was in flight; the grown member was then promoted),
// 880038 (a primary restarted after a disk error in the same epoch and reused an LSN it had
// already sent before the crash: a member's stale ack for the lost entry counted for the new
// one; now a restarted primary renews its epoch first, DESIGN 2.4), 7001450 (a member that
// asked for a catch-up then took the next entry; the catch-up's late answer rolled its log
// back below an entry the primary counted as its, and the member was promoted without that
// acknowledged write; now such an answer is ignored, DESIGN 2.5), 9200120 (a primary answered
// a member's catch-up request with a Sync to its applied point, below entries the member had
// acknowledged and the primary committed on; the Sync dropped them and the member was promoted
// later; now a Sync never goes below what the primary counts as the member's), 7000059 (a
// false alarm of the configuration check: a QoS change that changed nothing was taken for
// another request's epoch; now every issued configuration names its request). Replacement
// (DESIGN 2.13): 9500392 (the only other in-sync copy, down, was dropped while the primary was
// lost for good), 9700330 (a joined node that lost its disk could not rejoin), 9900994 (a
// dropped member missed its drop, then the volume's deletion), 9900781 (a Grow for a member
// that left the volume was retransmitted forever), 10000004 (a stale primary of a deleted
// volume was never told), 10000418 (the cell's durable log kept entries past a snapshot),
// 10201202 (an in-sync replica cut off from the leader alone was dropped, then the primary was
// lost for good).
func TestRegressionSeeds(t *testing.T) {
	for _, seed := range []uint64{1040, 231, 214, 574, 723, 269, 880038, 7001450, 9200120, 7000059,
		9500392, 9700330, 9900994, 9900781, 10000004, 10000418, 10201202} {
		if r := Run(Options{Seed: seed}); r.Result != "ok" {
			t.Errorf("seed %d: %s: %v\nreproduce with: %s", seed, r.Result, r.Violations, r.Replay)
		}
	}
}
