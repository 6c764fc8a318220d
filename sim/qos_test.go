package sim

import (
	"testing"
)

// TestQoSScenarios runs the burst and noisy-neighbour scenarios once each: their checks
// (Q1 and the burst length; Q2) run inside the simulator, and the figures they report
// must agree with the vectors.
func TestQoSScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("2,100 simulated seconds")
	}
	t.Run("burst", func(t *testing.T) {
		t.Parallel()
		r := Run(Options{Seed: 1, Scenario: ScenarioBurst})
		if r.Result != "ok" {
			t.Fatalf("%s: %v\nreproduce with: %s", r.Result, r.Violations, r.Replay)
		}
		v := r.Volumes[0]
		if v.BurstSeconds < 1960 || v.BurstSeconds > 2040 || v.ProvisionedIOPS != 10 || v.BurstIOPS != 100 {
			t.Fatalf("burst volume %+v", v)
		}
		if v.Busy != 0 || v.Throttled == 0 || v.WriteP99us <= 0 {
			t.Fatalf("a saturating volume within its queue: %+v", v)
		}
	})
	t.Run("noisy-neighbour", func(t *testing.T) {
		t.Parallel()
		r := Run(Options{Seed: 1, Scenario: ScenarioNoisyNeighbour})
		if r.Result != "ok" {
			t.Fatalf("%s: %v\nreproduce with: %s", r.Result, r.Violations, r.Replay)
		}
		noisy, quiet := r.Volumes[0], r.Volumes[1]
		if quiet.AdmittedIOPS < 0.9*quietIOPS || quiet.AdmittedIOPS > 1.05*quietIOPS {
			t.Fatalf("quiet volume %+v", quiet)
		}
		// The disk is saturated: the noisy one keeps its own baseline and gets no burst.
		if noisy.AdmittedIOPS < 0.9*noisyIOPS || noisy.AdmittedIOPS > 1.5*noisyIOPS {
			t.Fatalf("noisy volume %+v", noisy)
		}
	})
}
