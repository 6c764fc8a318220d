package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/histories"
	"github.com/cairnstore/cairn/netio"
)

// TestFaultsRealProcesses is the real-process counterpart of the simulator: a cluster of
// `cairn node` processes on 127.0.0.1, each behind a fault-injecting proxy (proxy_test.go),
// several in-process clients per volume recording their operations into one history
// (workload_test.go), and a seeded schedule of faults meanwhile: SIGKILL and restart of
// nodes (primaries among them), SIGSTOP of a primary for longer than its lease, links cut
// one way or both, a primary cut from its secondaries, an authority member or a primary
// isolated (from the other nodes only, or with its clients too). Then everything heals, the load goes on for a few seconds, every block is read
// once more, and the history is checked with the simulator's Porcupine checker.
//
// It asserts: every volume linearizable; at least one failover; a minimum of OK reads and
// writes per volume, and OK writes after healing; every volume back to its full in-sync
// set; every node process alive and healthy.
//
// Environment: E2E_DURATION (default 70s) is how long faults are injected; E2E_SEED
// replays a schedule (the faults, holds and targets it draws; real timing is not
// replayable, so an interleaving may not recur); E2E_NODES forces 3 or 5 nodes;
// E2E_FAULTS=kind,kind,... draws only those faults (see faultKinds), for a focused run;
// E2E_TRACE=FILE writes every message on every client connection into FILE (decoded);
// E2E_ARTIFACTS is where a failure leaves its evidence (default: a new directory under
// the system's temporary directory; with -artifacts, the test's artifact directory); when it
// is set, the evidence is kept after a pass too.
var readOnlyPct = 100

// stallNote: a client without an OK answer for longer than this is flagged in the summary.
const stallNote = 10 * time.Second

func TestFaultsRealProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real cluster under faults for minutes")
	}
	wallStart := time.Now()
	seed := envUint(t, "E2E_SEED", rand.Uint64())
	dur := envDuration(t, "E2E_DURATION", 70*time.Second)
	if dl, ok := t.Deadline(); ok {
		if left := time.Until(dl) - 4*time.Minute; dur > left {
			t.Logf("E2E_DURATION %v does not fit the test timeout; faults for %v", dur, left.Round(time.Second))
			dur = max(left, 10*time.Second)
		}
	}
	t.Logf("seed %d, faults for %v (reproduce the schedule with E2E_SEED=%d E2E_DURATION=%v)", seed, dur, seed, dur)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("FAILED: reproduce with E2E_SEED=%d E2E_DURATION=%v go test ./e2e -run TestFaultsRealProcesses -count=1 -v "+
				"(the schedule replays; real timing does not, so the failure may need several runs to recur)", seed, dur)
		}
	})
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	nodes := []int{3, 5}[rng.IntN(2)]
	if s := os.Getenv("E2E_NODES"); s != "" {
		if nodes, _ = strconv.Atoi(s); nodes != 3 && nodes != 5 {
			t.Fatalf("E2E_NODES=%q: want 3 or 5", s)
		}
	}
	fn := newFaultNet(256)
	if path := os.Getenv("E2E_TRACE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		w := bufio.NewWriter(f)
		fn.trace = func(line string) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(w, "t=%.6f %s\n", time.Since(wallStart).Seconds(), line)
		}
		t.Cleanup(func() { mu.Lock(); defer mu.Unlock(); w.Flush(); f.Close() }) // runs after fn.Close
		t.Logf("tracing every client message into %s", path)
	}
	t.Cleanup(fn.Close)
	c := newClusterWith(t, clusterOptions{nodes: nodes, front: func(id int, private string) string {
		addr, err := fn.add(core.Addr(id), private)
		if err != nil {
			t.Fatal(err)
		}
		return addr
	}})
	ids := make([]core.Addr, nodes)
	direct := map[core.Addr]string{} // the nodes' private addresses: the test's own view, never cut
	public := map[core.Addr]string{}
	for i := range nodes {
		ids[i] = core.Addr(i + 1)
		direct[ids[i]] = c.bind[i]
		public[ids[i]] = c.listen[i]
	}
	auth := []core.Addr{1, 2, 3} // the lowest id of each of the three zones (cmd/cairn/nodeflags.go)
	quiet := slog.New(slog.DiscardHandler)
	obs, err := netio.NewClient(t.Context(), netio.ClientConfig{ID: 1999, Session: rng.Uint64(), Authorities: auth,
		Peers: direct, OpTimeout: 5 * time.Second, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { obs.Close() })

	// Volumes: RF 2, RF 3, and a third of either; a few dozen blocks each, so operations
	// collide and a replica's catch-up stays far below the transport's frame limit.
	rfs := []int{2, 3, 2 + rng.IntN(2)}
	type volume struct {
		name  string
		id    core.VolumeID
		rf    int
		hot   uint64
		first volumeJSON
	}
	var vols []*volume
	for i, rf := range rfs {
		v := c.createVolume(fmt.Sprintf("faults%d", i+1), "16M", rf)
		vols = append(vols, &volume{name: v.Name, id: core.VolumeID(v.ID), rf: rf, hot: uint64(32 + rng.IntN(33)), first: v})
		t.Logf("volume %s (id %d): RF %d, replicas %v, primary %d, epoch %d", v.Name, v.ID, rf, v.Replicas, v.Primary, v.Epoch)
	}
	mon := &monitor{obs: obs, rec: nil, last: map[core.VolumeID]core.Config{}, primaryChanges: map[core.VolumeID]int{},
		epochChanges: map[core.VolumeID]int{}}
	for _, v := range vols {
		mon.vols = append(mon.vols, v.id)
	}
	if testing.Verbose() {
		mon.logf = t.Logf
	}

	// Clients: three per volume, each with two workers (so each client has operations in
	// flight at once, as the simulator's do), distinct ids from 1000 and random sessions.
	rec := newRecorder(wallStart)
	mon.rec = rec
	var clients []*wclient
	readPct := 40 + rng.IntN(21)
	for _, v := range vols {
		for j := range 3 {
			k := len(clients)
			// Op timeouts as the simulator draws them: short ones (a third of the clients)
			// leave writes of unknown outcome in the history whenever a fault outlasts them.
			timeout := time.Duration(2000+rng.IntN(4001)) * time.Millisecond
			if rng.IntN(3) == 0 {
				timeout = time.Duration(500+rng.IntN(1001)) * time.Millisecond
			}
			wc := &wclient{idx: k + 1, id: core.Addr(1000 + k), session: rng.Uint64(), vol: v.id, hot: v.hot,
				readPct: readPct, opTimeout: timeout}
			if j == 2 {
				wc.readPct = readOnlyPct // a reader
			}
			wc.cl, err = netio.NewClient(t.Context(), netio.ClientConfig{ID: wc.id, Session: wc.session, Authorities: auth,
				Peers: public, OpTimeout: wc.opTimeout, Log: quiet})
			if err != nil {
				t.Fatal(err)
			}
			clients = append(clients, wc)
		}
	}
	var stop atomic.Bool
	var workers sync.WaitGroup
	stopWorkers := func() error {
		stop.Store(true)
		done := make(chan struct{})
		go func() { workers.Wait(); close(done) }()
		select {
		case <-done:
			return nil
		case <-time.After(20 * time.Second):
			return fmt.Errorf("workers did not stop within 20 s of the stop")
		}
	}
	t.Cleanup(func() {
		_ = stopWorkers()
		for _, wc := range clients {
			wc.cl.Close()
		}
	})
	for _, wc := range clients {
		for range 2 {
			wrng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
			workers.Add(1)
			go func() {
				defer workers.Done()
				wc.work(rec, wrng, &stop, 4, 20*time.Millisecond)
			}()
		}
	}
	var timeouts []string
	for _, wc := range clients {
		timeouts = append(timeouts, wc.opTimeout.String())
	}
	t.Logf("%d nodes, %d clients (2 workers each, %d%% reads, 1-4 blocks, op timeouts %s), authority %v",
		nodes, len(clients), readPct, strings.Join(timeouts, " "), auth)

	monCtx, monStop := context.WithCancel(context.Background())
	var monDone sync.WaitGroup
	monDone.Add(1)
	go func() { defer monDone.Done(); mon.run(monCtx, 200*time.Millisecond) }()
	t.Cleanup(func() { monStop(); monDone.Wait() })

	// A few seconds of load without faults first: every client learns its volume.
	time.Sleep(3 * time.Second)

	inj := &injector{t: t, c: c, fn: fn, mon: mon, rng: rng, rec: rec, ids: ids, auth: auth,
		lease: time.Duration(core.DefaultParams(1, 0, auth, nil).Lease), down: map[int]bool{}, paused: map[int]bool{},
		counts: map[string]int{}}
	for _, v := range vols {
		inj.vols = append(inj.vols, v.id)
	}
	inj.run(time.Now().Add(dur))

	// Heal everything, keep the load going, then stop it.
	inj.healAll()
	rec.healAt.Store(rec.now())
	t.Logf("t=%.1fs all faults healed; load goes on", float64(rec.now())/1e9)
	time.Sleep(max(8*time.Second, dur/10))
	if err := stopWorkers(); err != nil {
		t.Fatal(err)
	}
	// A final read of every block of every volume (by the volume's first client, all
	// volumes at once): every acknowledged write must still be there, and every client
	// must be served again after healing (L1).
	phase := time.Now()
	errs := make(chan error, len(vols))
	for _, v := range vols {
		i := slices.IndexFunc(clients, func(x *wclient) bool { return x.vol == v.id })
		go func() { errs <- clients[i].readAll(rec, phase.Add(30*time.Second)) }()
	}
	for range vols {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	t.Logf("t=%.1fs final reads of every block done in %v", float64(rec.now())/1e9, time.Since(phase).Round(time.Millisecond))
	inj.checkExits()

	// Every volume back to its full in-sync set (re-mirroring after the faults, L3).
	deadline := time.Now().Add(30 * time.Second)
	var final map[core.VolumeID]core.Config
	for {
		final = map[core.VolumeID]core.Config{}
		full := true
		for _, v := range vols {
			cfg, ok := mon.config(v.id, 3*time.Second)
			final[v.id] = cfg
			full = full && ok && len(cfg.InSync) == v.rf
		}
		if full || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("t=%.1fs in-sync sets checked in %v", float64(rec.now())/1e9, time.Since(deadline.Add(-30*time.Second)).Round(time.Millisecond))
	monStop()
	monDone.Wait()

	// Check the history with the simulator's checker.
	h, counts := rec.snapshot()
	if err := h.Validate(); err != nil {
		t.Fatalf("malformed history: %v", err)
	}
	checkStart := time.Now()
	budget := max(60*time.Second, dur/4)
	results := histories.Check(h, budget)
	checkTook := time.Since(checkStart)

	// Summary.
	var sb strings.Builder
	fmt.Fprintf(&sb, "summary (seed %d, %d nodes, faults for %v, wall %v, history checked in %v):\n", seed, nodes, dur,
		time.Since(wallStart).Round(time.Second), checkTook.Round(time.Millisecond))
	totalOK := 0
	for _, v := range vols {
		n := counts[uint32(v.id)]
		cfg := final[v.id]
		totalOK += n.ok(histories.Read) + n.ok(histories.Write)
		fmt.Fprintf(&sb, "  %s (id %d, RF %d, %d blocks): reads ok %d failed %d unknown %d; writes ok %d failed %d unknown %d; "+
			"ok latency max %v, %d ok over 1 s; ok after healing %d (first write %.2fs after); epoch %d→%d, primary %d→%d (%d primary changes, %d epochs seen), in-sync %v\n",
			v.name, v.id, v.rf, v.hot, n.n[histories.Read][opOK], n.n[histories.Read][opFailed], n.n[histories.Read][opUnknown],
			n.n[histories.Write][opOK], n.n[histories.Write][opFailed], n.n[histories.Write][opUnknown],
			time.Duration(n.maxOK).Round(time.Millisecond), n.slowOK, n.okAfterHeal, float64(n.firstOKAfter)/1e9, v.first.Epoch, cfg.Epoch, v.first.Primary, cfg.Primary,
			mon.primaryChangesOf(v.id), mon.epochChangesOf(v.id), cfg.InSync)
		if n.firstFailedErr != "" {
			fmt.Fprintf(&sb, "    first definite error: %s\n", n.firstFailedErr)
		}
	}
	// No single fault lasts over 5 s, and healing periods separate them: a client that went
	// much longer without an OK answer was stuck beyond what the faults explain (reported,
	// not failed: availability during faults is not a property the test asserts).
	for _, wc := range clients {
		wc.mu.Lock()
		note := ""
		if wc.gap > int64(stallNote) {
			note = "  <- longer than any fault"
		}
		fmt.Fprintf(&sb, "  client %d (volume %d, %d%% reads, timeout %v): longest time without an OK answer %.2fs from t=%.2fs%s\n",
			wc.id, wc.vol, wc.readPct, wc.opTimeout, float64(wc.gap)/1e9, float64(wc.gapFrom)/1e9, note)
		wc.mu.Unlock()
	}
	fmt.Fprintf(&sb, "  ops: %d in the history, %d ok (%.0f ok/s over the run)\n", h.Len(), totalOK,
		float64(totalOK)/time.Since(wallStart).Seconds())
	fmt.Fprintf(&sb, "  faults injected: %d (%s)\n", inj.total, inj.countsString())
	fmt.Fprintf(&sb, "  failovers (primary changes observed): %d; configuration changes observed: %d\n",
		mon.totalPrimaryChanges(), mon.totalEpochChanges())
	if longest, since := mon.outage(); since != 0 {
		fmt.Fprintf(&sb, "  the authority has not answered configuration reads since t=%.2fs\n", float64(since)/1e9)
	} else {
		fmt.Fprintf(&sb, "  longest time the authority did not answer configuration reads: %.2fs\n", float64(longest)/1e9)
	}
	fmt.Fprintf(&sb, "  primaries cut from their secondaries only (L2): %d, failed over meanwhile: %d\n", inj.linkOnly, inj.linkOnlyFailovers)
	fmt.Fprintf(&sb, "  proxies: %s\n", fn.statsString())
	for _, r := range results {
		fmt.Fprintf(&sb, "  check: %v\n", r)
	}
	t.Log(sb.String())

	// Assertions.
	var artifacts string
	evidence := func() string {
		if artifacts == "" {
			artifacts = artifactDir(t)
			saveEvidence(t, artifacts, c, h, inj.log, mon.log())
		}
		return artifacts
	}
	for _, r := range results {
		if r.Linearizable() {
			continue
		}
		dir := evidence()
		if !r.Ok && r.Err == nil {
			p := filepath.Join(dir, fmt.Sprintf("volume-%d-block-%d.html", r.Volume, r.BadBlock))
			if err := histories.WriteHTML(r, p); err != nil {
				t.Logf("visualisation: %v", err)
			} else {
				t.Logf("Porcupine's visualisation of volume %d block %d: %s", r.Volume, r.BadBlock, p)
			}
		}
		t.Errorf("%v (history, node logs and fault log in %s)", r, dir)
	}
	if mon.totalPrimaryChanges() == 0 && !slices.ContainsFunc(vols, func(v *volume) bool { return final[v.id].Primary != core.Addr(v.first.Primary) }) {
		if os.Getenv("E2E_FAULTS") == "" {
			t.Errorf("no failover happened: the schedule must fail over at least one primary (faults: %s)", inj.countsString())
		} else {
			t.Logf("no failover happened (E2E_FAULTS=%s: not required)", os.Getenv("E2E_FAULTS"))
		}
	}
	minOK := 30
	for _, v := range vols {
		n := counts[uint32(v.id)]
		if n.ok(histories.Read) < minOK || n.ok(histories.Write) < minOK {
			t.Errorf("volume %s: only %d ok reads and %d ok writes (want at least %d each): the cluster barely served",
				v.name, n.ok(histories.Read), n.ok(histories.Write), minOK)
		}
		if n.firstOKAfter < 0 {
			t.Errorf("volume %s: no write succeeded after healing (liveness)", v.name)
		}
		if cfg := final[v.id]; len(cfg.InSync) != v.rf {
			what := "a replica never caught up, or its Grow never went through"
			if _, since := mon.outage(); since != 0 {
				what = fmt.Sprintf("the last configuration read; the authority has not answered since t=%.2fs", float64(since)/1e9)
			}
			t.Errorf("volume %s: in-sync set %v (replicas %v, epoch %d) 30 s after healing, want all %d replicas back (%s)",
				v.name, cfg.InSync, cfg.Replicas, cfg.Epoch, v.rf, what)
		}
	}
	for i := range c.nodes {
		if c.nodes[i].exited() {
			t.Errorf("node%d is not running at the end: %v", i+1, c.nodes[i].err)
			continue
		}
		if err := healthy(c.admin[i], 5*time.Second); err != nil {
			t.Errorf("node%d is not healthy at the end: %v", i+1, err)
		}
	}
	if t.Failed() || os.Getenv("E2E_ARTIFACTS") != "" {
		evidence()
	}
}

// monitor polls every volume's configuration from the authority (through the test's
// own client, which reaches the nodes directly, never through the proxies) and counts
// the changes it sees.
type monitor struct {
	obs  *netio.Client
	rec  *recorder
	vols []core.VolumeID
	logf func(format string, args ...any) // each change as it is seen (nil: none)

	mu             sync.Mutex
	last           map[core.VolumeID]core.Config
	primaryChanges map[core.VolumeID]int
	epochChanges   map[core.VolumeID]int
	events         []string
	failingSince   int64 // when configuration reads began to fail (0: they succeed)
	longestOutage  int64
}

func (m *monitor) run(ctx context.Context, every time.Duration) {
	for ctx.Err() == nil {
		for _, v := range m.vols {
			m.config(v, 2*time.Second)
		}
		select {
		case <-ctx.Done():
		case <-time.After(every):
		}
	}
}

// config asks the authority for vol's configuration (a linearizable read) and notes a
// change; it returns the newest configuration known and whether this read succeeded.
func (m *monitor) config(vol core.VolumeID, timeout time.Duration) (core.Config, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	rep, err := m.obs.Admin(ctx, core.AuthRequest{Op: core.OpGetConfig, Vol: vol})
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.rec.now()
	if err != nil || rep.Status != core.StatusOK {
		if m.failingSince == 0 {
			m.failingSince = now
			why := fmt.Sprint(err)
			if err == nil {
				why = rep.Status.String()
			}
			m.note("t=%.2fs the authority does not answer a configuration read (volume %d: %s)", float64(now)/1e9, vol, why)
		}
		return m.last[vol], false
	}
	if m.failingSince != 0 {
		m.note("t=%.2fs the authority answers again, after %.2fs", float64(now)/1e9, float64(now-m.failingSince)/1e9)
		m.longestOutage = max(m.longestOutage, now-m.failingSince)
		m.failingSince = 0
	}
	cfg := rep.Config
	old, seen := m.last[vol]
	switch {
	case !seen:
		m.last[vol] = cfg.Clone()
	case cfg.Epoch > old.Epoch:
		m.last[vol] = cfg.Clone()
		m.epochChanges[vol]++
		what := ""
		if cfg.Primary != old.Primary {
			m.primaryChanges[vol]++
			what = " FAILOVER"
		}
		m.note("t=%.2fs volume %d epoch %d→%d primary %d→%d in-sync %v→%v%s",
			float64(now)/1e9, vol, old.Epoch, cfg.Epoch, old.Primary, cfg.Primary, old.InSync, cfg.InSync, what)
	}
	return m.last[vol], true
}

// note logs an event (m.mu held).
func (m *monitor) note(format string, args ...any) {
	e := fmt.Sprintf(format, args...)
	m.events = append(m.events, e)
	if m.logf != nil {
		m.logf("%s", e)
	}
}

// outage returns the longest time the authority did not answer configuration reads,
// and since when it has not been answering (0: it answers).
func (m *monitor) outage() (longest, since int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	longest = m.longestOutage
	if m.failingSince != 0 {
		longest = max(longest, m.rec.now()-m.failingSince)
	}
	return longest, m.failingSince
}

func (m *monitor) primaryChangesOf(v core.VolumeID) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.primaryChanges[v]
}

func (m *monitor) epochChangesOf(v core.VolumeID) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.epochChanges[v]
}

func (m *monitor) totalPrimaryChanges() (n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.primaryChanges {
		n += c
	}
	return n
}

func (m *monitor) totalEpochChanges() (n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.epochChanges {
		n += c
	}
	return n
}

func (m *monitor) log() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.events)
}

// injector runs the fault schedule, one fault at a time, on the test's goroutine.
type injector struct {
	t     *testing.T
	c     *cluster
	fn    *faultNet
	mon   *monitor
	rng   *rand.Rand
	rec   *recorder
	ids   []core.Addr
	auth  []core.Addr
	vols  []core.VolumeID
	lease time.Duration

	down   map[int]bool // killed by the schedule, not yet restarted
	paused map[int]bool // SIGSTOPped by the schedule
	counts map[string]int
	total  int
	log    []string
	leader core.Addr // the authority leader authorityLeader found last (0: none)

	linkOnly          int // partition-primary faults that left the primary an authority majority
	linkOnlyFailovers int // ... after which the volume had another primary (L2)
}

// The fault kinds. The schedule starts with each of the first five (in a random order), so
// every run kills a primary, pauses one past its lease, cuts one from its secondaries
// (not from the rest), isolates an authority member (the cell's leader half the time), and
// isolates a primary from every node while its clients still reach it (the case a read
// lease exists for: a deposed primary that clients still ask). Then it draws at random,
// with faultWeights.
var faultKinds = []string{"kill-primary", "pause-primary", "partition-primary", "isolate-authority", "isolate-primary",
	"isolate-host", "kill-node", "cut-link", "cut-one-way"}

var faultWeights = map[string]int{"kill-primary": 2, "pause-primary": 2, "partition-primary": 2, "isolate-authority": 1,
	"isolate-primary": 3, "isolate-host": 1, "kill-node": 1, "cut-link": 1, "cut-one-way": 1}

func (in *injector) logf(format string, args ...any) {
	s := fmt.Sprintf("t=%.2fs ", float64(in.rec.now())/1e9) + fmt.Sprintf(format, args...)
	in.log = append(in.log, s)
	in.t.Log(s)
}

func (in *injector) run(until time.Time) {
	var kinds []string
	for _, k := range faultKinds {
		for range faultWeights[k] {
			kinds = append(kinds, k)
		}
	}
	first := slices.Clone(faultKinds[:5])
	if s := os.Getenv("E2E_FAULTS"); s != "" {
		kinds = nil
		for _, k := range strings.Split(s, ",") {
			if !slices.Contains(faultKinds, k) {
				in.t.Fatalf("E2E_FAULTS: unknown fault %q (want some of %s)", k, strings.Join(faultKinds, ","))
			}
			kinds = append(kinds, k)
		}
		first = nil
	}
	in.rng.Shuffle(len(first), func(i, j int) { first[i], first[j] = first[j], first[i] })
	for i := 0; time.Now().Before(until); i++ {
		in.checkExits()
		kind := kinds[in.rng.IntN(len(kinds))]
		if i < len(first) {
			kind = first[i]
		}
		hold := time.Duration(1000+in.rng.IntN(4001)) * time.Millisecond
		heal := in.inject(kind, &hold)
		in.counts[kind]++
		in.total++
		time.Sleep(hold)
		heal()
		// A healing period before the next fault.
		time.Sleep(time.Duration(1000+in.rng.IntN(2001)) * time.Millisecond)
	}
}

func (in *injector) countsString() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(in.counts)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, in.counts[k]))
	}
	return strings.Join(parts, ", ")
}

// primaryOf returns the current primary of a random volume (from the authority; the
// last one seen if it does not answer in time).
func (in *injector) primaryOf() (core.VolumeID, core.Config) {
	vol := in.vols[in.rng.IntN(len(in.vols))]
	cfg, _ := in.mon.config(vol, 5*time.Second)
	if cfg.Primary == 0 {
		cfg.Primary = in.ids[in.rng.IntN(len(in.ids))]
	}
	return vol, cfg
}

func (in *injector) mode() cutMode {
	return []cutMode{refuse, blackhole}[in.rng.IntN(2)]
}

// inject starts one fault and returns what heals it; it may adjust the hold.
func (in *injector) inject(kind string, hold *time.Duration) func() {
	switch kind {
	case "kill-primary", "kill-node":
		var node core.Addr
		what := ""
		if kind == "kill-primary" {
			vol, cfg := in.primaryOf()
			node, what = cfg.Primary, fmt.Sprintf(" (primary of volume %d, epoch %d)", vol, cfg.Epoch)
			if in.counts[kind] == 0 {
				*hold = time.Duration(3000+in.rng.IntN(2001)) * time.Millisecond // long enough to fail over
			}
		} else {
			node = in.ids[in.rng.IntN(len(in.ids))]
		}
		i := int(node) - 1
		in.logf("SIGKILL node %d%s; restart after %v", node, what, hold.Round(time.Millisecond))
		in.c.nodes[i].signal(in.t, syscall.SIGKILL)
		in.down[i] = true
		return func() {
			in.c.start(i)
			in.c.waitHealthy(i)
			delete(in.down, i)
			in.logf("node %d restarted and healthy", node)
		}
	case "pause-primary":
		vol, cfg := in.primaryOf()
		*hold = in.lease + time.Duration(700+in.rng.IntN(3301))*time.Millisecond
		i := int(cfg.Primary) - 1
		in.logf("SIGSTOP node %d (primary of volume %d, epoch %d) for %v (lease %v)", cfg.Primary, vol, cfg.Epoch,
			hold.Round(time.Millisecond), in.lease)
		_ = in.c.nodes[i].cmd.Process.Signal(syscall.SIGSTOP)
		in.paused[i] = true
		return func() {
			_ = in.c.nodes[i].cmd.Process.Signal(syscall.SIGCONT)
			delete(in.paused, i)
			in.logf("SIGCONT node %d", cfg.Primary)
		}
	case "partition-primary":
		// Prefer a volume whose primary still reaches a majority of the authority cell once
		// cut from its secondaries: only a link is broken, and no failover should follow
		// (L2; counted, as the simulator counts unnecessary failovers, not failed).
		vol, cfg := in.primaryOf()
		for range 2 * len(in.vols) {
			if in.keepsAuthority(cfg) {
				break
			}
			vol, cfg = in.primaryOf()
		}
		// The cell's leader probes the primary for a secondary's health check: when the
		// leader is one of the cut secondaries, the probe cannot reach the primary either,
		// so a failover is expected and not counted.
		leader := in.authorityLeader()
		l2 := in.keepsAuthority(cfg) && !(slices.Contains(cfg.Replicas, leader) && leader != cfg.Primary)
		mode := in.mode()
		var cut []core.Addr
		for _, r := range cfg.Replicas {
			if r != cfg.Primary {
				in.fn.cutBoth(cfg.Primary, r, mode)
				cut = append(cut, r)
			}
		}
		rest := fmt.Sprintf("not from the rest; it still reaches a majority of the authority cell and its leader %d", leader)
		if leader == 0 {
			rest = "not from the rest; it still reaches a majority of the authority cell (leader unknown)"
		}
		switch {
		case !in.keepsAuthority(cfg):
			rest = "not from the rest, but they hold a majority of the authority cell"
		case !l2:
			rest = fmt.Sprintf("not from the rest, but the authority's leader %d is one of them", leader)
		}
		in.logf("cut primary %d of volume %d (epoch %d) from its secondaries %v, %s (%v) for %v",
			cfg.Primary, vol, cfg.Epoch, cut, rest, mode, hold.Round(time.Millisecond))
		return func() {
			if l2 {
				in.linkOnly++
				if now, ok := in.mon.config(vol, 3*time.Second); ok && now.Primary != cfg.Primary {
					in.linkOnlyFailovers++
					in.logf("volume %d failed over from %d to %d (epoch %d) although only the links to its secondaries were cut (L2)",
						vol, cfg.Primary, now.Primary, now.Epoch)
				}
			}
			for _, r := range cut {
				in.fn.heal(cfg.Primary, r)
				in.fn.heal(r, cfg.Primary)
			}
			in.logf("healed primary %d ↔ %v", cfg.Primary, cut)
		}
	case "isolate-authority", "isolate-primary", "isolate-host":
		var node core.Addr
		what, clients := "", false
		switch kind {
		case "isolate-authority":
			node = in.auth[in.rng.IntN(len(in.auth))]
			in.leader = 0
			if in.rng.IntN(2) == 0 {
				if l := in.authorityLeader(); l != 0 {
					node = l
				}
			}
			what = " (authority member)"
			if node == in.leader {
				what = " (authority member, the leader)"
			}
		case "isolate-primary":
			vol, cfg := in.primaryOf()
			node = cfg.Primary
			what = fmt.Sprintf(" (primary of volume %d, epoch %d)", vol, cfg.Epoch)
		default: // a whole host: a primary half the time, else any node
			clients = true
			if in.rng.IntN(2) == 0 {
				vol, cfg := in.primaryOf()
				node, what = cfg.Primary, fmt.Sprintf(" (primary of volume %d, epoch %d)", vol, cfg.Epoch)
			} else {
				node = in.ids[in.rng.IntN(len(in.ids))]
			}
		}
		mode := in.mode()
		in.fn.isolate(node, in.ids, clients, mode)
		reach := ", clients still reach it"
		if clients {
			reach = " and every client"
		}
		in.logf("isolate node %d%s from every node%s (%v) for %v", node, what, reach, mode, hold.Round(time.Millisecond))
		return func() {
			for _, m := range in.ids {
				if m != node {
					in.fn.heal(node, m)
					in.fn.heal(m, node)
				}
			}
			if clients {
				in.fn.healClients(node)
			}
			in.logf("healed node %d", node)
		}
	case "cut-link", "cut-one-way":
		a := in.ids[in.rng.IntN(len(in.ids))]
		b := in.ids[in.rng.IntN(len(in.ids)-1)]
		if b >= a {
			b++
		}
		mode := in.mode()
		if kind == "cut-link" {
			in.fn.cutBoth(a, b, mode)
			in.logf("cut link %d ↔ %d (%v) for %v", a, b, mode, hold.Round(time.Millisecond))
			return func() { in.fn.heal(a, b); in.fn.heal(b, a); in.logf("healed %d ↔ %d", a, b) }
		}
		in.fn.cut(a, b, mode)
		in.logf("cut link %d → %d only (%v) for %v", a, b, mode, hold.Round(time.Millisecond))
		return func() { in.fn.heal(a, b); in.logf("healed %d → %d", a, b) }
	}
	in.t.Fatalf("unknown fault %q", kind)
	return nil
}

// keepsAuthority reports whether cfg's primary, cut from its secondaries, still reaches
// a majority of the authority cell (itself included when it is a member).
func (in *injector) keepsAuthority(cfg core.Config) bool {
	n := 0
	for _, a := range in.auth {
		if a == cfg.Primary || !slices.Contains(cfg.Replicas, a) {
			n++
		}
	}
	return n > len(in.auth)/2
}

// authorityLeader asks each authority member's admin API whether it leads (0: none found).
func (in *injector) authorityLeader() core.Addr {
	in.leader = 0
	for _, a := range in.auth {
		i := int(a) - 1
		if in.down[i] || in.paused[i] {
			continue
		}
		var st netio.StatusJSON
		if err := getJSON(in.c.admin[i], "/v1/status", time.Second, &st); err == nil && st.AuthorityLeader {
			in.leader = a
			return a
		}
	}
	return 0
}

// checkExits reports (and restarts) a node that exited without the schedule killing it.
func (in *injector) checkExits() {
	for i, p := range in.c.nodes {
		if in.down[i] || !p.exited() {
			continue
		}
		in.t.Errorf("node%d exited on its own: %v\n%s", i+1, p.err, p.tail())
		in.logf("node %d exited on its own (%v); restarting it", i+1, p.err)
		in.c.start(i)
		in.c.waitHealthy(i)
	}
}

// healAll ends every fault still active.
func (in *injector) healAll() {
	in.fn.healAll()
	for i := range in.paused {
		_ = in.c.nodes[i].cmd.Process.Signal(syscall.SIGCONT)
	}
	clear(in.paused)
	for i := range in.down {
		in.c.start(i)
		in.c.waitHealthy(i)
	}
	clear(in.down)
}

func healthy(admin string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		cl := &http.Client{Timeout: time.Second}
		resp, err := cl.Get("http://" + admin + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/healthz: %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func getJSON(admin, path string, timeout time.Duration, v any) error {
	cl := &http.Client{Timeout: timeout}
	resp, err := cl.Get("http://" + admin + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", path, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}

func envUint(t *testing.T, name string, def uint64) uint64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: want a number", name, s)
	}
	return v
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		t.Fatalf("%s=%q: want a duration such as 90s or 10m", name, s)
	}
	return v
}

// artifactDir is where a failure leaves its evidence: the test's artifact directory
// with -artifacts, else $E2E_ARTIFACTS, else a new directory that is kept.
func artifactDir(t *testing.T) string {
	if f := flag.Lookup("test.artifacts"); f != nil && f.Value.String() == "true" {
		return t.ArtifactDir()
	}
	if d := os.Getenv("E2E_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err == nil {
			return d
		}
	}
	d, err := os.MkdirTemp("", "cairn-e2e-faults-")
	if err != nil {
		return os.TempDir()
	}
	return d
}

// saveEvidence writes the history (one JSON op a line), the fault and configuration logs
// and every node's log into dir.
func saveEvidence(t *testing.T, dir string, c *cluster, h *histories.History, faults, configs []string) {
	var b strings.Builder
	for _, op := range h.Ops() {
		j, _ := json.Marshal(op)
		b.Write(j)
		b.WriteByte('\n')
	}
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Logf("evidence: %v", err)
		}
	}
	write("history.jsonl", b.String())
	write("faults.log", strings.Join(faults, "\n")+"\n")
	write("configs.log", strings.Join(configs, "\n")+"\n")
	for i := range c.nodes {
		name := fmt.Sprintf("node%d.log", i+1)
		if data, err := os.ReadFile(filepath.Join(c.dir, name)); err == nil {
			write(name, string(data))
		}
		// What each node says of itself now (authority role and term, primaries, counters).
		for _, q := range []struct{ path, file string }{{"/v1/status", "status"}, {"/metrics", "metrics"}} {
			cl := &http.Client{Timeout: 2 * time.Second}
			if resp, err := cl.Get("http://" + c.admin[i] + q.path); err == nil {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
				resp.Body.Close()
				write(fmt.Sprintf("node%d-%s.txt", i+1, q.file), string(b))
			}
		}
	}
	t.Logf("evidence (history.jsonl, faults.log, configs.log, node logs, each node's /v1/status and /metrics) in %s", dir)
}
