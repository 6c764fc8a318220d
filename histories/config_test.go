package histories

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cs returns the configuration of epoch e tagged tag, rendered with its epoch.
func cs(e uint64, tag string) ConfigState {
	return ConfigState{Epoch: e, Value: fmt.Sprintf("e%d:%s", e, tag)}
}

// cop builds a known op on volume 1.
func cop(kind ConfigKind, client uint64, call, ret int64, outcome ConfigOutcome, out ConfigState) ConfigOp {
	return ConfigOp{Client: client, Volume: 1, Kind: kind, Call: call, Return: ret, Outcome: outcome, Out: out}
}

func cread(client uint64, call, ret int64, out ConfigState) ConfigOp {
	return cop(ConfigRead, client, call, ret, OutcomeOK, out)
}

func ccreate(client uint64, call, ret int64, out ConfigState) ConfigOp {
	return cop(ConfigCreate, client, call, ret, OutcomeOK, out)
}

func ccas(client, from uint64, call, ret int64, out ConfigState) ConfigOp {
	op := cop(ConfigCAS, client, call, ret, OutcomeOK, out)
	op.FromEpoch = from
	return op
}

func cset(client uint64, call, ret int64, out ConfigState) ConfigOp {
	return cop(ConfigSet, client, call, ret, OutcomeOK, out)
}

func cgrant(client uint64, call, ret int64, out ConfigState) ConfigOp {
	return cop(ConfigGrant, client, call, ret, OutcomeOK, out)
}

// notFound returns a NotFound op of kind.
func notFound(kind ConfigKind, client uint64, call, ret int64) ConfigOp {
	return cop(kind, client, call, ret, OutcomeNotFound, ConfigState{})
}

// outcome replaces op's outcome.
func outcome(o ConfigOutcome, op ConfigOp) ConfigOp {
	op.Outcome = o
	return op
}

// cunknown makes op's outcome unknown, resolved to res; its reply fields
// become garbage that must be ignored.
func cunknown(res ConfigState, op ConfigOp) ConfigOp {
	op.Unknown, op.Resolved = true, res
	op.Return = op.Call - 1
	op.Outcome, op.Out = OutcomeOK, cs(99, "garbage")
	return op
}

func configHistory(ops ...ConfigOp) *ConfigHistory {
	h := &ConfigHistory{}
	for _, op := range ops {
		h.Add(op)
	}
	return h
}

var (
	cA  = cs(1, "a")
	cB  = cs(2, "b")
	cB2 = cs(2, "b2")
	cC  = cs(3, "c")
	cD  = cs(4, "d")
)

func TestCheckConfigsHandWritten(t *testing.T) {
	tests := []struct {
		name string
		ops  []ConfigOp
		ok   bool
	}{
		// Reads, creation, not found.
		{"empty volume reads not found", []ConfigOp{notFound(ConfigRead, 1, 0, 10)}, true},
		{"read after create", []ConfigOp{ccreate(1, 0, 10, cA), cread(2, 20, 30, cA)}, true},
		{"not found for every kind before create", []ConfigOp{
			notFound(ConfigRead, 1, 0, 10), notFound(ConfigCAS, 1, 0, 10), notFound(ConfigSet, 2, 0, 10),
			notFound(ConfigGrant, 3, 0, 10), notFound(ConfigCreate, 3, 12, 14), ccreate(1, 20, 30, cA),
		}, true},
		{"not found after create", []ConfigOp{ccreate(1, 0, 10, cA), notFound(ConfigRead, 2, 20, 30)}, false},
		{"read a config before create", []ConfigOp{cread(1, 0, 10, cA), ccreate(2, 20, 30, cA)}, false},
		{"read a config never created", []ConfigOp{cread(1, 0, 10, cA)}, false},
		{"read no volume as ok", []ConfigOp{cread(1, 0, 10, ConfigState{}), ccreate(2, 20, 30, cA)}, true},
		{"create twice", []ConfigOp{ccreate(1, 0, 10, cA), ccreate(2, 20, 30, cs(1, "a2"))}, false},
		{"create not to epoch 1", []ConfigOp{ccreate(1, 0, 10, cB)}, false},
		{"create conflict on existing volume", []ConfigOp{
			ccreate(1, 0, 10, cA), outcome(OutcomeConflict, ccreate(2, 20, 30, cA)),
		}, true},
		{"create conflict before create", []ConfigOp{outcome(OutcomeConflict, ccreate(2, 0, 10, cA))}, false},
		{"create conflict with no volume", []ConfigOp{outcome(OutcomeConflict, ccreate(2, 0, 10, ConfigState{}))}, false},

		// CAS.
		{"cas then read", []ConfigOp{ccreate(1, 0, 10, cA), ccas(1, 1, 20, 30, cB), cread(2, 40, 50, cB)}, true},
		{"stale read after a completed cas", []ConfigOp{
			ccreate(1, 0, 10, cA), ccas(1, 1, 20, 30, cB), cread(2, 40, 50, cA),
		}, false},
		{"two ok cas from the same epoch", []ConfigOp{
			ccreate(1, 0, 10, cA), ccas(1, 1, 20, 30, cB), ccas(2, 1, 40, 50, cB2),
		}, false},
		{"two concurrent ok cas from the same epoch", []ConfigOp{
			ccreate(1, 0, 10, cA), ccas(1, 1, 20, 50, cB), ccas(2, 1, 20, 50, cB2),
		}, false},
		{"ok cas from a stale epoch", []ConfigOp{
			ccreate(1, 0, 10, cA), ccas(1, 1, 20, 30, cB), ccas(1, 2, 40, 50, cC), ccas(2, 1, 60, 70, cs(2, "late")),
		}, false},
		{"ok cas skipping an epoch", []ConfigOp{ccreate(1, 0, 10, cA), ccas(1, 1, 20, 30, cC)}, false},
		{"ok cas on a missing volume", []ConfigOp{ccas(1, 0, 0, 10, cA)}, false},
		{"cas conflict returns the current config", []ConfigOp{
			ccreate(1, 0, 10, cA), ccas(1, 1, 20, 30, cB), outcome(OutcomeConflict, ccas(2, 1, 40, 50, cB)),
		}, true},
		{"cas conflict at the expected epoch (member not in sync)", []ConfigOp{
			ccreate(1, 0, 10, cA), outcome(OutcomeConflict, ccas(2, 1, 20, 30, cA)),
		}, true},
		{"cas conflict returns a config never current", []ConfigOp{
			ccreate(1, 0, 10, cA), outcome(OutcomeConflict, ccas(2, 5, 20, 30, cs(1, "other"))),
		}, false},
		{"cas conflict returns a config no longer current", []ConfigOp{
			ccreate(1, 0, 10, cA), ccas(1, 1, 20, 30, cB), outcome(OutcomeConflict, ccas(2, 1, 40, 50, cA)),
		}, false},

		// Set.
		{"set to current epoch + 1", []ConfigOp{
			ccreate(1, 0, 10, cA), ccas(1, 1, 20, 30, cB), cset(2, 40, 50, cC), cread(1, 60, 70, cC),
		}, true},
		{"set skipping an epoch", []ConfigOp{ccreate(1, 0, 10, cA), cset(2, 20, 30, cC)}, false},
		{"set on a missing volume", []ConfigOp{cset(1, 0, 10, cA)}, false},
		{"set conflict returns the current config", []ConfigOp{
			ccreate(1, 0, 10, cA), outcome(OutcomeConflict, cset(2, 20, 30, cA)),
		}, true},
		{"set conflict returns an old config", []ConfigOp{
			ccreate(1, 0, 10, cA), cset(1, 20, 30, cB), outcome(OutcomeConflict, cset(2, 40, 50, cA)),
		}, false},

		// Grants.
		{"grant returns the current config", []ConfigOp{
			ccreate(1, 0, 10, cA), cgrant(2, 20, 30, cA), outcome(OutcomeConflict, cgrant(3, 20, 30, cA)),
		}, true},
		{"grant returns a stale config", []ConfigOp{
			ccreate(1, 0, 10, cA), cset(1, 20, 30, cB), cgrant(2, 40, 50, cA),
		}, false},
		{"grant conflict returns a stale config", []ConfigOp{
			ccreate(1, 0, 10, cA), cset(1, 20, 30, cB), outcome(OutcomeConflict, cgrant(2, 40, 50, cA)),
		}, false},

		// Invalid.
		{"invalid constrains nothing", []ConfigOp{
			outcome(OutcomeInvalid, cread(3, 0, 5, cD)), ccreate(1, 0, 10, cA),
			outcome(OutcomeInvalid, ccas(2, 7, 20, 30, cC)), outcome(OutcomeInvalid, cset(2, 20, 30, ConfigState{})),
			cread(1, 40, 50, cA),
		}, true},

		// Concurrency.
		{"concurrent ops reorderable: later call linearized first", []ConfigOp{
			ccreate(1, 0, 10, cA), ccas(1, 2, 20, 60, cC), ccas(2, 1, 25, 45, cB), cread(3, 70, 80, cC),
		}, true},
		{"concurrent read sees old", []ConfigOp{
			ccreate(1, 0, 10, cA), ccas(1, 1, 20, 40, cB), cread(2, 25, 35, cA),
		}, true},
		{"concurrent read sees new", []ConfigOp{
			ccreate(1, 0, 10, cA), ccas(1, 1, 20, 40, cB), cread(2, 15, 25, cB),
		}, true},
		{"touching ops are concurrent", []ConfigOp{
			ccreate(1, 0, 10, cA), ccas(1, 1, 20, 30, cB), cread(2, 30, 40, cA),
		}, true},
		{"new then old across readers", []ConfigOp{
			ccreate(1, 0, 10, cA), ccas(1, 1, 20, 60, cB), cread(2, 25, 30, cB), cread(3, 40, 50, cA),
		}, false},
		{"concurrent create and reads", []ConfigOp{
			ccreate(1, 0, 30, cA), notFound(ConfigRead, 2, 5, 10), cread(3, 12, 14, cA), cgrant(2, 20, 25, cA),
		}, true},

		// Unknown outcomes.
		{"unknown cas later observed by a read", []ConfigOp{
			ccreate(1, 0, 10, cA), cunknown(cB, ccas(1, 1, 20, 0, ConfigState{})), cread(2, 30, 40, cB), cread(2, 50, 60, cB),
		}, true},
		{"unknown cas observed but not resolved", []ConfigOp{
			ccreate(1, 0, 10, cA), cunknown(ConfigState{}, ccas(1, 1, 20, 0, ConfigState{})), cread(2, 30, 40, cB),
		}, false},
		{"unknown cas resolved to another config than observed", []ConfigOp{
			ccreate(1, 0, 10, cA), cunknown(cB2, ccas(1, 1, 20, 0, ConfigState{})), cread(2, 30, 40, cB),
		}, false},
		{"unknown cas never took effect", []ConfigOp{
			ccreate(1, 0, 10, cA), cunknown(cB, ccas(1, 1, 20, 0, ConfigState{})), cread(2, 30, 40, cA), cread(2, 1000, 1010, cA),
		}, true},
		{"unknown cas took effect late", []ConfigOp{
			ccreate(1, 0, 10, cA), cunknown(cB, ccas(1, 1, 20, 0, ConfigState{})), cread(2, 30, 40, cA), cread(2, 1000, 1010, cB),
		}, true},
		{"unknown cas cannot be undone", []ConfigOp{
			ccreate(1, 0, 10, cA), cunknown(cB, ccas(1, 1, 20, 0, ConfigState{})), cread(2, 30, 40, cB), cread(2, 50, 60, cA),
		}, false},
		{"unknown cas not seen before its call", []ConfigOp{
			ccreate(1, 0, 10, cA), cread(2, 12, 15, cB), cunknown(cB, ccas(1, 1, 20, 0, ConfigState{})),
		}, false},
		{"unknown cas from a wrong epoch cannot apply", []ConfigOp{
			ccreate(1, 0, 10, cA), cunknown(cB, ccas(1, 3, 20, 0, ConfigState{})), cread(2, 30, 40, cB),
		}, false},
		{"unknown cas and a known cas from the same epoch", []ConfigOp{
			ccreate(1, 0, 10, cA), cunknown(cB, ccas(1, 1, 20, 0, ConfigState{})), ccas(2, 1, 20, 30, cB), cread(2, 40, 50, cB),
		}, true},
		{"unknown cas observed while a known one claims its epoch", []ConfigOp{
			ccreate(1, 0, 10, cA), cunknown(cB2, ccas(1, 1, 20, 0, ConfigState{})), ccas(2, 1, 20, 30, cB), cread(2, 25, 50, cB2),
		}, false},
		{"two unknown cas to the same config", []ConfigOp{
			ccreate(1, 0, 10, cA), cunknown(cB, ccas(1, 1, 20, 0, ConfigState{})), cunknown(cB, ccas(2, 1, 22, 0, ConfigState{})),
			cread(3, 30, 40, cB),
		}, true},
		{"two unknown cas to different configs of the same epoch", []ConfigOp{
			ccreate(1, 0, 10, cA), cunknown(cB, ccas(1, 1, 20, 0, ConfigState{})), cunknown(cB2, ccas(2, 1, 22, 0, ConfigState{})),
			cread(3, 30, 40, cB2), cread(3, 50, 60, cB2),
		}, true},
		{"unknown cas to an epoch observed before its call", []ConfigOp{
			ccreate(1, 0, 10, cA), cunknown(cB, ccas(1, 1, 20, 0, ConfigState{})), cread(2, 30, 40, cB),
			cunknown(cB2, ccas(3, 1, 50, 0, ConfigState{})), cread(2, 60, 70, cB),
		}, true},
		{"chain of unknown changes observed at the end", []ConfigOp{
			ccreate(1, 0, 10, cA), cunknown(cB, ccas(1, 1, 20, 0, ConfigState{})), cunknown(cC, cset(2, 25, 0, ConfigState{})),
			cunknown(cD, ccas(3, 3, 30, 0, ConfigState{})), cread(3, 100, 110, cD),
		}, true},
		{"chain of unknown changes with a missing link", []ConfigOp{
			ccreate(1, 0, 10, cA), cunknown(cB, ccas(1, 1, 20, 0, ConfigState{})),
			cunknown(cD, ccas(3, 3, 30, 0, ConfigState{})), cread(3, 100, 110, cD),
		}, false},
		{"known cas after an unknown one", []ConfigOp{
			ccreate(1, 0, 10, cA), cunknown(cB, ccas(1, 1, 20, 0, ConfigState{})), ccas(2, 2, 30, 40, cC), cread(3, 50, 60, cC),
		}, true},
		{"unknown set observed", []ConfigOp{
			ccreate(1, 0, 10, cA), cunknown(cB, cset(1, 20, 0, ConfigState{})), cgrant(2, 30, 40, cB),
		}, true},
		{"unknown set to an epoch it cannot reach", []ConfigOp{
			ccreate(1, 0, 10, cA), cunknown(cC, cset(1, 20, 0, ConfigState{})), cgrant(2, 30, 40, cC),
		}, false},
		{"unknown create observed", []ConfigOp{
			cunknown(cA, ccreate(1, 0, 0, ConfigState{})), notFound(ConfigRead, 2, 5, 10), cread(2, 20, 30, cA),
		}, true},
		{"unknown create to epoch 2", []ConfigOp{
			cunknown(cB, ccreate(1, 0, 0, ConfigState{})), cread(2, 20, 30, cB),
		}, false},
		{"unknown reads and grants constrain nothing", []ConfigOp{
			ccreate(1, 0, 10, cA), cunknown(cD, cread(2, 20, 0, cC)), cunknown(cC, cgrant(2, 20, 0, cC)), cread(1, 40, 50, cA),
		}, true},
		{"unknown read cannot produce a config", []ConfigOp{
			ccreate(1, 0, 10, cA), cunknown(cB, cread(2, 20, 0, cC)), cread(1, 40, 50, cB),
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := configHistory(tt.ops...)
			if err := h.Validate(); err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			res := CheckConfigs(h, 10*time.Second)
			if len(res) != 1 {
				t.Fatalf("got %d results, want 1", len(res))
			}
			got := res[0]
			if got.Volume != 1 || got.Ok != tt.ok || got.TimedOut || got.Err != nil || got.Linearizable() != tt.ok {
				t.Fatalf("got %v (ok=%v timedOut=%v err=%v), want ok=%v", got, got.Ok, got.TimedOut, got.Err, tt.ok)
			}
			if !tt.ok && len(got.Info.PartialLinearizations()) == 0 {
				t.Error("violation without linearization info")
			}
			// The rewrites of tightenConfigOps must not change the verdict.
			idx := make([]int, len(tt.ops))
			for i := range idx {
				idx[i] = i
			}
			if raw := checkRaw(h.ops, idx, 10*time.Second); raw != got.Ok {
				t.Errorf("without rewrites: ok=%v", raw)
			}
		})
	}
}

func TestConfigModelStep(t *testing.T) {
	none := ConfigState{}
	steps := []struct {
		name  string
		state ConfigState
		in    configCall
		out   configReturn
		want  []ConfigState // nil: refused
	}{
		{"read ok", cA, configCall{kind: ConfigRead}, configReturn{outcome: OutcomeOK, out: cA}, []ConfigState{cA}},
		{"read wrong", cA, configCall{kind: ConfigRead}, configReturn{outcome: OutcomeOK, out: cB}, nil},
		{"read not found", none, configCall{kind: ConfigRead}, configReturn{outcome: OutcomeNotFound}, []ConfigState{none}},
		{"read not found of existing", cA, configCall{kind: ConfigRead}, configReturn{outcome: OutcomeNotFound}, nil},
		{"create", none, configCall{kind: ConfigCreate}, configReturn{outcome: OutcomeOK, out: cA}, []ConfigState{cA}},
		{"create existing", cA, configCall{kind: ConfigCreate}, configReturn{outcome: OutcomeOK, out: cA}, nil},
		{"create conflict", cA, configCall{kind: ConfigCreate}, configReturn{outcome: OutcomeConflict, out: cA}, []ConfigState{cA}},
		{"cas", cA, configCall{kind: ConfigCAS, from: 1}, configReturn{outcome: OutcomeOK, out: cB}, []ConfigState{cB}},
		{"cas stale", cB, configCall{kind: ConfigCAS, from: 1}, configReturn{outcome: OutcomeOK, out: cB2}, nil},
		{"cas skip", cA, configCall{kind: ConfigCAS, from: 1}, configReturn{outcome: OutcomeOK, out: cC}, nil},
		{"cas conflict same epoch", cA, configCall{kind: ConfigCAS, from: 1}, configReturn{outcome: OutcomeConflict, out: cA}, []ConfigState{cA}},
		{"cas conflict not current", cA, configCall{kind: ConfigCAS, from: 2}, configReturn{outcome: OutcomeConflict, out: cB}, nil},
		{"set", cB, configCall{kind: ConfigSet}, configReturn{outcome: OutcomeOK, out: cC}, []ConfigState{cC}},
		{"set on missing", none, configCall{kind: ConfigSet}, configReturn{outcome: OutcomeOK, out: cA}, nil},
		{"set at the largest epoch", ConfigState{Epoch: math.MaxUint64, Value: "x"}, configCall{kind: ConfigSet},
			configReturn{outcome: OutcomeOK, out: ConfigState{Epoch: 0, Value: "y"}}, nil},
		{"grant", cA, configCall{kind: ConfigGrant}, configReturn{outcome: OutcomeOK, out: cA}, []ConfigState{cA}},
		{"grant conflict wrong", cA, configCall{kind: ConfigGrant}, configReturn{outcome: OutcomeConflict, out: cB}, nil},
		{"invalid", cC, configCall{kind: ConfigCAS, from: 9}, configReturn{outcome: OutcomeInvalid, out: cA}, []ConfigState{cC}},
		{"unknown cas applies", cA, configCall{kind: ConfigCAS, from: 1}, configReturn{unknown: true, resolved: cB}, []ConfigState{cA, cB}},
		{"unknown cas cannot apply", cB, configCall{kind: ConfigCAS, from: 1}, configReturn{unknown: true, resolved: cB2}, []ConfigState{cB}},
		{"unknown cas unresolved", cA, configCall{kind: ConfigCAS, from: 1}, configReturn{unknown: true}, []ConfigState{cA}},
		{"unknown cas on missing volume", none, configCall{kind: ConfigCAS, from: 0}, configReturn{unknown: true, resolved: cA}, []ConfigState{none}},
		{"unknown set", cB, configCall{kind: ConfigSet}, configReturn{unknown: true, resolved: cC}, []ConfigState{cB, cC}},
		{"unknown set wrong epoch", cB, configCall{kind: ConfigSet}, configReturn{unknown: true, resolved: cD}, []ConfigState{cB}},
		{"unknown create", none, configCall{kind: ConfigCreate}, configReturn{unknown: true, resolved: cA}, []ConfigState{none, cA}},
		{"unknown create existing", cA, configCall{kind: ConfigCreate}, configReturn{unknown: true, resolved: cs(1, "z")}, []ConfigState{cA}},
		{"unknown read", cA, configCall{kind: ConfigRead}, configReturn{unknown: true, resolved: cB, out: cC}, []ConfigState{cA}},
		{"unknown grant", cA, configCall{kind: ConfigGrant}, configReturn{unknown: true, resolved: cB}, []ConfigState{cA}},
	}
	for _, tt := range steps {
		got := stepConfig(tt.state, tt.in, tt.out)
		var gotStates []ConfigState
		for _, s := range got {
			gotStates = append(gotStates, s.(ConfigState))
		}
		if fmt.Sprint(gotStates) != fmt.Sprint(tt.want) {
			t.Errorf("%s: step = %v, want %v", tt.name, gotStates, tt.want)
		}
	}
	m := configModel()
	for _, tt := range []struct {
		in   configCall
		out  configReturn
		want string
	}{
		{configCall{kind: ConfigCAS, from: 1}, configReturn{outcome: OutcomeOK, out: cB}, `cas(from 1) -> ok e2 "e2:b"`},
		{configCall{kind: ConfigRead}, configReturn{outcome: OutcomeOK, out: cB}, `read() -> e2 "e2:b"`},
		{configCall{kind: ConfigSet}, configReturn{outcome: OutcomeConflict, out: cB}, `set() -> conflict e2 "e2:b"`},
		{configCall{kind: ConfigGrant}, configReturn{outcome: OutcomeNotFound}, `grant() -> not found`},
		{configCall{kind: ConfigCAS, from: 1}, configReturn{unknown: true, resolved: cB}, `cas(from 1) -> ? (if applied: e2 "e2:b")`},
		{configCall{kind: ConfigCreate}, configReturn{unknown: true}, `create() -> ?`},
	} {
		if d := m.DescribeOperation(tt.in, tt.out); d != tt.want {
			t.Errorf("DescribeOperation = %q, want %q", d, tt.want)
		}
	}
	if d := m.DescribeState([]any{ConfigState{}, cA}); d != `{no volume, e1 "e1:a"}` {
		t.Errorf("DescribeState = %q", d)
	}
}

func TestCheckConfigsMalformed(t *testing.T) {
	tests := []struct {
		name string
		op   ConfigOp
	}{
		{"kind 0", cop(0, 1, 0, 10, OutcomeOK, cA)},
		{"kind too large", cop(ConfigGrant+1, 1, 0, 10, OutcomeOK, cA)},
		{"outcome 0", cop(ConfigRead, 1, 0, 10, 0, cA)},
		{"outcome too large", cop(ConfigRead, 1, 0, 10, OutcomeInvalid+1, cA)},
		{"unknown outcome too large", outcome(OutcomeInvalid+1, cunknown(cB, ccas(1, 1, 0, 10, cB)))},
		{"return before call", cread(1, 10, 9, cA)},
		{"read conflict", outcome(OutcomeConflict, cread(1, 0, 10, cA))},
		{"applied create without config", ccreate(1, 0, 10, ConfigState{Epoch: 1})},
		{"applied set without config", cset(1, 0, 10, ConfigState{Epoch: 2})},
		{"cas from the largest epoch", outcome(OutcomeConflict, ccas(1, math.MaxUint64, 0, 10, cA))},
		{"unknown resolved without config", cunknown(ConfigState{Epoch: 2}, ccas(1, 1, 0, 0, ConfigState{}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			other := ccreate(1, 0, 10, cA)
			other.Volume = 2
			h := configHistory(ccreate(1, 0, 10, cA), tt.op, other)
			if err := h.Validate(); !errors.Is(err, ErrMalformed) {
				t.Errorf("Validate() = %v, want ErrMalformed", err)
			}
			res := CheckConfigs(h, time.Second)
			if len(res) != 2 || res[0].Ok || !errors.Is(res[0].Err, ErrMalformed) || res[0].Linearizable() {
				t.Fatalf("got %+v, want a malformed result for volume 1", res)
			}
			if !strings.Contains(res[0].String(), "malformed") {
				t.Errorf("String() = %q", res[0].String())
			}
			if !res[1].Linearizable() {
				t.Errorf("volume 2 not checked: %v", res[1])
			}
		})
	}
	// What the checker ignores for an unknown op is not validated.
	ok := configHistory(ccreate(1, 0, 10, cA), cunknown(ConfigState{}, outcome(0, cread(1, 20, 0, ConfigState{}))),
		cunknown(ConfigState{Value: "ignored"}, ccas(1, 1, 30, 0, cB)))
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
	if res := CheckConfigs(ok, time.Second); len(res) != 1 || !res[0].Linearizable() {
		t.Errorf("got %v", res)
	}
}

func TestCheckConfigsVolumes(t *testing.T) {
	on := func(v uint32, op ConfigOp) ConfigOp {
		op.Volume = v
		return op
	}
	h := configHistory(
		on(9, ccreate(1, 0, 10, cA)),
		on(2, notFound(ConfigRead, 2, 20, 30)), // volume 2 is not volume 9
		on(9, cread(2, 20, 30, cA)),
		on(5, cread(1, 0, 10, cA)),                          // never created
		on(2, ccreate(1, 40, 50, cB2)),                      // wrong epoch
		on(7, outcome(OutcomeInvalid, cread(1, 0, 10, cA))), // nothing left to search
	)
	res := CheckConfigs(h, time.Second)
	want := []struct {
		volume uint32
		ok     bool
	}{{2, false}, {5, false}, {7, true}, {9, true}}
	if len(res) != len(want) {
		t.Fatalf("got %d results, want %d", len(res), len(want))
	}
	for i, w := range want {
		if res[i].Volume != w.volume || res[i].Ok != w.ok || res[i].TimedOut || res[i].Err != nil {
			t.Errorf("result %d = %v, want volume %d ok %v", i, res[i], w.volume, w.ok)
		}
	}
	if got := CheckConfigs(&ConfigHistory{}, time.Second); len(got) != 0 {
		t.Errorf("empty history: got %v", got)
	}
	if got := CheckConfigs(nil, time.Second); len(got) != 0 {
		t.Errorf("nil history: got %v", got)
	}
}

func TestConfigHistory(t *testing.T) {
	var h ConfigHistory
	h.Add(ccreate(1, 0, 10, cA))
	ops := h.Ops()
	ops[0].Volume = 42
	if h.Len() != 1 || h.Ops()[0].Volume != 1 {
		t.Error("Ops did not return a copy")
	}
	h.Add(cread(2, 20, 30, cA))
	if h.Len() != 2 || h.Ops()[1].Kind != ConfigRead {
		t.Errorf("order not kept: %v", h.Ops())
	}
	if s := h.Ops()[1].String(); s != `client 2 vol 1 read -> ok e1 "e1:a" at [20,30]` {
		t.Errorf("String() = %q", s)
	}
	if s := cunknown(cB, ccas(3, 1, 5, 0, ConfigState{})).String(); s != `client 3 vol 1 cas(from 1) -> ? (would give e2 "e2:b") at [5,?]` {
		t.Errorf("String() = %q", s)
	}
}

// hardConfigHistory returns a non-linearizable volume that Porcupine can only
// refute by exhausting ~3^levels partial linearizations: a create, then
// levels epochs with three concurrent OK sets to each (only one of which can
// apply), then two concurrent reads that disagree.
func hardConfigHistory(volume uint32, levels int) []ConfigOp {
	create := ccreate(1, 0, 10, cA)
	ops := []ConfigOp{create}
	for l := range levels {
		for k := range 3 {
			ops = append(ops, cset(uint64(10+3*l+k), 20, 1000, cs(uint64(l+2), fmt.Sprint(k))))
		}
	}
	ops = append(ops, cread(100, 2000, 2010, cA), cread(101, 2000, 2010, cB))
	for i := range ops {
		ops[i].Volume = volume
	}
	return ops
}

func TestCheckConfigsTimeout(t *testing.T) {
	// The hard volume is searched last, so that its overrunning the budget
	// (Porcupine and the garbage collector stop with some delay) cannot eat
	// the share of the easy ones.
	h := configHistory(hardConfigHistory(9, 30)...)
	easy := ccreate(1, 0, 10, cA)
	easy.Volume = 4
	h.Add(easy)
	start := time.Now()
	res := CheckConfigs(h, 100*time.Millisecond)
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("CheckConfigs took %v with a 100ms timeout", el)
	}
	if len(res) != 2 {
		t.Fatalf("got %d results", len(res))
	}
	if !res[0].Linearizable() {
		t.Errorf("easy volume: got %v", res[0])
	}
	if got := res[1]; got.Volume != 9 || !got.Ok || !got.TimedOut || got.Linearizable() || !strings.Contains(got.String(), "timed out") {
		t.Errorf("hard volume: got %+v, want Ok and TimedOut", got)
	}
	// A proven violation elsewhere is still found after a timeout.
	bad := cread(1, 0, 10, cA)
	bad.Volume = 1
	h.Add(bad)
	res = CheckConfigs(h, 100*time.Millisecond)
	if len(res) != 3 || res[0].Ok || res[0].TimedOut || !res[1].Linearizable() || !res[2].TimedOut {
		t.Errorf("got %v, want volume 1 not Ok, volume 4 linearizable, volume 9 TimedOut", res)
	}
}

func TestCheckConfigsBudgetSpent(t *testing.T) {
	// Three volumes needing a search; the clock moves 40ms per reading, so a
	// 100ms budget is spent before the third volume.
	var ops []ConfigOp
	for v := uint32(1); v <= 3; v++ {
		c, r := ccreate(1, 0, 10, cA), cread(2, 5, 15, cA)
		c.Volume, r.Volume = v, v
		ops = append(ops, c, r)
	}
	h := configHistory(ops...)
	clk := &fakeClock{step: 40 * time.Millisecond}
	c := checker{timeout: 100 * time.Millisecond, now: clk.now}
	got := c.checkConfigs(h)
	if len(got) != 3 || !got[0].Linearizable() || !got[1].Linearizable() || !got[2].Ok || !got[2].TimedOut {
		t.Errorf("got %v, want volumes 1, 2 linearizable and 3 timed out", got)
	}
	// Without a timeout the clock is irrelevant.
	c.timeout = 0
	for _, r := range c.checkConfigs(h) {
		if !r.Linearizable() {
			t.Errorf("no timeout: got %v", r)
		}
	}
}

func TestWriteConfigHTML(t *testing.T) {
	h := configHistory(ccreate(1, 0, 10, cA), ccas(1, 1, 20, 30, cB), cread(2, 40, 50, cA),
		cunknown(cC, cset(3, 45, 0, ConfigState{})))
	res := CheckConfigs(h, time.Second)
	if len(res) != 1 || res[0].Ok {
		t.Fatalf("want a failing result, got %v", res)
	}
	path := filepath.Join(t.TempDir(), "out.html")
	if err := WriteConfigHTML(res[0], path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(data); !strings.Contains(s, "<html") || !strings.Contains(s, "cas(from 1) -\\u003e ok e2") {
		t.Errorf("visualisation looks wrong (%d bytes)", len(data))
	}

	okRes := CheckConfigs(configHistory(ccreate(1, 0, 10, cA)), time.Second)[0]
	if err := WriteConfigHTML(okRes, path); !errors.Is(err, ErrNoInfo) {
		t.Errorf("WriteConfigHTML(ok result) = %v, want ErrNoInfo", err)
	}
	if err := WriteConfigHTML(res[0], filepath.Join(t.TempDir(), "missing", "out.html")); err == nil {
		t.Error("WriteConfigHTML into a missing directory succeeded")
	}
}
