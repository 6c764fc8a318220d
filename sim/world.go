package sim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/fnv"
	"slices"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/histories"
	"github.com/cairnstore/cairn/storage"
)

const (
	tickInterval  = 10 * core.Millisecond // clients' retry granularity
	clientAddr0   = 1000
	adminAddr     = 999
	localClockMin = 10 * core.Second
)

// world is one simulated run.
type world struct {
	o     *Options
	s     *shape
	q     queue
	netR  *core.Rand
	fltR  *core.Rand
	wrkR  *core.Rand
	seedR *core.Rand

	nodes   []*simNode
	clients []*simClient
	hist    histories.History

	hash   hash.Hash64
	events uint64
	hbuf   [32]byte

	issued     map[core.VolumeID][]issuedCfg
	violations []string
	cut        map[[2]core.Addr]int

	phase        int // 0 safety, 1 liveness, 2 drain, 3 done
	healAt       int64
	activeFaults int
	failovers    int
	unnecessary  int
	crashes      int
	pauses       int
	partitions   int
	msgsSent     uint64
	syncParts    int // catch-up parts sent (DESIGN 2.5)
	syncSeries   int // final Syncs sent that end a catch-up in parts
	msgsDropped  uint64
	lastPicked   *simNode
	hasViolation bool
	bitrots      int
	diskFulls    int
	qosChanges   int
	wipes        int

	leaderTerm    uint64
	leaderChanges int
	adminLeader   core.Addr
	adminMiss     int
	// authority liveness: when the post-healing change was first asked and answered
	authChangeSent, authChangeDone int64

	cfgPending map[configKey]configPending
	// Replica-host wipes (sim/wipe.go) and what rebuilding them cost.
	wipeR         *core.Rand
	memberWiped   bool // an authority member lost its disk as a replica host
	replicaWipes  int
	reMirrors     int   // replicas grown back under a new disk
	reMirrorBytes int64 // catch-up data sent to replicas whose disk is not the recorded one
	maxReMirrors  int   // most replicas rebuilding at once
	degradedNs    int64 // volume-time with fewer in-sync replicas than RF
	degradedSince map[core.VolumeID]int64
	cfgOps        []histories.ConfigOp
	cfgMeta       []configPending

	// doomed: a volume the operator deletes during the safety phase (0: none; sim/delete.go)
	doomed    core.VolumeID
	deletedAt int64
	doomedReq uint64 // the operator's writes to it

	// A node lost for good, removed or drained (sim/lost.go).
	lost         *simNode
	lostKind     int
	lostAnswered bool
	lostStatus   core.Status
	joined       *simNode // a fresh node that joined the running cluster
	copyWaits    uint64   // catch-up answers held back by the nodes' copy rate

	qosAgg map[core.VolumeID]*volAgg
	seen   map[counterKey]counterSeen
}

type issuedCfg struct {
	at  int64
	cfg core.Config
	by  configKey // the request that made it (zero until a member applies it from the log)
}

type simNode struct {
	addr        core.Addr
	zone        uint32
	disk        *disk
	n           *core.Node
	up          bool
	paused      bool
	incarnation int
	held        []func()
	drift       int64
	offset      int64
	diskFree    int64
	params      core.Params
	wipes       int  // times its disk was wiped (its disk identity changes each time)
	gone        bool // lost for good: never restarted (sim/lost.go)
	// copyHarvested: the incarnation whose copy-rate waits were counted (once each).
	copyHarvested int
	tick          int64 // how often the node's core is ticked (real time)
}

func (w *world) local(sn *simNode) int64 {
	t := w.q.now
	return localClockMin + sn.offset + t + t*sn.drift/1_000_000
}

func (w *world) node(a core.Addr) *simNode {
	if a >= 1 && int(a) <= len(w.nodes) {
		return w.nodes[a-1]
	}
	return nil
}

func (w *world) violation(format string, args ...any) {
	w.hasViolation = true
	msg := fmt.Sprintf("t=%.3fs ", float64(w.q.now)/1e9) + fmt.Sprintf(format, args...)
	if len(w.violations) < 50 {
		w.violations = append(w.violations, msg)
	}
	w.tracef("VIOLATION %s", msg)
}

func (w *world) tracef(format string, args ...any) {
	if w.o.Trace != nil {
		w.o.Trace(fmt.Sprintf("%12.6f ", float64(w.q.now)/1e9) + fmt.Sprintf(format, args...))
	}
}

// mix folds an event into the trace hash.
func (w *world) mix(kind byte, a, b uint64, data []byte) {
	w.events++
	binary.LittleEndian.PutUint64(w.hbuf[0:], uint64(w.q.now))
	binary.LittleEndian.PutUint64(w.hbuf[8:], a)
	binary.LittleEndian.PutUint64(w.hbuf[16:], b)
	w.hbuf[24] = kind
	if len(data) > 0 {
		binary.LittleEndian.PutUint32(w.hbuf[25:], crc32.Checksum(data, castagnoli))
		w.hash.Write(w.hbuf[:29])
		return
	}
	w.hash.Write(w.hbuf[:25])
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func newWorld(o *Options) *world {
	root := core.NewRand(o.Seed)
	w := &world{o: o, hash: fnv.New64a(), issued: map[core.VolumeID][]issuedCfg{}, cut: map[[2]core.Addr]int{},
		qosAgg: map[core.VolumeID]*volAgg{}, seen: map[counterKey]counterSeen{}, cfgPending: map[configKey]configPending{},
		degradedSince: map[core.VolumeID]int64{}}
	w.s = drawShape(core.NewRand(root.Uint64()), o)
	w.netR = core.NewRand(root.Uint64())
	w.fltR = core.NewRand(root.Uint64())
	w.wrkR = core.NewRand(root.Uint64())
	w.seedR = core.NewRand(root.Uint64())
	return w
}

// startNode builds a node's core over its disk and recovers it.
func (w *world) startNode(sn *simNode) {
	sn.incarnation++
	if err := sn.disk.open(); err != nil {
		if errors.Is(err, storage.ErrCorrupt) {
			w.violation("node %d: storage failed to recover: %v", sn.addr, err)
			return
		}
		// An injected I/O error or a full disk: try again shortly.
		w.tracef("node %d: storage open failed (%v); retrying", sn.addr, err)
		sn.disk.fs.Crash()
		w.q.after(200*core.Millisecond, func() { w.startNode(sn) })
		return
	}
	n, err := core.NewNode(sn.params, sn.disk.e, core.NewRand(w.seedR.Uint64()))
	if err != nil {
		w.violation("node %d: %v", sn.addr, err)
		return
	}
	if err := n.Start(w.local(sn)); err != nil {
		if errors.Is(err, storage.ErrInjected) || errors.Is(err, storage.ErrNoSpace) {
			// A disk fault during replay: the process dies and tries again.
			w.tracef("node %d: recovery hit a disk fault (%v); retrying", sn.addr, err)
			sn.disk.crash()
			w.q.after(200*core.Millisecond, func() { w.startNode(sn) })
			return
		}
		w.violation("node %d failed to recover: %v", sn.addr, err)
		return
	}
	sn.n, sn.up, sn.paused, sn.held = n, true, false, nil
	w.mix('S', uint64(sn.addr), uint64(sn.incarnation), nil)
	w.tracef("node %d start (incarnation %d)", sn.addr, sn.incarnation)
	w.flush(sn)
	inc := sn.incarnation
	var tick func()
	tick = func() {
		if !sn.up || sn.incarnation != inc {
			return
		}
		w.q.after(sn.tick, tick)
		w.onNode(sn, func() { sn.n.Tick(w.local(sn)) })
	}
	w.q.after(sn.tick, tick)
}

// onNode runs f on a node now, or when it resumes if it is paused.
func (w *world) onNode(sn *simNode, f func()) {
	if !sn.up {
		return
	}
	if sn.paused {
		if len(sn.held) < 100_000 {
			sn.held = append(sn.held, f)
		}
		return
	}
	f()
	w.flush(sn)
}

// flush carries out a node's output.
func (w *world) flush(sn *simNode) {
	if sn.n == nil {
		return
	}
	out := sn.n.Drain()
	w.noteLeader(sn)
	for _, c := range out.Issued {
		w.onIssued(c)
	}
	for _, env := range out.Msgs {
		if r, ok := env.Msg.(*core.ClientReply); ok && r.Status == core.StatusOK {
			w.checkAck(sn, r)
		}
		w.send(sn.addr, env.To, env.Msg)
	}
	inc := sn.incarnation
	for _, op := range out.Ops {
		if !sn.up || sn.incarnation != inc {
			return // the disk failed and the node stopped: the rest never happened
		}
		w.issueDisk(sn, op)
	}
	if out.Fatal != nil {
		w.tracef("node %d fatal: %v", sn.addr, out.Fatal)
		w.crash(sn)
		w.q.after(500*core.Millisecond, func() { w.restart(sn) })
	}
}

func (w *world) issueDisk(sn *simNode, op core.StorageOp) {
	if err := sn.disk.issue(op); err != nil {
		w.diskFailed(sn, err)
		return
	}
	lat := w.s.diskBase
	if w.s.diskJit > 0 {
		lat += w.netR.Int63n(w.s.diskJit)
	}
	if w.phase == 0 && w.netR.Chance(w.s.diskTailPP) {
		lat += w.netR.Int63n(50 * core.Millisecond)
	}
	done := max(w.q.now, sn.diskFree) + lat
	sn.diskFree = done
	inc := sn.incarnation
	w.q.at(done, func() {
		if sn.incarnation != inc || !sn.up {
			return
		}
		op, err := sn.disk.complete()
		if err != nil {
			w.diskFailed(sn, err)
			return
		}
		w.mix('D', uint64(sn.addr), op.Seq, nil)
		w.onNode(sn, func() { sn.n.StorageDone(w.local(sn), op.Seq, nil) })
	})
}

// checkAck: a primary may acknowledge only while the authority's latest issued
// configuration names it primary (S3, S4: no ack under a stale epoch).
func (w *world) checkAck(sn *simNode, r *core.ClientReply) {
	hist := w.issued[r.Vol]
	if len(hist) == 0 {
		w.violation("node %d acknowledged req %d on volume %d before any configuration was issued", sn.addr, r.Req, r.Vol)
		return
	}
	cur := hist[len(hist)-1].cfg
	if cur.Primary != sn.addr || r.Epoch > cur.Epoch {
		w.violation("node %d acknowledged client %d req %d on volume %d at epoch %d, but the authority's primary is %d at epoch %d",
			sn.addr, r.Client, r.Req, r.Vol, r.Epoch, cur.Primary, cur.Epoch)
	}
}

func (w *world) onIssued(ic core.IssuedConfig) {
	c := ic.Config
	by := configKey{}
	if ic.From != 0 {
		by = configKey{ic.From, ic.ReqID, c.Volume}
	}
	hist := w.issued[c.Volume]
	if len(hist) > 0 {
		prev := hist[len(hist)-1].cfg
		if c.Epoch <= prev.Epoch {
			// Every member applies the cell's log: later members (and restarted ones)
			// issue what the first one did, and must issue exactly that.
			i := slices.IndexFunc(hist, func(x issuedCfg) bool { return x.cfg.Epoch == c.Epoch })
			switch {
			case i < 0:
				w.violation("authority issued epoch %d for volume %d after epoch %d", c.Epoch, c.Volume, prev.Epoch)
			case hist[i].cfg.String() != c.String() || hist[i].cfg.QoS != c.QoS:
				w.violation("authority issued two configurations for epoch %d: %v and %v", c.Epoch, hist[i].cfg, c)
			case hist[i].by == (configKey{}):
				hist[i].by = by
			case by != (configKey{}) && by != hist[i].by:
				w.violation("authority issued epoch %d of volume %d for two requests: %+v and %+v", c.Epoch, c.Volume, hist[i].by, by)
			}
			return
		}
		if prev.Primary != c.Primary {
			w.failovers++
			old := w.node(prev.Primary)
			auth := core.Addr(0)
			if l := w.authLeader(); l != nil {
				auth = l.addr
			}
			handover := w.lost != nil && w.lostKind != lostGone && prev.Primary == w.lost.addr
			if old != nil && old.up && !old.paused && !handover && w.cut[[2]core.Addr{auth, old.addr}] == 0 && w.cut[[2]core.Addr{old.addr, auth}] == 0 {
				w.unnecessary++
				w.tracef("unnecessary failover of volume %d: old primary %d was up and reachable", c.Volume, prev.Primary)
			}
		}
	}
	w.tracef("issued %v", c)
	if len(hist) > 0 {
		w.noteReMirrors(&hist[len(hist)-1].cfg, &c)
	}
	w.noteDegraded(&c)
	w.checkSlots(&c)
	w.noteInternal(ic, hist)
	w.issued[c.Volume] = append(hist, issuedCfg{at: w.q.now, cfg: c.Clone(), by: by})
	w.noteRebuilding()
}

func (w *world) crash(sn *simNode) {
	if !sn.up {
		return
	}
	w.harvestLatency(sn) // the observer keeps what the node measured
	sn.disk.crash()
	sn.up, sn.paused, sn.n, sn.held = false, false, nil, nil
	sn.incarnation++
	sn.diskFree = w.q.now
	w.mix('C', uint64(sn.addr), 0, nil)
	w.tracef("node %d crash", sn.addr)
}

// diskFailed: a storage error stops the node (fail-stop); it restarts from its disk.
func (w *world) diskFailed(sn *simNode, err error) {
	w.tracef("node %d storage error: %v", sn.addr, err)
	w.crash(sn)
	w.q.after(500*core.Millisecond, func() { w.restart(sn) })
}

func (w *world) restart(sn *simNode) {
	if sn.up || sn.gone {
		return
	}
	w.startNode(sn)
}

func (w *world) pause(sn *simNode) {
	sn.paused = true
	w.mix('P', uint64(sn.addr), 0, nil)
	w.tracef("node %d paused", sn.addr)
}

func (w *world) resume(sn *simNode) {
	if !sn.up || !sn.paused {
		return
	}
	sn.paused = false
	w.mix('R', uint64(sn.addr), 0, nil)
	w.tracef("node %d resumed (%d held events)", sn.addr, len(sn.held))
	held := sn.held
	sn.held = nil
	for _, f := range held {
		if !sn.up || sn.paused {
			break
		}
		f()
		w.flush(sn)
	}
}

// authorities are the authority cell's members: the first node of each of three zones
// (node i is in zone (i-1) mod zones).
func (w *world) authorities() []core.Addr {
	var m []core.Addr
	for i := 1; i <= min(3, w.s.zones, w.s.nodes); i++ {
		m = append(m, core.Addr(i))
	}
	return m
}

// authLeader is the member leading the cell at the highest term now (nil: none).
func (w *world) authLeader() *simNode {
	var best *simNode
	bestTerm := uint64(0)
	for _, a := range w.authorities() {
		sn := w.node(a)
		if sn.n == nil || !sn.up {
			continue
		}
		if l, term, _, _ := sn.n.AuthorityStatus(); l && term >= bestTerm {
			best, bestTerm = sn, term
		}
	}
	return best
}

// authView is the up member that has applied the most of the cell's log.
func (w *world) authView() *simNode {
	var best *simNode
	most := uint64(0)
	for _, a := range w.authorities() {
		sn := w.node(a)
		if sn.n == nil || !sn.up {
			continue
		}
		if _, _, applied, _ := sn.n.AuthorityStatus(); best == nil || applied > most {
			best, most = sn, applied
		}
	}
	return best
}

// noteLeader counts leader changes of the cell (a member leading at a newer term).
func (w *world) noteLeader(sn *simNode) {
	if l, term, _, ok := sn.n.AuthorityStatus(); ok && l && term > w.leaderTerm {
		if w.leaderTerm != 0 {
			w.leaderChanges++
		}
		w.leaderTerm = term
		w.tracef("node %d leads the authority cell at term %d", sn.addr, term)
	}
}

// adminTo is where the simulator's operator sends authority requests (the leader it
// last heard of, or the next member after an unanswered request).
func (w *world) adminTo() core.Addr {
	m := w.authorities()
	if w.adminMiss >= 2 {
		w.adminLeader = m[(int(w.adminLeader)%len(m)+1)%len(m)]
		w.adminMiss = 0
	}
	if w.adminLeader == 0 {
		w.adminLeader = m[0]
	}
	w.adminMiss++
	return w.adminLeader
}
