package histories

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"pgregory.net/rapid"
)

// checkRaw checks the ops idx of one volume with Porcupine without the
// rewrites of tightenConfigOps (every op, unknown ones pending forever).
func checkRaw(all []ConfigOp, idx []int, timeout time.Duration) bool {
	return porcupine.CheckOperationsTimeout(configModel(), buildConfigOps(all, rawConfigOps(all, idx)), timeout) != porcupine.Illegal
}

// rawConfigOps returns every op of idx with its return time as Porcupine sees
// it without rewriting: +infinity for an unknown outcome.
func rawConfigOps(all []ConfigOp, idx []int) []keptConfigOp {
	kept := make([]keptConfigOp, 0, len(idx))
	for _, i := range idx {
		ret := all[i].Return
		if all[i].Unknown {
			ret = math.MaxInt64
		}
		kept = append(kept, keptConfigOp{index: i, ret: ret})
	}
	return kept
}

// configGenParams shapes a generated configuration history.
type configGenParams struct {
	ops        int
	clients    int
	volumes    int
	sequential bool // ops never overlap (except unknown ones, whose return is +inf)
	unknownPct int  // percentage of ops with an unknown outcome
	invalidPct int  // percentage of known ops refused as Invalid
}

// configMembers are the payloads of generated configurations.
var configMembers = []string{"n1,n2,n3", "n1,n2", "n2,n3,n4", "n1,n3;qos=9"}

// generateConfigs returns a history that is linearizable by construction:
// every op gets a linearization point inside its interval (an unknown op
// takes effect at some point after its call, or never), ops are applied in
// linearization-point order to a reference store of one configuration per
// volume, and replies record what it answered. Inputs (the kind's FromEpoch)
// are drawn at the linearization point, so that many CAS succeed. Unknown
// changes are resolved as the simulator does, from the configurations issued
// by epoch: the one they produced, or else the one issued at the epoch they
// would have produced (if any).
func generateConfigs(src source, p configGenParams) *ConfigHistory {
	type genOp struct {
		op     ConfigOp
		lin    int64
		effect bool
	}
	ops := make([]genOp, p.ops)
	clock := make([]int64, p.clients)
	var global int64
	kinds := []ConfigKind{ConfigRead, ConfigRead, ConfigCreate, ConfigCAS, ConfigCAS, ConfigCAS, ConfigSet, ConfigGrant, ConfigGrant}
	for k := range ops {
		c := src.intn(p.clients)
		op := ConfigOp{
			Client: uint64(c)*1000003 + 7, // sparse ids: visualisation must densify
			Volume: uint32(1 + src.intn(p.volumes)),
			Kind:   kinds[src.intn(len(kinds))],
		}
		op.Unknown = src.intn(100) < p.unknownPct
		var dur int64
		if p.sequential {
			op.Call = global + 1 + int64(src.intn(3))
			dur = int64(src.intn(10))
			global = op.Call + dur
		} else {
			op.Call = clock[c] + 1 + int64(src.intn(20))
			dur = int64(src.intn(30))
			clock[c] = op.Call + dur
		}
		op.Return = op.Call + dur
		g := genOp{effect: true}
		if op.Unknown {
			g.effect = src.intn(2) == 0
			g.lin = op.Call + int64(src.intn(int(dur)+50))
			// The reply fields are ignored: garbage.
			op.Return = op.Call - int64(src.intn(5))
			op.Outcome = ConfigOutcome(src.intn(5))
			op.Out = ConfigState{Epoch: uint64(src.intn(4)), Value: "garbage"}
		} else {
			g.lin = op.Call + int64(src.intn(int(dur)+1))
		}
		ops[k] = genOp{op: op, lin: g.lin, effect: g.effect}
	}
	order := make([]int, len(ops))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case ops[a].lin < ops[b].lin:
			return -1
		case ops[a].lin > ops[b].lin:
			return 1
		}
		return 0
	})

	type volume struct {
		cur    ConfigState
		issued map[uint64]ConfigState // epoch -> configuration
	}
	vols := make(map[uint32]*volume)
	var unresolved []int
	for _, k := range order {
		g := &ops[k]
		op := &g.op
		v := vols[op.Volume]
		if v == nil {
			v = &volume{issued: make(map[uint64]ConfigState)}
			vols[op.Volume] = v
		}
		exists := v.cur.Value != ""
		if op.Kind == ConfigCAS {
			op.FromEpoch = v.cur.Epoch
			if src.intn(5) < 2 {
				op.FromEpoch = uint64(src.intn(int(v.cur.Epoch) + 3))
			}
		}
		if !op.Unknown && src.intn(100) < p.invalidPct {
			op.Outcome = OutcomeInvalid
			op.Out = ConfigState{Epoch: uint64(src.intn(4)), Value: "garbage"}
			continue
		}
		// What the authority does: outcome, reply and new configuration (if applied).
		outcome, out, applied := OutcomeOK, v.cur, false
		switch op.Kind {
		case ConfigRead, ConfigGrant:
			if !exists {
				outcome = OutcomeNotFound
			} else if op.Kind == ConfigGrant && src.intn(5) == 0 {
				outcome = OutcomeConflict
			}
		case ConfigCreate:
			if exists {
				outcome = OutcomeConflict
			} else {
				applied = true
			}
		case ConfigCAS, ConfigSet:
			switch {
			case !exists:
				outcome = OutcomeNotFound
			case op.Kind == ConfigCAS && op.FromEpoch != v.cur.Epoch:
				outcome = OutcomeConflict
			case src.intn(8) == 0: // refused for another reason (a member not in sync, ...)
				outcome = OutcomeConflict
			default:
				applied = true
			}
		}
		if applied && (!op.Unknown || g.effect) {
			e := v.cur.Epoch + 1
			v.cur = ConfigState{Epoch: e, Value: fmt.Sprintf("e%d/%s", e, configMembers[src.intn(len(configMembers))])}
			v.issued[e] = v.cur
			out = v.cur
			if op.Unknown {
				op.Resolved = v.cur
			}
		} else if op.Unknown && op.Kind.changes() {
			unresolved = append(unresolved, k)
		}
		if !op.Unknown {
			op.Outcome, op.Out = outcome, out
			if outcome == OutcomeNotFound {
				op.Out = ConfigState{}
			}
		}
	}
	// An unknown change that took no effect is resolved to what was issued at
	// the epoch it would have produced, if anything; a set's epoch is unknown, so
	// it gets any issued configuration, or none.
	for _, k := range unresolved {
		op := &ops[k].op
		v := vols[op.Volume]
		switch op.Kind {
		case ConfigCreate:
			op.Resolved = v.issued[1]
		case ConfigCAS:
			op.Resolved = v.issued[op.FromEpoch+1]
		case ConfigSet:
			op.Resolved = v.issued[uint64(src.intn(len(v.issued)+2))]
		}
	}
	h := &ConfigHistory{}
	for _, g := range ops {
		h.Add(g.op)
	}
	return h
}

func drawConfigParams(t *rapid.T, sequential bool, unknownPct int) configGenParams {
	return configGenParams{
		ops:        rapid.IntRange(1, 50).Draw(t, "ops"),
		clients:    rapid.IntRange(1, 5).Draw(t, "clients"),
		volumes:    rapid.IntRange(1, 2).Draw(t, "volumes"),
		sequential: sequential,
		unknownPct: unknownPct,
		invalidPct: rapid.SampledFrom([]int{0, 5}).Draw(t, "invalidPct"),
	}
}

func requireConfigsLinearizable(t *rapid.T, h *ConfigHistory) {
	for _, res := range CheckConfigs(h, 30*time.Second) {
		if !res.Linearizable() {
			t.Fatalf("generated history not linearizable: %v\n%v", res, configOpsString(h))
		}
	}
}

func configOpsString(h *ConfigHistory) string {
	s := ""
	for i, op := range h.ops {
		s += fmt.Sprintf("%d: %v resolved %v\n", i, op, op.Resolved)
	}
	return s
}

// TestConfigGeneratedLinearizable: concurrent histories from a reference
// store, with linearization points inside the intervals, unknown outcomes and
// Invalid refusals, are always linearizable.
func TestConfigGeneratedLinearizable(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		sequential := rapid.Bool().Draw(t, "sequential")
		h := generateConfigs(rapidSource{t}, drawConfigParams(t, sequential, rapid.SampledFrom([]int{0, 10, 30}).Draw(t, "unknownPct")))
		if err := h.Validate(); err != nil {
			t.Fatalf("generated a malformed history: %v", err)
		}
		requireConfigsLinearizable(t, h)
	})
}

// TestConfigMutatedEpoch: changing the epoch of one OK reply of a generated
// history makes its volume non-linearizable, whenever that is sure:
//   - in a sequential history with every outcome known, the linearization
//     is forced and each reply has one acceptable epoch;
//   - otherwise, generated values carry their epoch, so a reply {e', v} that
//     must equal the state (read, grant) or be checked against its own input
//     (create: epoch 1; cas: FromEpoch+1) cannot be accepted; a set only
//     checks its epoch against the state's, so it is moved beyond every
//     epoch any op could reach.
func TestConfigMutatedEpoch(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		sequential := rapid.Bool().Draw(t, "sequential")
		unknownPct := 0
		if !sequential {
			unknownPct = rapid.SampledFrom([]int{0, 10, 30}).Draw(t, "unknownPct")
		}
		h := generateConfigs(rapidSource{t}, drawConfigParams(t, sequential, unknownPct))
		requireConfigsLinearizable(t, h)

		var okOps []int
		for i, op := range h.ops {
			if !op.Unknown && op.Outcome == OutcomeOK && op.Out.Value != "" {
				okOps = append(okOps, i)
			}
		}
		if len(okOps) == 0 {
			t.Skip("no OK reply")
		}
		i := rapid.SampledFrom(okOps).Draw(t, "op")
		op := &h.ops[i]
		var maxEpoch uint64
		for _, o := range h.ops {
			if o.Volume == op.Volume {
				maxEpoch = max(maxEpoch, o.Out.Epoch, o.Resolved.Epoch)
			}
		}
		old := op.Out.Epoch
		if op.Kind == ConfigSet && !sequential {
			op.Out.Epoch = maxEpoch + 2 + uint64(rapid.IntRange(0, 3).Draw(t, "beyond"))
		} else {
			e := uint64(rapid.IntRange(0, int(maxEpoch)+2).Draw(t, "epoch"))
			if e == old {
				e = maxEpoch + 3
			}
			op.Out.Epoch = e
		}
		for _, res := range CheckConfigs(h, 30*time.Second) {
			if res.Volume != op.Volume {
				continue
			}
			if res.Ok || res.TimedOut || res.Err != nil {
				t.Fatalf("op %d's epoch %d -> %d: got %v (timedOut=%v)\n%v", i, old, op.Out.Epoch, res, res.TimedOut, configOpsString(h))
			}
		}
	})
}

// TestConfigTightenIsExact: on small random histories, generated and then
// perturbed anywhere (so often not linearizable), Porcupine's verdict is the
// same with and without the rewrites of tightenConfigOps.
func TestConfigTightenIsExact(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := configGenParams{
			ops:        rapid.IntRange(1, 12).Draw(t, "ops"),
			clients:    rapid.IntRange(1, 4).Draw(t, "clients"),
			volumes:    1,
			unknownPct: rapid.SampledFrom([]int{20, 50}).Draw(t, "unknownPct"),
			invalidPct: 5,
		}
		h := generateConfigs(rapidSource{t}, p)
		states := []ConfigState{{}, cs(1, "x"), cs(2, "x"), cs(3, "x")}
		for _, op := range h.ops {
			states = append(states, op.Out, op.Resolved)
		}
		for range rapid.IntRange(0, 4).Draw(t, "perturbations") {
			op := &h.ops[rapid.IntRange(0, len(h.ops)-1).Draw(t, "op")]
			switch rapid.IntRange(0, 5).Draw(t, "field") {
			case 0:
				op.Out.Epoch = uint64(rapid.IntRange(0, 4).Draw(t, "epoch"))
			case 1:
				op.Out = rapid.SampledFrom(states).Draw(t, "out")
			case 2:
				op.FromEpoch = uint64(rapid.IntRange(0, 4).Draw(t, "from"))
			case 3:
				op.Resolved = rapid.SampledFrom(states).Draw(t, "resolved")
			case 4:
				op.Unknown = !op.Unknown
				if !op.Unknown {
					op.Return = op.Call + int64(rapid.IntRange(0, 30).Draw(t, "dur"))
					op.Outcome = ConfigOutcome(rapid.IntRange(1, 4).Draw(t, "outcome"))
				}
			case 5:
				op.Call += int64(rapid.IntRange(-30, 30).Draw(t, "shift"))
				if op.Return < op.Call && !op.Unknown {
					op.Return = op.Call
				}
			}
		}
		if h.Validate() != nil {
			t.Skip("perturbed into a malformed history")
		}
		idx := make([]int, len(h.ops))
		for i := range idx {
			idx[i] = i
		}
		m := configModel()
		before := porcupine.CheckOperationsTimeout(m, buildConfigOps(h.ops, rawConfigOps(h.ops, idx)), 10*time.Second)
		after := porcupine.CheckOperationsTimeout(m, buildConfigOps(h.ops, tightenConfigOps(h.ops, idx)), 10*time.Second)
		if before == porcupine.Unknown || after == porcupine.Unknown {
			t.Skip("timed out")
		}
		if before != after {
			t.Fatalf("verdict changed by the rewrites: %v -> %v\n%v", before, after, configOpsString(h))
		}
	})
}

// TestConfigTightenDropsAndBounds: the rewrites leave no op pending forever in
// a typical generated history, and drop what they should.
func TestConfigTightenDropsAndBounds(t *testing.T) {
	ops := []ConfigOp{
		ccreate(1, 0, 10, cA),                                     // 0 kept
		cunknown(cB, ccas(1, 1, 20, 0, ConfigState{})),            // 1 kept, bounded by 5
		cunknown(cB, ccas(2, 1, 25, 0, ConfigState{})),            // 2 same config as 1, called later: dropped
		cunknown(ConfigState{}, cset(3, 20, 0, ConfigState{})),    // 3 unresolved: dropped
		cunknown(cD, cread(3, 30, 0, ConfigState{})),              // 4 unknown read: dropped
		cread(4, 40, 50, cC),                                      // 5 kept
		cunknown(cC, cset(3, 30, 0, ConfigState{})),               // 6 kept, bounded by 5
		outcome(OutcomeInvalid, ccas(5, 9, 30, 35, cA)),           // 7 invalid: dropped
		cunknown(cs(4, "late"), ccas(5, 3, 60, 0, ConfigState{})), // 8 nothing needs epoch 4: dropped
		cunknown(cs(2, "x"), ccreate(5, 60, 0, ConfigState{})),    // 9 create to epoch 2: dropped
	}
	idx := make([]int, len(ops))
	for i := range idx {
		idx[i] = i
	}
	got := tightenConfigOps(ops, idx)
	want := []keptConfigOp{{0, 10}, {1, 50}, {5, 50}, {6, 50}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// A known producer of epoch 2 rules the unknown ones out.
	ops = append(ops, ccas(6, 1, 20, 30, cB))
	got = tightenConfigOps(ops, append(idx, len(ops)-1))
	want = []keptConfigOp{{0, 10}, {5, 50}, {6, 50}, {10, 30}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("with a known producer: got %v, want %v", got, want)
	}

	h := generateConfigs(randSource{rand.New(rand.NewPCG(3, 4))}, configGenParams{
		ops: 2000, clients: 8, volumes: 1, unknownPct: 10, invalidPct: 2,
	})
	idx = idx[:0]
	for i := range h.ops {
		idx = append(idx, i)
	}
	pending := 0
	for _, k := range tightenConfigOps(h.ops, idx) {
		if k.ret == math.MaxInt64 {
			pending++
		}
	}
	if pending > 0 {
		t.Errorf("%d ops left pending forever", pending)
	}
}

// TestCheckConfigsDeterministic: the same history always gives the same results.
func TestCheckConfigsDeterministic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := generateConfigs(rapidSource{t}, drawConfigParams(t, false, 10))
		if rapid.Bool().Draw(t, "mutate") {
			h.ops[rapid.IntRange(0, len(h.ops)-1).Draw(t, "op")].Out.Epoch++
		}
		a, b := CheckConfigs(h, 0), CheckConfigs(h, 0)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("results differ: %v vs %v", a, b)
		}
	})
}

// BenchmarkCheckConfigs checks a 10,000-op, 8-client concurrent history of
// two volumes with unknown outcomes and Invalid refusals.
func BenchmarkCheckConfigs(b *testing.B) {
	h := generateConfigs(randSource{rand.New(rand.NewPCG(1, 2))}, configGenParams{
		ops: 10000, clients: 8, volumes: 2, unknownPct: 3, invalidPct: 2,
	})
	for b.Loop() {
		res := CheckConfigs(h, time.Minute)
		if len(res) != 2 || !res[0].Linearizable() || !res[1].Linearizable() {
			b.Fatalf("got %v", res)
		}
	}
}
