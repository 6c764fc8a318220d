package raft

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// weights is a schedule's fault profile: the relative frequency of each action.
type weights struct {
	deliver, ready, take, tick, propose, read, drop, dup, partition, crash, restart, compact, confChange int
}

var defaultWeights = weights{
	deliver: 80, ready: 40, take: 6, tick: 30, propose: 14, read: 8,
	drop: 3, dup: 3, partition: 3, crash: 1, restart: 4, compact: 8,
}

var membershipWeights = func() weights { w := defaultWeights; w.confChange = 3; return w }()

// runSchedule performs steps random actions on c, chosen by rng with
// frequencies w: deliveries (in bursts, mostly in order, sometimes any
// message), drops, duplicates, ticks, Readys handled (or taken and left
// unpersisted for a while, or lost in a crash), partitions, crashes and
// restarts, proposals, read-index requests and compactions. Every action is
// followed by the checker. The same seed with fewer steps is a prefix of the
// same schedule, which is what rapid shrinks.
func runSchedule(c *cluster, rng *testRand, w weights, steps int) {
	table := []int{w.deliver, w.ready, w.take, w.tick, w.propose, w.read, w.drop, w.dup, w.partition, w.crash, w.restart, w.compact, w.confChange}
	total := 0
	for _, x := range table {
		total += x
	}
	if total == 0 {
		return
	}
	pick := func() *tnode { return c.nodes[rng.intn(len(c.nodes))] }
	leaderOr := func() *tnode {
		if l := c.leader(); l != nil && rng.intn(4) > 0 {
			return l
		}
		return pick()
	}
	msg := func() int {
		if rng.intn(8) == 0 {
			return rng.intn(len(c.net)) // any message: long reorderings
		}
		return rng.intn(min(len(c.net), 4)) // mostly in order
	}
	for s := 0; s < steps && c.err == nil; s++ {
		a, kind := rng.intn(total), 0
		for a >= table[kind] {
			a -= table[kind]
			kind++
		}
		switch kind {
		case 0: // deliver a burst
			if len(c.net) == 0 {
				c.readyAll()
			}
			for k := rng.intn(8); k >= 0 && len(c.net) > 0; k-- {
				c.deliver(msg())
			}
		case 1:
			if rng.intn(2) == 0 {
				c.processReady(pick())
			} else {
				c.readyAll()
			}
		case 2:
			c.take(pick()) // handed out, persisted later (or lost in a crash)
		case 3:
			if rng.intn(4) == 0 {
				c.tick(pick())
			} else {
				c.tickAll()
			}
		case 4:
			_, _, _ = c.propose(leaderOr())
		case 5:
			_, _ = c.readIndex(leaderOr())
		case 6:
			if len(c.net) > 0 {
				c.drop(msg())
			}
		case 7:
			if len(c.net) > 0 {
				c.duplicate(msg())
			}
		case 8:
			if rng.intn(2) == 0 {
				c.heal()
			} else {
				var side []uint64
				for _, n := range c.nodes {
					if rng.intn(2) == 1 {
						side = append(side, n.id)
					}
				}
				c.partition(side...)
			}
		case 9:
			var writing []*tnode
			for _, n := range c.nodes {
				if n.up && n.pending != nil {
					writing = append(writing, n)
				}
			}
			if len(writing) > 0 && rng.intn(2) == 0 {
				c.crashMidReady(writing[rng.intn(len(writing))], rng.intn(4))
			} else {
				c.crash(pick())
			}
		case 10:
			var down []*tnode
			for _, n := range c.nodes {
				if !n.up {
					down = append(down, n)
				}
			}
			if len(down) > 0 {
				c.restart(down[rng.intn(len(down))])
			}
		case 11:
			_ = c.compact(pick())
		default:
			c.randomConfChange(rng)
		}
	}
}

// randomConfChange has the leader (if any) remove a random voter or add a
// random non-voter, starting it if it is down (empty, or with its old state).
func (c *cluster) randomConfChange(rng *testRand) {
	l := c.leader()
	if l == nil {
		return
	}
	voters := l.r.voters
	var cc ConfChange
	if len(voters) > 1 && rng.intn(2) == 0 {
		cc = ConfChange{Type: RemoveVoter, ID: voters[rng.intn(len(voters))]}
	} else {
		var spare []uint64
		for _, n := range c.nodes {
			if !slices.Contains(voters, n.id) {
				spare = append(spare, n.id)
			}
		}
		if len(spare) == 0 {
			return
		}
		cc = ConfChange{Type: AddVoter, ID: spare[rng.intn(len(spare))]}
	}
	if _, err := l.r.ProposeConfChange(cc); err != nil {
		return // pending, or no longer leader
	}
	c.stats.confChanges++
	if cc.Type == AddVoter {
		c.restart(c.node(cc.ID))
	}
}

// checkLiveness heals everything and requires a leader within a bounded
// number of ticks and a proposal committed on every member after that.
func checkLiveness(c *cluster) {
	c.heal()
	for _, n := range c.nodes {
		c.restart(n)
		c.finish(n)
	}
	budget := 60 * c.opts.election
	for attempt := 0; attempt < 5 && c.err == nil; attempt++ {
		l := c.waitLeader(budget)
		if c.err != nil {
			return
		}
		if l == nil {
			c.fail("liveness: no leader %d ticks after the faults stopped", budget)
			return
		}
		data, _, err := c.propose(l)
		if err != nil {
			// A leader that is removing itself takes no proposals: the next one will.
			c.runTicks(c.opts.election)
			continue
		}
		for t := 0; t < 20*c.opts.election && c.err == nil; t++ {
			c.stabilize()
			if idx := c.committedIndex(data); idx != 0 && c.votersApplied(l, idx) {
				return
			}
			c.tickAll()
		}
	}
	if c.err == nil {
		c.fail("liveness: no proposal committed on every voter after the faults stopped")
	}
}

func (c *cluster) allApplied(idx uint64) bool {
	for _, n := range c.nodes {
		if n.up && n.app.applied < idx {
			return false
		}
	}
	return true
}

func propertyOpts(n int, seed uint64) clusterOpts {
	o := defaultOpts(n, seed)
	o.election, o.heartbeat = 5, 1 // elections are frequent within short schedules
	o.maxMsgEntries, o.maxInflight = 3, 2
	return o
}

// drawWeights draws a fault profile around the default one.
func drawWeights(t *rapid.T) weights {
	d := func(label string, lo, hi int) int { return rapid.IntRange(lo, hi).Draw(t, label) }
	return weights{
		deliver: d("deliver", 40, 120), ready: d("ready", 20, 60), take: d("take", 0, 10),
		tick: d("tick", 15, 45), propose: d("propose", 0, 30), read: d("read", 0, 15),
		drop: d("drop", 0, 8), dup: d("dup", 0, 8), partition: d("partition", 0, 8),
		crash: d("crash", 0, 4), restart: d("restart", 2, 8), compact: d("compact", 0, 15),
	}
}

// TestRaftSafetyProperties is the rapid property test: random schedules of
// every fault the harness knows, with the full set of safety checks after
// every action and a liveness check once the faults stop. rapid draws the
// cluster size, the seed of the schedule, its length and its fault profile;
// shrinking the length finds the shortest failing prefix.
func TestRaftSafetyProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.SampledFrom([]int{3, 5}).Draw(rt, "members")
		seed := rapid.Uint64().Draw(rt, "seed")
		w := drawWeights(rt)
		steps := rapid.IntRange(200, 4000).Draw(rt, "steps")
		o := propertyOpts(n, seed)
		o.maxMsgEntries = rapid.IntRange(1, 4).Draw(rt, "maxMsgEntries")
		o.maxInflight = rapid.IntRange(1, 4).Draw(rt, "maxInflight")
		c := newCluster(o)
		runSchedule(c, &testRand{seed ^ 0x5eed}, w, steps)
		if c.err == nil {
			checkLiveness(c)
		}
		if c.err != nil {
			rt.Fatalf("%v\ncluster: %s", c.err, c)
		}
	})
}

// TestRaftMembershipProperties is the property test with configuration
// changes: the leader adds and removes voters among 3 or 5 bootstrap members
// and 2 spares that start empty, alongside every other fault. Durability is
// not checked against a fixed majority here; every other check runs.
func TestRaftMembershipProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.SampledFrom([]int{3, 5}).Draw(rt, "members")
		seed := rapid.Uint64().Draw(rt, "seed")
		w := drawWeights(rt)
		w.confChange = rapid.IntRange(1, 8).Draw(rt, "confChange")
		steps := rapid.IntRange(200, 4000).Draw(rt, "steps")
		o := propertyOpts(n, seed)
		o.fixedMembership = false
		o.joinWithoutMembers = []uint64{uint64(n + 1), uint64(n + 2)}
		c := newCluster(o)
		runSchedule(c, &testRand{seed ^ 0x5eed}, w, steps)
		if c.err == nil {
			checkLiveness(c)
		}
		if c.err != nil {
			rt.Fatalf("%v\ncluster: %s", c.err, c)
		}
	})
}

// TestScheduleReachesInterestingStates runs a fixed sweep of schedules (with
// and without membership changes) through the same checks as the property
// tests, and guards those against vacuity: the things they are meant to
// exercise happen.
func TestScheduleReachesInterestingStates(t *testing.T) {
	var leaders, applied, snapshots, reads, crashes, midReady, confApplied int
	const runs = 200
	for seed := uint64(1); seed <= runs; seed++ {
		n := 3 + 2*int(seed%2)
		o := propertyOpts(n, seed)
		w := defaultWeights
		if seed > runs/2 {
			o.fixedMembership = false
			o.joinWithoutMembers = []uint64{uint64(n + 1), uint64(n + 2)}
			w = membershipWeights
		}
		c := newCluster(o)
		runSchedule(c, &testRand{seed}, w, 2000)
		checkLiveness(c)
		if c.err != nil {
			t.Fatalf("seed %d: %v", seed, c.err)
		}
		leaders += len(c.chk.leaders)
		applied += int(c.chk.maxApplied()) - n
		for _, e := range c.chk.entries[n+1:] {
			if e.Type == EntryConfChange {
				confApplied++
			}
		}
		for _, nd := range c.nodes {
			snapshots += nd.snapshotsApplied
			reads += len(nd.readStates)
		}
		crashes += c.stats.crashes
		midReady += c.stats.midReadyCrashes
	}
	t.Logf("%d schedules: %d leaders, %d entries applied (%d configuration changes), %d snapshots installed, %d reads answered, %d crashes (%d mid-Ready)",
		runs, leaders, applied, confApplied, snapshots, reads, crashes, midReady)
	if leaders < 2*runs || applied < 10*runs || snapshots < runs/4 || reads < 2*runs || crashes < runs || midReady == 0 || confApplied < runs/2 {
		t.Fatal("schedules too tame")
	}
}

func (c *cluster) String() string {
	var b strings.Builder
	for _, n := range c.nodes {
		if !n.up {
			fmt.Fprintf(&b, "%d:down ", n.id)
			continue
		}
		s := n.r.Status()
		fmt.Fprintf(&b, "%d:%v/t%d/c%d/l%d/a%d ", n.id, s.Role, s.Term, s.Commit, s.LastIndex, s.Applied)
	}
	return b.String()
}
