package raft

import (
	"errors"
	"slices"
	"testing"
)

// (d) Membership: remove a voter; quorums follow the new voter set; add a
// fresh member with an empty state, which catches up through the snapshot
// after Compact and then counts in quorums.
func TestScenarioMembership(t *testing.T) {
	o := defaultOpts(3, 4)
	o.fixedMembership = false // the majority of a changing set is checked by the scenario itself
	o.joinWithoutMembers = []uint64{4}
	c := newCluster(o)
	t.Cleanup(func() {
		if c.err != nil {
			t.Errorf("cluster failure: %v\ncluster: %s", c.err, c)
		}
	})
	joiner := c.node(4)
	l := mustLeader(t, c)
	for i := 0; i < 5; i++ {
		mustCommit(t, c, l)
	}

	// Remove a follower.
	gone := others(c, l.id, 4)[1]
	keep := others(c, l.id, 4, gone.id)[0]
	idx, err := l.r.ProposeConfChange(ConfChange{Type: RemoveVoter, ID: gone.id})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.r.ProposeConfChange(ConfChange{Type: RemoveVoter, ID: keep.id}); !errors.Is(err, ErrConfChangePending) {
		t.Fatalf("second change while one is pending: %v, want ErrConfChangePending", err)
	}
	c.runTicks(3)
	want := []uint64{min(l.id, keep.id), max(l.id, keep.id)}
	for _, n := range []*tnode{l, keep, gone} {
		if n.r.applied < idx || !slices.Equal(n.r.Status().Voters, want) {
			t.Fatalf("member %d: voters %v (applied %d), want %v after applying %d", n.id, n.r.Status().Voters, n.r.applied, want, idx)
		}
	}

	// The removed member never campaigns, however long it waits.
	goneTerm := gone.r.term
	c.partition(gone.id)
	for tick := 0; tick < 10*c.opts.election; tick++ {
		c.tick(gone)
		c.stabilize()
		if gone.r.role != Follower || gone.r.term != goneTerm {
			t.Fatalf("removed member %d became %v at term %d", gone.id, gone.r.role, gone.r.term)
		}
	}
	c.heal()

	// Quorum of {l, keep} is both: with keep cut off (and the removed member
	// still reachable) nothing commits, and the leader steps down.
	c.partition(keep.id)
	data, _, err := c.propose(l)
	if err != nil {
		t.Fatal(err)
	}
	for tick := 0; tick < c.opts.election-1; tick++ {
		c.tickAll()
		c.stabilize()
	}
	if got := c.committedIndex(data); got != 0 {
		t.Fatalf("%q committed at %d without the only other voter", data, got)
	}
	c.heal()
	l = mustLeader(t, c)
	if l.id == keep.id { // leadership may have moved to the other voter
		keep = others(c, l.id, gone.id, 4)[0]
	}
	mustCommit(t, c, l)

	// Compact everywhere, so the joiner can only catch up from a snapshot.
	for _, n := range []*tnode{l, keep} {
		if err := c.compact(n); err != nil {
			t.Fatalf("compact %d: %v", n.id, err)
		}
	}
	c.stabilize()
	c.restart(joiner) // empty state, no Peers
	if s := joiner.r.Status(); len(s.Voters) != 0 || s.Term != 0 {
		t.Fatalf("fresh member: %+v", s)
	}
	for tick := 0; tick < 3*c.opts.election; tick++ { // it waits: no voters, no campaign
		c.tick(joiner)
		if joiner.r.role != Follower {
			t.Fatalf("fresh member campaigned")
		}
	}
	if _, err := l.r.ProposeConfChange(ConfChange{Type: AddVoter, ID: joiner.id}); err != nil {
		t.Fatal(err)
	}
	c.runTicks(5 * c.opts.election)
	if joiner.snapshotsApplied == 0 {
		t.Fatalf("the new member did not catch up through a snapshot")
	}
	want = []uint64{l.id, keep.id, joiner.id}
	slices.Sort(want)
	for _, n := range []*tnode{l, keep, joiner} {
		if !slices.Equal(n.r.Status().Voters, want) {
			t.Fatalf("member %d: voters %v, want %v", n.id, n.r.Status().Voters, want)
		}
	}
	mustCommit(t, c, l)

	// Quorum of {l, keep, joiner} is two: without keep, leader and joiner commit.
	c.crash(keep)
	data, _ = mustCommitOn(t, c, l, keep.id)
	if n := c.committedIndex(data); joiner.app.applied < n {
		t.Fatalf("the new member did not apply %q", data)
	}
	// ... and without the joiner too, nothing commits.
	c.crash(joiner)
	data, _, err = c.propose(l)
	if err != nil {
		t.Fatal(err)
	}
	c.runTicks(c.opts.election - 1)
	if got := c.committedIndex(data); got != 0 {
		t.Fatalf("%q committed on one of three voters", data)
	}
}

// A leader that removes itself takes no more proposals, steps down once the
// change is applied, never campaigns again, and the remaining voters (three
// down to two, then two down to one) elect a leader and commit.
func TestScenarioRemoveLeader(t *testing.T) {
	o := defaultOpts(3, 5)
	o.fixedMembership = false
	c := newCluster(o)
	t.Cleanup(func() {
		if c.err != nil {
			t.Errorf("cluster failure: %v\ncluster: %s", c.err, c)
		}
	})
	removed := map[uint64]bool{}
	for round := 0; round < 2; round++ {
		l := mustLeader(t, c)
		mustCommit(t, c, l)
		idx, err := l.r.ProposeConfChange(ConfChange{Type: RemoveVoter, ID: l.id})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.r.Propose([]byte("late")); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("a leader removing itself accepted a proposal: %v", err)
		}
		c.stabilize()
		if l.r.applied < idx || l.r.role == Leader || slices.Contains(l.r.Status().Voters, l.id) {
			t.Fatalf("round %d: leader %d did not step down after applying its removal: %s", round, l.id, c)
		}
		removed[l.id] = true
		next := mustLeader(t, c)
		if removed[next.id] {
			t.Fatalf("removed member %d leads", next.id)
		}
		if got, want := len(next.r.Status().Voters), 2-round; got != want {
			t.Fatalf("round %d: %d voters, want %d", round, got, want)
		}
		mustCommit(t, c, next)
		for tick := 0; tick < 5*c.opts.election; tick++ {
			c.tickAll()
			c.stabilize()
			for _, n := range c.nodes {
				if removed[n.id] && n.r.role != Follower {
					t.Fatalf("removed member %d became %v", n.id, n.r.role)
				}
			}
		}
	}
}
