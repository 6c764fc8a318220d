package raft

import (
	"strings"
	"testing"
)

// TestMutationBrokenQuorumIsCaught breaks the quorum (n/2 instead of n/2+1)
// through the test-only knob and requires the same random schedules and
// checks to catch it.
func TestMutationBrokenQuorumIsCaught(t *testing.T) {
	caught := map[string]int{}
	const runs = 40
	for seed := uint64(1); seed <= runs; seed++ {
		o := propertyOpts(3+2*int(seed%2), seed)
		o.quorum = func(n int) int { return n / 2 }
		c := newCluster(o)
		runSchedule(c, &testRand{seed}, defaultWeights, 1500)
		if c.err == nil {
			continue
		}
		kind, _, _ := strings.Cut(c.err.Error(), ":")
		caught[kind]++
	}
	t.Logf("broken quorum: %d of %d schedules caught: %v", sumCounts(caught), runs, caught)
	if sumCounts(caught) < runs/2 {
		t.Fatalf("the property checks caught a broken quorum in only %d of %d schedules", sumCounts(caught), runs)
	}
	// With the correct quorum the same schedules pass: TestScheduleReachesInterestingStates.
}

func sumCounts(m map[string]int) int {
	s := 0
	for _, v := range m { // order-independent: a sum
		s += v
	}
	return s
}

// Mutation sanity, scripted: with the quorum knob at n/2, three isolated
// members each elect themselves in the same term.
func TestMutationTwoLeadersInATerm(t *testing.T) {
	o := defaultOpts(3, 7)
	o.fixedMembership = false // let election safety, not durability, fire first
	o.quorum = func(n int) int { return n / 2 }
	c := newCluster(o)
	c.group = []int{0, 1, 2} // everyone alone
	for tick := 0; tick < 4*o.election && c.err == nil; tick++ {
		c.tickAll()
		c.stabilize()
	}
	if c.err == nil || !strings.HasPrefix(c.err.Error(), "election safety") {
		t.Fatalf("broken quorum not caught as an election safety violation: err=%v, %s", c.err, c)
	}
	t.Log(c.err)

	// The same script with the real quorum elects nobody.
	o.quorum = nil
	c = newCluster(o)
	c.group = []int{0, 1, 2}
	for tick := 0; tick < 4*o.election && c.err == nil; tick++ {
		c.tickAll()
		c.stabilize()
	}
	if c.err != nil || c.leader() != nil {
		t.Fatalf("isolated members with a real quorum: err=%v leader=%v", c.err, c.leader())
	}
}
