package sim

import (
	"fmt"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/core/hist"
)

// VolumeResult is one volume's QoS and latency figures in a seed's JSON summary.
// Latencies are simulated time on the primary, from a request's arrival to its reply.
type VolumeResult struct {
	ID              uint32  `json:"id"`
	ProvisionedIOPS int64   `json:"provisioned_iops"`
	BurstIOPS       int64   `json:"burst_iops"`
	AdmittedIOPS    float64 `json:"admitted_iops"`
	Admitted        uint64  `json:"admitted"`
	Lent            uint64  `json:"lent"`
	Throttled       uint64  `json:"throttled"`
	Busy            uint64  `json:"busy"`
	WriteP50us      float64 `json:"write_p50_us"`
	WriteP99us      float64 `json:"write_p99_us"`
	ReadP99us       float64 `json:"read_p99_us"`
	FlushP99us      float64 `json:"flush_p99_us"`
	// BurstSeconds: how long the volume was admitted above its provisioned rate (burst scenario).
	BurstSeconds float64 `json:"burst_seconds,omitempty"`
}

// volAgg gathers a volume's figures across nodes and incarnations.
type volAgg struct {
	admitted, lent, throttled, busy uint64
	lat                             [core.NumOpClasses]*hist.Histogram
	perSecond                       []uint64 // cumulative admissions at each whole simulated second
}

type counterKey struct {
	node core.Addr
	vol  core.VolumeID
}

type counterSeen struct {
	incarnation                     int
	admitted, lent, throttled, busy uint64
}

// sampleQoS runs every simulated second: it folds every node's admission counters into
// the volumes' totals and records the cumulative admissions.
func (w *world) sampleQoS() {
	for _, sn := range w.nodes {
		w.harvestCounters(sn)
	}
	for v := range w.s.volumes {
		a := w.agg(core.VolumeID(v + 1))
		a.perSecond = append(a.perSecond, a.admitted)
	}
	w.q.after(core.Second, w.sampleQoS)
}

func (w *world) agg(vol core.VolumeID) *volAgg {
	a := w.qosAgg[vol]
	if a == nil {
		a = &volAgg{}
		for i := range a.lat {
			a.lat[i], _ = hist.New(hist.DefaultConfig())
		}
		w.qosAgg[vol] = a
	}
	return a
}

func (w *world) harvestCounters(sn *simNode) {
	if sn.n == nil {
		return
	}
	for v := range w.s.volumes {
		vol := core.VolumeID(v + 1)
		c, ok := sn.n.Counters(vol)
		if !ok {
			continue
		}
		k := counterKey{sn.addr, vol}
		seen := w.seen[k]
		if seen.incarnation != sn.incarnation {
			seen = counterSeen{incarnation: sn.incarnation}
		}
		a := w.agg(vol)
		a.admitted += c.Admitted - seen.admitted
		a.lent += c.Lent - seen.lent
		a.throttled += c.Throttled - seen.throttled
		a.busy += c.Busy - seen.busy
		w.seen[k] = counterSeen{incarnation: sn.incarnation, admitted: c.Admitted, lent: c.Lent, throttled: c.Throttled, busy: c.Busy}
	}
}

// harvestLatency merges a node incarnation's latency histograms (before a crash loses
// them, and at the end of the run).
func (w *world) harvestLatency(sn *simNode) {
	if sn.n == nil {
		return
	}
	w.harvestCounters(sn)
	if sn.copyHarvested != sn.incarnation {
		sn.copyHarvested = sn.incarnation
		w.copyWaits += sn.n.Stats().CopyWaits
	}
	for _, vs := range sn.n.Stats().Volumes {
		a := w.agg(vs.Volume)
		for i, h := range vs.Latency {
			if h != nil {
				if err := a.lat[i].Merge(h); err != nil {
					w.violation("merge latency of volume %d: %v", vs.Volume, err)
				}
			}
		}
	}
}

// volumeResults builds the JSON volumes array.
func (w *world) volumeResults(activeSeconds float64) []VolumeResult {
	var out []VolumeResult
	us := func(h *hist.Histogram, q float64) float64 { return float64(h.Quantile(q)) / 1e3 }
	for v := range w.s.volumes {
		vol := core.VolumeID(v + 1)
		a := w.agg(vol)
		q := w.s.qos[v]
		if auth := w.authView(); auth != nil {
			if cfg, ok := auth.n.AuthorityConfig(vol); ok {
				q = cfg.QoS // after any live change
			}
		}
		r := VolumeResult{ID: uint32(vol), ProvisionedIOPS: q.IOPS, BurstIOPS: q.BurstIOPS, Admitted: a.admitted,
			Lent: a.lent, Throttled: a.throttled, Busy: a.busy,
			WriteP50us: us(a.lat[core.ClassWrite], 0.5), WriteP99us: us(a.lat[core.ClassWrite], 0.99),
			ReadP99us: us(a.lat[core.ClassRead], 0.99), FlushP99us: us(a.lat[core.ClassFlush], 0.99)}
		if activeSeconds > 0 {
			r.AdmittedIOPS = float64(a.admitted) / activeSeconds
		}
		if w.o.Scenario == ScenarioBurst {
			r.BurstSeconds = float64(w.burstEnd(a, q))
		}
		out = append(out, r)
	}
	return out
}

// rate is the admissions in [from s, to s) (perSecond[i] is the total at i s).
func (a *volAgg) rate(from, to int) uint64 {
	if from < 0 || to >= len(a.perSecond) || from >= to {
		return 0
	}
	return a.perSecond[to] - a.perSecond[from]
}

// burstEnd is the first second from warmUp on whose admissions fall below the midpoint of
// burst and baseline (-1: the burst never ended).
func (w *world) burstEnd(a *volAgg, q core.QoS) int {
	mid := uint64(q.IOPS+q.BurstIOPS) / 2
	for s := warmUp; s+1 < len(a.perSecond); s++ {
		if a.rate(s, s+1) < mid {
			return s
		}
	}
	return -1
}

// warmUp: whole seconds before the QoS checks start (clients start at 0.3 s).
const warmUp = 2

// qosWindow is Q1's and Q2's window (the spec: any window of at least 10 s).
const qosWindow = 10

// checkQoS runs the scenario's QoS checks: Q1 and the burst length (burst), Q2 (noisy-neighbour).
func (w *world) checkQoS() {
	end := int(w.healAt / core.Second) // clients saturate the volumes through the safety phase
	switch w.o.Scenario {
	case ScenarioBurst:
		q := w.s.qos[0]
		a := w.agg(1)
		want := int(q.BurstCredits / (q.BurstIOPS - q.IOPS))
		got := w.burstEnd(a, q)
		if got < 0 || abs(got-want) > want/50+2 {
			w.violation("burst lasted %d s, want %d s (credits %d / (burst %d - baseline %d)) ±2%%", got, want, q.BurstCredits, q.BurstIOPS, q.IOPS)
			return
		}
		// Q1 over every 10 s window wholly inside the burst or wholly after it.
		w.checkWindows(a, 1, warmUp, got-1, q.BurstIOPS, 5, true)
		w.checkWindows(a, 1, got+2, end, q.IOPS, 5, true)
	case ScenarioNoisyNeighbour:
		// Q2: the provisioned volume gets at least its rate (and no more: it has no burst)
		// whatever its bursting neighbour does; the neighbour at least its own baseline.
		w.checkWindows(w.agg(2), 2, warmUp+3, end, w.s.qos[1].IOPS, 5, true)
		w.checkWindows(w.agg(1), 1, warmUp+3, end, w.s.qos[0].IOPS, 5, false)
	}
}

// checkWindows checks every 10 s window in [from, to): admissions within ±pct% of rate
// (two-sided) or at least rate - pct% (one-sided).
func (w *world) checkWindows(a *volAgg, vol, from, to int, rate int64, pct int64, twoSided bool) {
	if to-from < qosWindow {
		w.violation("volume %d: no %d s window in [%d s, %d s) to check", vol, qosWindow, from, to)
		return
	}
	want := rate * qosWindow
	lo, hi := want-want*pct/100, want+want*pct/100
	for s := from; s+qosWindow <= to; s++ {
		got := int64(a.rate(s, s+qosWindow))
		if got < lo || (twoSided && got > hi) {
			bound := fmt.Sprintf("at least %d", lo)
			if twoSided {
				bound = fmt.Sprintf("%d..%d", lo, hi)
			}
			w.violation("volume %d admitted %d ops in [%d s, %d s), want %s (%d/s ±%d%%)", vol, got, s, s+qosWindow, bound, rate, pct)
			return
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// qosDuration is the default safety phase of the QoS scenarios.
func qosDuration(o *Options, s *shape) int64 {
	switch o.Scenario {
	case ScenarioBurst:
		q := s.qos[0]
		return (q.BurstCredits/(q.BurstIOPS-q.IOPS) + 100) * core.Second
	case ScenarioNoisyNeighbour:
		return 60 * core.Second
	}
	return 0
}
