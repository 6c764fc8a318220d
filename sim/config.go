package sim

import (
	"fmt"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/storage"
)

// Scenario names a workload and fault mix.
type Scenario string

// Scenarios.
const (
	ScenarioMixed     Scenario = "mixed"      // swarm: random shape and the full fault model
	ScenarioFaultFree Scenario = "fault-free" // 3 nodes, 1 volume, 4 clients, no faults (speed baseline)
	// ScenarioBurst: one saturating volume with the cloud-disk burst vectors (scaled by
	// Options.BurstScale), no faults; checks Q1 and the burst length.
	ScenarioBurst Scenario = "burst"
	// ScenarioNoisyNeighbour: a saturating bursty volume beside a provisioned one on shared
	// disks of bounded capacity, no faults; checks Q2.
	ScenarioNoisyNeighbour Scenario = "noisy-neighbour"
)

// Scenarios lists every scenario name.
var Scenarios = []Scenario{ScenarioMixed, ScenarioFaultFree, ScenarioBurst, ScenarioNoisyNeighbour}

// Options configures one run.
type Options struct {
	Seed     uint64
	Scenario Scenario
	Duration int64        // safety phase, simulated ns (0: default)
	Trace    func(string) // if set, receives one line per event
	// FailureDir: where a failing run writes Porcupine's HTML visualisation ("" = none).
	FailureDir string
	// Nodes, Volumes, Clients override the swarm's choice when nonzero (benchmarks).
	Nodes, Volumes, Clients int
	// BurstScale divides the burst scenario's rates and credits (0: DefaultBurstScale);
	// the burst lasts as long at any scale, 1 runs the real vectors (slow).
	BurstScale int64
}

// DefaultBurstScale keeps the burst scenario to 100 IOPS while it bursts.
const DefaultBurstScale = 30

// shape is what a seed draws: cluster, workload and fault rates.
type shape struct {
	nodes     int
	zones     int
	volumes   int
	rf        []uint8
	blocks    []uint64
	clients   int
	attach    [][]core.VolumeID // per client
	inFlight  int
	hotBlocks []uint64 // per volume: ops touch [0, hot)
	maxCount  uint32   // blocks per op
	thinkMax  int64
	readPct   int
	opTimeout int64 // client gives up (outcome unknown) after this long

	// network
	delayBase  int64
	delayJit   int64
	tailPPM    uint32
	tailMax    int64
	lossPPM    uint32
	dupPPM     uint32
	diskBase   int64
	diskJit    int64
	diskTailPP uint32

	// disk faults (storage.MemFS), during the safety phase
	diskFaults  storage.MemFaults
	bitrotEvery int64 // persistent corruption of a block file
	wipeAt      int64 // when an authority member's disk is lost (0: never)
	fullEvery   int64 // a disk-full episode

	// faults (mean time between, 0 = never)
	crashEvery     int64
	pauseEvery     int64
	partitionEvery int64
	maxFaults      int

	drift  []int64 // ppm per node, within ρ
	offset []int64

	params core.Params // template

	// QoS
	qos         []core.QoS // per volume, at creation
	setQoSEvery int64      // mean time between live QoS changes (0: never)
	flushPct    int        // share of operations that are flushes
}

func (s *shape) String() string {
	return fmt.Sprintf("nodes=%d zones=%d volumes=%d rf=%v blocks=%v clients=%d inflight=%d loss=%dppm dup=%dppm crash/%dms pause/%dms part/%dms disk(flip=%d rerr=%d werr=%dppm rot/%dms full/%dms)",
		s.nodes, s.zones, s.volumes, s.rf, s.blocks, s.clients, s.inFlight, s.lossPPM, s.dupPPM,
		s.crashEvery/core.Millisecond, s.pauseEvery/core.Millisecond, s.partitionEvery/core.Millisecond,
		s.diskFaults.BitFlipPPM, s.diskFaults.ReadErrorPPM, s.diskFaults.WriteErrorPPM, s.bitrotEvery/core.Millisecond, s.fullEvery/core.Millisecond)
}

func pick[T any](r *core.Rand, xs ...T) T { return xs[r.Intn(len(xs))] }

func between(r *core.Rand, lo, hi int64) int64 {
	if hi <= lo {
		return lo
	}
	return lo + r.Int63n(hi-lo+1)
}

// drawShape draws a seed's configuration (swarm testing: every seed its own mix).
func drawShape(r *core.Rand, o *Options) *shape {
	s := &shape{}
	ms := core.Millisecond
	tmpl := core.DefaultParams(1, 0, []core.Addr{1}, nil)
	s.params = tmpl
	switch o.Scenario {
	case ScenarioBurst:
		drawBurst(s, o)
	case ScenarioNoisyNeighbour:
		drawNoisy(s)
	case ScenarioFaultFree:
		s.nodes, s.zones, s.volumes, s.clients = 3, 3, 1, 4
		s.rf = []uint8{3}
		s.blocks = []uint64{64}
		s.hotBlocks = []uint64{64}
		s.inFlight, s.maxCount, s.thinkMax, s.readPct = 1, 2, 20*ms, 50
		s.opTimeout = 5 * core.Second
		s.delayBase, s.delayJit = 100_000, 100_000
		s.diskBase, s.diskJit = 50_000, 100_000
	default:
		s.zones = int(between(r, 3, 4))
		s.nodes = int(between(r, int64(s.zones), 6))
		s.volumes = int(between(r, 1, 3))
		s.clients = int(between(r, 2, 6))
		for v := 0; v < s.volumes; v++ {
			s.rf = append(s.rf, pick[uint8](r, 2, 3, 3))
			b := uint64(pick(r, 8, 16, 32, 64))
			s.blocks = append(s.blocks, b)
			s.hotBlocks = append(s.hotBlocks, min(b, uint64(pick(r, 8, 16, 64))))
		}
		s.inFlight = int(between(r, 1, 3))
		s.maxCount = uint32(between(r, 1, 3))
		s.thinkMax = between(r, 1, 30) * ms
		s.readPct = int(between(r, 20, 70))
		// Short timeouts leave writes of unknown outcome in the history (they may still
		// take effect later), the hardest case for the checker.
		s.opTimeout = pick[int64](r, 600, 1500, 5000) * ms
		s.delayBase = between(r, 50_000, 2*ms)
		s.delayJit = between(r, 0, 3*ms)
		s.tailPPM = uint32(between(r, 0, 50_000))
		s.tailMax = between(r, 10, 400) * ms
		s.lossPPM = uint32(pick[int64](r, 0, 1000, 10_000, 50_000))
		s.dupPPM = uint32(pick[int64](r, 0, 1000, 20_000))
		s.diskBase = between(r, 20_000, 500_000)
		s.diskJit = between(r, 0, 2*ms)
		s.diskTailPP = uint32(pick[int64](r, 0, 10_000))
		s.crashEvery = pick[int64](r, 0, 3000, 8000) * ms
		s.pauseEvery = pick[int64](r, 0, 3000, 8000) * ms
		s.partitionEvery = pick[int64](r, 0, 2000, 6000) * ms
		s.maxFaults = int(between(r, 1, 3))
		if r.Intn(2) == 0 {
			s.diskFaults = storage.MemFaults{
				BitFlipPPM:    uint32(pick[int64](r, 0, 100, 2000)),
				ReadErrorPPM:  uint32(pick[int64](r, 0, 100, 1000)),
				WriteErrorPPM: uint32(pick[int64](r, 0, 10, 100)),
			}
			s.bitrotEvery = pick[int64](r, 0, 1000, 4000) * ms
			s.fullEvery = pick[int64](r, 0, 0, 6000) * ms
		}
		s.params.Lease = pick[int64](r, 400, 800, 1500) * ms
		s.params.HeartbeatInterval = s.params.Lease / pick[int64](r, 4, 8, 16)
		// Sometimes shorter than the lease: then only the promise keeps a secondary from
		// seeking promotion while the old primary's lease may still be valid.
		s.params.FailTimeout = pick(r, s.params.Lease/2, s.params.Lease+100*ms, s.params.Lease+pick[int64](r, 400, 1000)*ms)
		s.params.ShrinkTimeout = pick[int64](r, 200, 500, 800) * ms
		s.params.CheckpointEvery = int(pick[int64](r, 16, 128, 512))
		// Catch-up messages hold few blocks, so a member behind by more than that catches up
		// in parts, under every fault (drawn from a stream of its own: the other draws stay).
		sr := core.NewRand(o.Seed ^ 0x5e9c_b10c_5e9c_b10c)
		if sr.Intn(8) != 0 {
			s.params.MaxSyncBlocks = int(pick[int64](sr, 1, 2, 3, 4, 6, 8, 16, 64))
		}
		// The cell's Raft tick: the baseline's or `cairn node`'s shorter one (elections
		// after 250-500 ms of a dead leader's silence), also from a stream of its own.
		tr := core.NewRand(o.Seed ^ 0x7a1c_4e11_7a1c_4e11)
		s.params.RaftTick = pick[int64](tr, 25, 50) * ms
	}
	if o.Scenario == ScenarioMixed {
		drawReplacement(s, o.Seed)
	}
	if o.Nodes > 0 {
		s.nodes = max(o.Nodes, s.zones)
	}
	if o.Volumes > 0 {
		for len(s.rf) < o.Volumes {
			s.rf = append(s.rf, s.rf[0])
			s.blocks = append(s.blocks, s.blocks[0])
			s.hotBlocks = append(s.hotBlocks, s.hotBlocks[0])
		}
		s.volumes = o.Volumes
	}
	if o.Clients > 0 {
		s.clients = o.Clients
	}
	for i := range s.rf {
		s.rf[i] = min(s.rf[i], uint8(s.zones))
	}
	// Every volume gets at least one client; the rest attach at random (multi-attach).
	s.clients = max(s.clients, s.volumes)
	s.attach = make([][]core.VolumeID, s.clients)
	for c := 0; c < s.clients; c++ {
		s.attach[c] = []core.VolumeID{core.VolumeID(c%s.volumes + 1)}
		if s.volumes > 1 && r.Intn(3) == 0 {
			other := core.VolumeID(r.Intn(s.volumes) + 1)
			if other != s.attach[c][0] {
				s.attach[c] = append(s.attach[c], other)
			}
		}
	}
	if o.Scenario == ScenarioMixed {
		drawQoS(r, s) // after the attachments: the limits fit the clients (fitQoS)
		if r.Intn(3) == 0 {
			s.wipeAt = between(r, 2000, 15000) * ms
		}
	}
	for len(s.qos) < len(s.rf) {
		s.qos = append(s.qos, core.QoS{})
	}
	for i := 0; i < s.nodes; i++ {
		if o.Scenario != ScenarioMixed {
			s.drift = append(s.drift, 0)
			s.offset = append(s.offset, 0)
			continue
		}
		s.drift = append(s.drift, between(r, -s.params.DriftPPM, s.params.DriftPPM))
		s.offset = append(s.offset, between(r, -1000, 1000)*ms)
	}
	return s
}
