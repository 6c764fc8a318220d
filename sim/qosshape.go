package sim

import (
	"github.com/cairnstore/cairn/core"
)

// drawQoS gives some mixed seeds throttled volumes, short wait queues and live QoS
// changes, so admission, Busy and queued requests meet every fault.
func drawQoS(r *core.Rand, s *shape) {
	s.flushPct = pick(r, 0, 5)
	if r.Intn(2) == 0 {
		return
	}
	s.params.QueueDepth = pick(r, 1, 4, 64)
	for v := range s.volumes {
		if r.Intn(3) == 0 {
			s.qos = append(s.qos, core.QoS{})
			continue
		}
		s.qos = append(s.qos, s.fitQoS(v, pick[int64](r, 20, 100, 400), pick[int64](r, 1, 3, 10),
			pick[int64](r, 0, 200, 5000), pick[int64](r, 0, 0, 1, 8)))
	}
	s.setQoSEvery = pick[int64](r, 0, 3000, 8000) * core.Millisecond
	// A node-wide rate that sometimes binds: the adaptive controller works under faults.
	s.params.Global.InitialRate = pick[int64](r, 200, 2000, 20_000)
	s.params.Global.MinRate = min(s.params.Global.InitialRate, 200)
	s.params.Global.TargetLatency = pick[int64](r, 2, 5, 20) * core.Millisecond
}

// fitQoS builds a volume's QoS, raised where needed so its clients' operations can
// complete within their timeout: a volume provisioned below what its attached clients keep
// in flight per timeout only ever times out (every operation waits longer than its client
// does), which is the operator's mistake, not a liveness failure. The floor is four times
// the in-flight operations per operation timeout, in operations and in bytes.
func (s *shape) fitQoS(v int, iops, burstX, credits, mbps int64) core.QoS {
	inflight := int64(0)
	for _, vols := range s.attach {
		for _, x := range vols {
			if int(x) == v+1 {
				inflight += int64(s.inFlight) + 1 // + a flush
			}
		}
	}
	floor := 4 * inflight * core.Second / s.opTimeout
	iops = max(iops, floor)
	if mbps > 0 {
		perOp := int64(s.maxCount) * core.BlockSize
		mbps = max(mbps, (floor*perOp+(1<<20)-1)>>20)
	}
	return core.QoS{IOPS: iops, BurstIOPS: iops * burstX, BurstCredits: credits, MBps: mbps}
}

// drawBurst: the cloud-disk vectors of a 100 GiB volume, divided by the scale (rates and
// credits alike, so the burst still lasts credits / (burst - baseline) = 2,000 s), one
// volume saturated by two clients, no faults. Opportunistic throttling is off: on an
// otherwise idle node it would lend the spare capacity and stretch the burst (the qos
// package's tests measure that), and the vectors' 2,000 s are what this scenario checks.
func drawBurst(s *shape, o *Options) {
	k := o.BurstScale
	if k <= 0 {
		k = DefaultBurstScale
	}
	q := core.CloudDiskQoS(100)
	q.IOPS, q.BurstIOPS, q.BurstCredits = max(1, q.IOPS/k), max(1, q.BurstIOPS/k), q.BurstCredits/k
	s.nodes, s.zones, s.volumes, s.clients = 3, 3, 1, 2
	s.rf, s.blocks, s.hotBlocks = []uint8{2}, []uint64{64}, []uint64{64}
	s.qos = []core.QoS{q}
	s.inFlight, s.maxCount, s.thinkMax, s.readPct = 4, 1, 0, 30
	s.opTimeout = 5 * core.Second
	s.delayBase, s.delayJit = 100_000, 100_000
	s.diskBase, s.diskJit = 50_000, 50_000
	s.params.Global.DiscountPermille = 1000
}

// Noisy-neighbour shape: both volumes on one node (RF 1; that node is also the whole
// authority cell), so they share its admission and its disk, which serves one operation
// per noisyDiskService (833 a second): enough for both provisioned rates (200 + 500),
// not for the noisy one's burst. (With replicas spread over several nodes the two
// primaries may land on different nodes, and then they are not neighbours.)
const (
	noisyDiskService = 1_200_000 // ns
	noisyIOPS        = 200
	noisyBurst       = 5000
	quietIOPS        = 500
)

func drawNoisy(s *shape) {
	s.nodes, s.zones, s.volumes, s.clients = 1, 1, 2, 6
	s.rf, s.blocks, s.hotBlocks = []uint8{1, 1}, []uint64{64, 64}, []uint64{64, 64}
	s.qos = []core.QoS{
		{IOPS: noisyIOPS, BurstIOPS: noisyBurst, BurstCredits: 1 << 30},
		{IOPS: quietIOPS, BurstIOPS: quietIOPS},
	}
	// Three clients per volume, 16 operations each in flight: the noisy volume asks for far
	// more than the disk can take, so the node's bucket is what limits it.
	s.inFlight, s.maxCount, s.thinkMax, s.readPct = 16, 1, 0, 20
	s.opTimeout = 5 * core.Second
	s.delayBase, s.delayJit = 100_000, 100_000
	s.diskBase, s.diskJit = noisyDiskService, 0
	s.params.Global.TargetLatency = 5 * core.Millisecond
	// The node's rate may fall below the provisioned sum: it binds bursts only, and
	// guaranteed admissions pass whatever it says (the property under test).
	s.params.Global.InitialRate = 500
	s.params.Global.MinRate = 100
}

// scheduleQoSChanges changes volumes' QoS while they serve (mixed seeds that draw it):
// the authority issues a new epoch and the primary applies the limits live.
func (w *world) scheduleQoSChanges() {
	if w.s.setQoSEvery <= 0 {
		return
	}
	var next func()
	next = func() {
		if w.phase > 0 {
			return
		}
		vol := core.VolumeID(w.fltR.Intn(w.s.volumes) + 1)
		q := core.QoS{}
		if w.fltR.Intn(4) != 0 {
			q = w.s.fitQoS(int(vol-1), pick[int64](w.fltR, 10, 50, 200, 1000), pick[int64](w.fltR, 1, 4),
				pick[int64](w.fltR, 0, 500), 0)
		}
		w.qosChanges++
		w.tracef("admin: volume %d QoS -> %+v", vol, q)
		w.send(adminAddr, w.adminTo(), &core.AuthRequest{Op: core.OpSetQoS, ReqID: uint64(1000 + w.qosChanges), Vol: vol, QoS: q})
		w.q.after(w.s.setQoSEvery/2+w.fltR.Int63n(w.s.setQoSEvery+1), next)
	}
	w.q.after(w.s.setQoSEvery, next)
}
