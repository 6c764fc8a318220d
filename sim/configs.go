package sim

import (
	"fmt"
	"os"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/histories"
)

// The configuration store's history: every authority request a node, a client or the
// operator sends is one operation, from its first send to the first real answer (a
// NotLeader answer is not one: the request goes on elsewhere). Porcupine checks it with
// the compare-and-set register model (histories.CheckConfigs), per volume.

type configKey struct {
	from  core.Addr
	reqID uint64
	vol   core.VolumeID
}

type configPending struct {
	idx int       // position in w.cfgOps
	key configKey // the request (its sender, id and volume)
}

// recordAuthRequest notes a request's first send.
func (w *world) recordAuthRequest(from core.Addr, r *core.AuthRequest) {
	if w.doomed != 0 && r.Vol == w.doomed {
		return // the volume the operator deletes: the model has no deletion (sim/delete.go)
	}
	k := configKey{from, r.ReqID, r.Vol}
	if _, ok := w.cfgPending[k]; ok {
		return // a retransmission of the same request
	}
	op := histories.ConfigOp{Client: uint64(from), Volume: uint32(r.Vol), FromEpoch: uint64(r.FromEpoch), Call: w.q.now, Unknown: true}
	switch r.Op {
	case core.OpGetConfig:
		op.Kind = histories.ConfigRead
	case core.OpCreateVolume:
		op.Kind = histories.ConfigCreate
	case core.OpPromote, core.OpShrink, core.OpGrow, core.OpRenew, core.OpRequestHost, core.OpHandover:
		// (A granted host joins the replicas at a new epoch: DESIGN 2.13.)
		op.Kind = histories.ConfigCAS
	case core.OpSetQoS:
		op.Kind = histories.ConfigCAS
		if r.FromEpoch == 0 {
			op.Kind = histories.ConfigSet
		}
	default:
		// Not recorded: OpListVolumes reads many volumes at once (the model is a register per
		// volume; a list is a read of each, and GetConfig already checks the read path), and
		// the simulator's operator never deletes a volume (OpDeleteVolume is not modelled)
		// nor joins the cell (OpJoinCell is the cell's own). Their replies match no pending
		// operation and are ignored by recordAuthReply.
		return
	}
	w.cfgPending[k] = configPending{idx: len(w.cfgOps), key: k}
	w.cfgOps = append(w.cfgOps, op)
	w.cfgMeta = append(w.cfgMeta, w.cfgPending[k])
}

// recordAuthReply completes the request it answers.
func (w *world) recordAuthReply(to core.Addr, r *core.AuthReply) {
	if r.Status == core.StatusNotLeader {
		return
	}
	p, ok := w.cfgPending[configKey{to, r.ReqID, r.Config.Volume}]
	if !ok {
		return
	}
	op := &w.cfgOps[p.idx]
	if !op.Unknown {
		return // a duplicate answer
	}
	op.Unknown, op.Return = false, w.q.now
	switch r.Status {
	case core.StatusOK:
		op.Outcome = histories.OutcomeOK
	case core.StatusConflict:
		op.Outcome = histories.OutcomeConflict
	case core.StatusNotFound:
		op.Outcome = histories.OutcomeNotFound
	default:
		op.Outcome = histories.OutcomeInvalid
	}
	if r.Status == core.StatusOK || r.Status == core.StatusConflict {
		op.Out = configState(r.Config)
	}
	w.tracef("config op from=%d req=%d kind=%d fromEpoch=%d call=%.6f -> %v %v", to, r.ReqID, op.Kind, op.FromEpoch,
		float64(op.Call)/1e9, r.Status, r.Config)
}

func configState(c core.Config) histories.ConfigState {
	return histories.ConfigState{Epoch: uint64(c.Epoch), Value: fmt.Sprintf("%v qos=%+v", c, c.QoS)}
}

// noteInternal records a change the authority's leader made on its own (a replica dropped,
// a primary handed over: DESIGN 2.13) as a compare-and-set that took effect when it was
// first issued: no message carried its request, so recordAuthRequest never saw it.
func (w *world) noteInternal(ic core.IssuedConfig, hist []issuedCfg) {
	if ic.From == 0 || ic.Config.Volume == w.doomed || len(hist) == 0 {
		return
	}
	k := configKey{ic.From, ic.ReqID, ic.Config.Volume}
	if _, ok := w.cfgPending[k]; ok {
		return
	}
	prev := hist[len(hist)-1].cfg.Epoch
	op := histories.ConfigOp{Client: uint64(ic.From), Volume: uint32(ic.Config.Volume), FromEpoch: uint64(prev), Kind: histories.ConfigCAS,
		Call: w.q.now, Return: w.q.now, Outcome: histories.OutcomeOK, Out: configState(ic.Config)}
	w.cfgPending[k] = configPending{idx: len(w.cfgOps), key: k}
	w.cfgOps = append(w.cfgOps, op)
	w.cfgMeta = append(w.cfgMeta, w.cfgPending[k])
}

// checkConfigs resolves what each unanswered change produced, if it took effect (every
// issued configuration names the request that made it), and runs the model.
func (w *world) checkConfigs() []string {
	h := &histories.ConfigHistory{}
	made := map[configKey]core.Config{}
	for _, hist := range w.issued { // order-independent: fills a map
		for _, ic := range hist {
			if ic.by != (configKey{}) {
				made[ic.by] = ic.cfg
			}
		}
	}
	for i, p := range w.cfgMeta {
		op := &w.cfgOps[i]
		if !op.Unknown {
			continue
		}
		if c, ok := made[p.key]; ok {
			op.Resolved = configState(c)
		}
	}
	for _, op := range w.cfgOps {
		h.Add(op)
	}
	var html []string
	for _, r := range histories.CheckConfigs(h, checkTimeout) {
		switch {
		case r.Err != nil:
			w.violation("volume %d: malformed configuration history: %v", r.Volume, r.Err)
		case !r.Ok:
			w.violation("volume %d: the authority's configuration history is not linearizable", r.Volume)
			if w.o.FailureDir != "" {
				p := fmt.Sprintf("%s/seed-%d-volume-%d-configs.html", w.o.FailureDir, w.o.Seed, r.Volume)
				if err := os.MkdirAll(w.o.FailureDir, 0o755); err != nil {
					continue
				}
				if err := histories.WriteConfigHTML(r, p); err == nil {
					html = append(html, p)
				}
			}
		case r.TimedOut:
			w.violation("volume %d: configuration history undecided after %v", r.Volume, checkTimeout)
		}
	}
	return html
}

// Authority liveness: once the cluster is healed (a majority of members up and
// connected), the cell must elect a leader and complete a configuration change within
// authLivenessBound. The operator re-applies volume 1's current QoS (a real change: it
// issues a new epoch) and retries until it is answered.
const (
	authLivenessAt    = 1 * core.Second // after healing
	authLivenessBound = 8 * core.Second
	authLivenessReq   = 1 << 40
)

func (w *world) authLivenessProbe() {
	start := w.q.now
	var try func()
	try = func() {
		if w.authChangeDone != 0 || w.q.now-start > authLivenessBound {
			return
		}
		q := core.QoS{}
		if hist := w.issued[1]; len(hist) > 0 {
			q = hist[len(hist)-1].cfg.QoS
		}
		w.authChangeSent = start
		w.send(adminAddr, w.adminTo(), &core.AuthRequest{Op: core.OpSetQoS, ReqID: authLivenessReq, Vol: 1, QoS: q})
		w.q.after(300*core.Millisecond, try)
	}
	try()
}

func (w *world) checkAuthLiveness() {
	switch {
	case w.authChangeSent == 0:
	case w.authChangeDone == 0:
		w.stuck("the authority cell completed no configuration change within %v of the cluster healing", authLivenessBound)
	}
}
