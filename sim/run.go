package sim

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/histories"
)

// Result is one seed's outcome; its JSON form is the command-line contract.
type Result struct {
	Seed                   uint64   `json:"seed"`
	TraceHash              string   `json:"trace_hash"`
	Result                 string   `json:"result"` // ok, violation, stuck
	Violations             []string `json:"violations"`
	SimSeconds             float64  `json:"sim_seconds"`
	WallSeconds            float64  `json:"wall_seconds"`
	CheckSeconds           float64  `json:"check_seconds"`
	Events                 uint64   `json:"events"`
	Ops                    int      `json:"ops"`
	OpsUnknown             int      `json:"ops_unknown"`
	Failovers              int      `json:"failovers"`
	UnnecessaryFailovers   int      `json:"unnecessary_failovers"`
	Crashes                int      `json:"crashes"`
	Pauses                 int      `json:"pauses"`
	Partitions             int      `json:"partitions"`
	BitRots                int      `json:"bitrots"`
	DiskFulls              int      `json:"disk_fulls"`
	Messages               uint64   `json:"messages"`
	QoSChanges             int      `json:"qos_changes"`
	AuthorityMembers       int      `json:"authority_members"`
	WipedMembers           int      `json:"wiped_members"`
	WipedReplicas          int      `json:"wiped_replicas"`            // replica hosts whose disk was lost (sim/wipe.go)
	ReMirrors              int      `json:"re_mirrors"`                // replicas grown back in under a new disk
	ReMirrorBytes          int64    `json:"re_mirror_bytes"`           // catch-up data sent to replicas being rebuilt
	DegradedSeconds        float64  `json:"degraded_seconds"`          // volume-seconds with fewer in-sync replicas than RF
	MaxConcurrentReMirrors int      `json:"max_concurrent_re_mirrors"` // most replicas being rebuilt at once
	NodeLoss               string   `json:"node_loss,omitempty"`       // a node gone for good, removed or drained (sim/lost.go)
	NodeJoined             bool     `json:"node_joined,omitempty"`     // a fresh node joined the running cluster
	CopyThrottled          uint64   `json:"copy_throttled"`            // catch-up answers held back by the copy rate
	ConfigOps              int      `json:"config_ops"`                // authority requests checked by the configuration model
	AuthorityLeaderChgs    int      `json:"authority_leader_changes"`
	SyncParts              int      `json:"sync_parts"`     // catch-up parts sent (a member behind by more than MaxSyncBlocks)
	SyncMultipart          int      `json:"sync_multipart"` // final Syncs sent that end a catch-up in parts
	MaxSyncBlocks          int      `json:"max_sync_blocks"`
	Shape                  string   `json:"shape"`
	Replay                 string   `json:"replay"`
	HTML                   []string `json:"html,omitempty"`
	// Volumes: per volume, admission counts and simulated latency (spec sections 6 and 7).
	Volumes []VolumeResult `json:"volumes"`
}

// Phase lengths in simulated time.
const (
	defaultSafety  = 20 * core.Second
	livenessBound  = 10 * core.Second // every volume must serve a write within this after healing
	drainTime      = 6 * core.Second  // in-flight operations finish or time out
	settleTime     = 2 * core.Second  // replication settles before the final reads
	finalReadLimit = 10 * core.Second
	checkTimeout   = 30 * time.Second
	checkPerOp     = 25 * time.Microsecond
)

// Run simulates one seed.
func Run(o Options) Result {
	wall := time.Now()
	if o.Scenario == "" {
		o.Scenario = ScenarioMixed
	}
	defaultDuration := o.Duration <= 0
	if defaultDuration {
		o.Duration = defaultSafety
	}
	w := newWorld(&o)
	if d := qosDuration(&o, w.s); d > 0 && defaultDuration {
		o.Duration = d
	}
	w.setup()
	w.healAt = o.Duration
	w.q.at(w.healAt, func() {
		w.phase = 1
		w.tracef("liveness phase: faults off, cluster healed")
		w.healAll()
		w.q.after(authLivenessAt, w.authLivenessProbe)
	})
	stopAt := w.healAt + livenessBound
	w.q.at(stopAt, func() { w.phase = 2; w.tracef("drain: clients stop issuing") })
	finalAt := stopAt + drainTime + settleTime
	finalDone := false
	w.q.at(finalAt, func() { w.finalReads(func() { finalDone = true }) })
	limit := finalAt + finalReadLimit
	for !finalDone {
		e, ok := w.q.next(limit)
		if !ok {
			break
		}
		e.fire()
	}
	w.phase = 3
	for _, sn := range w.nodes {
		w.harvestLatency(sn)
	}
	res := Result{Seed: o.Seed, Shape: w.s.String(), Events: w.events}
	res.Volumes = w.volumeResults(float64(stopAt) / 1e9)
	w.checkQoS()
	if !finalDone {
		w.stuck("final reads did not finish within %v of simulated time", time.Duration(finalReadLimit))
	}
	w.checkLiveness()
	w.checkAuthLiveness()
	w.checkDeletion()
	if finalDone {
		w.checkConvergence()
		w.checkFullRF()
	}
	checkStart := time.Now()
	res.HTML = w.checkHistory()
	res.HTML = append(res.HTML, w.checkConfigs()...)
	res.ConfigOps = len(w.cfgOps)
	res.CheckSeconds = time.Since(checkStart).Seconds()
	res.TraceHash = fmt.Sprintf("%016x", w.hash.Sum64())
	res.Violations = w.violations
	res.Ops = w.hist.Len()
	for _, op := range w.hist.Ops() {
		if op.Unknown {
			res.OpsUnknown++
		}
	}
	res.Failovers, res.UnnecessaryFailovers = w.failovers, w.unnecessary
	res.Crashes, res.Pauses, res.Partitions = w.crashes, w.pauses, w.partitions
	res.BitRots, res.DiskFulls, res.QoSChanges = w.bitrots, w.diskFulls, w.qosChanges
	res.AuthorityMembers, res.AuthorityLeaderChgs = len(w.authorities()), w.leaderChanges
	res.WipedMembers = w.wipes
	res.WipedReplicas, res.ReMirrors, res.ReMirrorBytes = w.replicaWipes, w.reMirrors, w.reMirrorBytes
	if w.lost != nil {
		res.NodeLoss = []string{lostGone: "gone", lostRemoved: "removed", lostDrained: "drained"}[w.lostKind]
	}
	res.NodeJoined = w.joined != nil
	res.CopyThrottled = w.copyWaits
	res.DegradedSeconds, res.MaxConcurrentReMirrors = w.degradedSeconds(), w.maxReMirrors
	res.Messages = w.msgsSent
	res.SyncParts, res.SyncMultipart, res.MaxSyncBlocks = w.syncParts, w.syncSeries, w.s.params.MaxSyncBlocks
	res.SimSeconds = float64(w.q.now) / 1e9
	res.Replay = fmt.Sprintf("cairn sim --seed %d", o.Seed)
	if o.Scenario != ScenarioMixed {
		res.Replay += " --scenario " + string(o.Scenario)
	}
	if !defaultDuration {
		res.Replay += fmt.Sprintf(" --duration %s", time.Duration(o.Duration))
	}
	if o.Scenario == ScenarioBurst && o.BurstScale > 0 && o.BurstScale != DefaultBurstScale {
		res.Replay += fmt.Sprintf(" --burst-scale %d", o.BurstScale)
	}
	switch {
	case w.hasViolation:
		res.Result = "violation"
	case len(w.violations) > 0:
		res.Result = "stuck"
	default:
		res.Result = "ok"
	}
	res.WallSeconds = time.Since(wall).Seconds()
	return res
}

func (w *world) stuck(format string, args ...any) {
	w.violations = append(w.violations, "stuck: "+fmt.Sprintf(format, args...))
}

// setup builds nodes, creates the volumes through the authority and starts clients.
func (w *world) setup() {
	s := w.s
	var infos []core.NodeInfo
	for i := 0; i < s.nodes; i++ {
		infos = append(infos, core.NodeInfo{Addr: core.Addr(i + 1), Zone: uint32(i % s.zones)})
	}
	for i := 0; i < s.nodes; i++ {
		p := s.params
		p.Self, p.Zone, p.Authorities, p.Nodes = infos[i].Addr, infos[i].Zone, w.authorities(), infos
		p.Disk = diskID(w.o.Seed, p.Self, 0)
		sn := &simNode{addr: p.Self, zone: p.Zone, disk: newDisk(w.seedR.Uint64()), drift: s.drift[i], offset: s.offset[i], params: p,
			tick: max(2*core.Millisecond, min(p.HeartbeatInterval, p.RetransmitTimeout)/4)}
		w.nodes = append(w.nodes, sn)
	}
	for _, sn := range w.nodes {
		sn.disk.fs.SetFaults(s.diskFaults)
		w.startNode(sn)
	}
	w.createVolumes()
	w.planDeletion()
	w.q.at(0, w.sampleQoS)
	w.scheduleQoSChanges()
	for i := 0; i < s.clients; i++ {
		sc := w.newClient(i, s.attach[i])
		w.clients = append(w.clients, sc)
		w.startClient(sc, 300*core.Millisecond+w.wrkR.Int63n(100*core.Millisecond))
	}
	w.scheduleFaults()
	w.scheduleReplicaWipes()
	w.scheduleLoss()
}

// createVolumes asks the authority for every volume, retrying until it answers.
func (w *world) createVolumes() {
	for i := 0; i < w.s.volumes; i++ {
		vol := core.VolumeID(i + 1)
		req := &core.AuthRequest{Op: core.OpCreateVolume, ReqID: uint64(vol), Vol: vol, Blocks: w.s.blocks[i], RF: w.s.rf[i], QoS: w.s.qos[i]}
		var try func()
		try = func() {
			if w.created(vol) {
				return
			}
			w.send(adminAddr, w.adminTo(), req)
			w.q.after(200*core.Millisecond, try)
		}
		w.q.after(0, try)
	}
}

func (w *world) created(vol core.VolumeID) bool { return len(w.issued[vol]) > 0 }

// startClient starts a client once every volume exists (the cell elects its first leader
// before it creates anything), so no operation fails for a volume not yet created.
func (w *world) startClient(sc *simClient, at int64) {
	w.q.at(at, func() {
		for v := range w.s.volumes {
			if !w.created(core.VolumeID(v + 1)) {
				w.startClient(sc, w.q.now+50*core.Millisecond)
				return
			}
		}
		sc.start(w.q.now)
	})
}

func (w *world) adminReply(m core.Message) {
	r, ok := m.(*core.AuthReply)
	if !ok {
		return
	}
	w.adminMiss = 0
	if r.ReqID == authLivenessReq && r.Status == core.StatusOK && w.authChangeDone == 0 {
		w.authChangeDone = w.q.now
		w.tracef("authority liveness: a configuration change completed %v after it was asked", time.Duration(w.q.now-w.authChangeSent))
	}
	if r.Status == core.StatusNotLeader {
		if r.Leader != 0 {
			w.adminLeader = r.Leader
		}
		return // the operator's request is retried (creates, the delete) or dropped (QoS changes)
	}
	w.deleteAnswered(r)
	if w.lostAnswer(r) {
		return
	}
	if r.Status != core.StatusOK && r.Status != core.StatusConflict {
		w.violation("authority refused admin op %d on volume %d: %v", r.Op, r.Config.Volume, r.Status)
	}
}

// finalReads reads every block of every volume once the cluster is healed and quiet.
func (w *world) finalReads(done func()) {
	w.tracef("final reads")
	var sc *simClient
	if len(w.clients) > 0 {
		sc = w.clients[0]
	}
	left := 0
	for v := 0; v < w.s.volumes; v++ {
		vol := core.VolumeID(v + 1)
		for b := uint64(0); b < w.s.blocks[v]; b += 8 {
			left++
			n := uint32(min(8, w.s.blocks[v]-b))
			w.finalRead(sc, vol, b, n, func() {
				left--
				if left == 0 {
					done()
				}
			})
		}
	}
}

// finalRead retries a read until it succeeds (every attempt is recorded in the history).
// It waits while the client is at its in-flight bound, and retries on a later event, never
// from inside the completion.
func (w *world) finalRead(sc *simClient, vol core.VolumeID, block uint64, n uint32, done func()) {
	if !sc.c.CanSubmit() {
		w.q.after(tickInterval, func() { w.finalRead(sc, vol, block, n, done) })
		return
	}
	sc.read(vol, block, n, func(op *histories.Op) {
		if !op.Unknown {
			done()
			return
		}
		w.q.after(tickInterval, func() { w.finalRead(sc, vol, block, n, done) })
	})
}

// checkLiveness: every volume served a write within the bound after healing (L1).
func (w *world) checkLiveness() {
	served := map[uint32]bool{}
	for _, op := range w.hist.Ops() {
		if op.Kind == histories.Write && !op.Unknown && op.Call >= w.healAt && op.Return <= w.healAt+livenessBound {
			served[op.Volume] = true
		}
	}
	for v := 0; v < w.s.volumes; v++ {
		if !served[uint32(v+1)] {
			w.stuck("volume %d served no write within %v after the cluster healed", v+1, time.Duration(livenessBound))
		}
	}
}

// checkConvergence: after the liveness phase, in-sync replicas hold identical data (S5).
func (w *world) checkConvergence() {
	auth := w.authView()
	if auth == nil {
		w.stuck("every authority member is down at the end")
		return
	}
	for v := 0; v < w.s.volumes; v++ {
		vol := core.VolumeID(v + 1)
		cfg, ok := auth.n.AuthorityConfig(vol)
		if !ok {
			w.stuck("volume %d unknown to the authority", vol)
			continue
		}
		p := w.node(cfg.Primary)
		if p.disk.e == nil {
			w.stuck("volume %d: primary %d down at the end", vol, cfg.Primary)
			continue
		}
		ref, err := p.disk.content(vol, cfg.Blocks)
		if err != nil {
			w.violation("volume %d: primary %d cannot read its blocks: %v", vol, cfg.Primary, err)
			continue
		}
		for _, m := range cfg.InSync {
			if m == cfg.Primary {
				continue
			}
			md := w.node(m).disk
			if md.e == nil {
				w.stuck("volume %d: in-sync member %d down at the end", vol, m)
				continue
			}
			got, err := md.content(vol, cfg.Blocks)
			if err != nil {
				w.violation("volume %d: member %d cannot read its blocks: %v", vol, m, err)
				continue
			}
			if !bytes.Equal(ref, got) {
				for b := uint64(0); b < cfg.Blocks; b++ {
					x, y := ref[b*core.BlockSize:(b+1)*core.BlockSize], got[b*core.BlockSize:(b+1)*core.BlockSize]
					if !bytes.Equal(x, y) {
						w.violation("volume %d: in-sync replicas %d and %d differ at block %d (%x vs %x)", vol, cfg.Primary, m, b, decodeBlock(x), decodeBlock(y))
						break
					}
				}
			}
		}
	}
}

// checkHistory runs Porcupine per volume, partitioned per block (S1, S2, S4).
func (w *world) checkHistory() []string {
	var html []string
	// The budget grows with the history (the real burst vectors record six million operations).
	budget := max(checkTimeout, time.Duration(w.hist.Len())*checkPerOp)
	for _, r := range histories.Check(&w.hist, budget) {
		switch {
		case r.Err != nil:
			w.violation("volume %d: malformed history: %v", r.Volume, r.Err)
		case !r.Ok:
			w.violation("volume %d: history is not linearizable (block %d)", r.Volume, r.BadBlock)
			if w.o.FailureDir != "" {
				p := filepath.Join(w.o.FailureDir, fmt.Sprintf("seed-%d-volume-%d.html", w.o.Seed, r.Volume))
				if err := os.MkdirAll(w.o.FailureDir, 0o755); err == nil {
					if err := histories.WriteHTML(r, p); err == nil {
						html = append(html, p)
					}
				}
			}
		case r.TimedOut:
			w.violation("volume %d: linearizability check undecided after %v (%d partitions)", r.Volume, budget, r.Undecided)
		}
	}
	return html
}
