package raft

import (
	"errors"
	"slices"
	"testing"
)

// Scripted scenarios on the deterministic cluster. Every action still runs
// the checker (checker_test.go), so each scenario also asserts the general
// safety properties along the way.

func scriptCluster(t *testing.T, n int, seed uint64) *cluster {
	t.Helper()
	c := newCluster(defaultOpts(n, seed))
	t.Cleanup(func() {
		if c.err != nil {
			t.Errorf("cluster failure: %v\ncluster: %s", c.err, c)
		}
	})
	return c
}

// runTicks ticks every member n times, stabilizing after each tick.
func (c *cluster) runTicks(n int) {
	for i := 0; i < n && c.err == nil; i++ {
		c.tickAll()
		c.stabilize()
	}
}

func mustLeader(t *testing.T, c *cluster) *tnode {
	t.Helper()
	l := c.waitLeader(50 * c.opts.election)
	if l == nil {
		t.Fatalf("no leader: %s (err %v)", c, c.err)
	}
	return l
}

// commit proposes data on l and waits until every up member applied it.
func mustCommit(t *testing.T, c *cluster, l *tnode) (string, uint64) {
	t.Helper()
	data, idx, err := c.propose(l)
	if err != nil {
		t.Fatalf("propose on %d: %v", l.id, err)
	}
	for i := 0; i < 20*c.opts.election; i++ {
		c.stabilize()
		if got := c.committedIndex(data); got != 0 && c.votersApplied(l, got) {
			if got != idx {
				t.Fatalf("%q committed at %d, proposed at %d", data, got, idx)
			}
			return data, idx
		}
		c.tickAll()
	}
	t.Fatalf("%q (index %d) did not commit everywhere: %s", data, idx, c)
	return "", 0
}

// votersApplied reports whether every up voter of l's configuration applied idx.
func (c *cluster) votersApplied(l *tnode, idx uint64) bool {
	for _, n := range c.nodes {
		if n.up && slices.Contains(l.r.voters, n.id) && n.app.applied < idx {
			return false
		}
	}
	return true
}

func inLog(n *tnode, data string) bool {
	l := &n.r.log
	for _, e := range l.slice(l.firstIndex(), l.lastIndex()+1) {
		if string(e.Data) == data {
			return true
		}
	}
	return false
}

func others(c *cluster, not ...uint64) []*tnode {
	var out []*tnode
	for _, n := range c.nodes {
		if !slices.Contains(not, n.id) {
			out = append(out, n)
		}
	}
	return out
}

// (a) A leader cut off in a minority still believes it leads for a while:
// it steps down by check-quorum, commits nothing, never answers a ReadIndex;
// the majority elects a new leader; after healing the old leader's
// uncommitted entries are overwritten.
func TestScenarioPartitionedLeader(t *testing.T) {
	c := scriptCluster(t, 5, 1)
	old := mustLeader(t, c)
	mustCommit(t, c, old)
	oldTerm, oldCommit := old.r.term, old.r.log.commit

	// The old leader keeps one follower; the other three form the majority.
	buddy := others(c, old.id)[0]
	c.partition(old.id, buddy.id)

	var stale []string
	for i := 0; i < 3; i++ {
		data, _, err := c.propose(old)
		if err != nil {
			t.Fatalf("the cut-off leader should still accept proposals: %v", err)
		}
		stale = append(stale, data)
	}
	ctx, err := c.readIndex(old)
	if err != nil {
		t.Fatalf("ReadIndex on the cut-off leader: %v", err)
	}

	steppedDown := -1
	for tick := 0; tick < 4*c.opts.election; tick++ {
		c.tickAll()
		c.stabilize()
		if old.r.role != Leader && steppedDown < 0 {
			steppedDown = tick
		}
		if old.r.log.commit != oldCommit {
			t.Fatalf("the cut-off leader committed %d (was %d)", old.r.log.commit, oldCommit)
		}
	}
	if steppedDown < 0 || steppedDown > 2*c.opts.election {
		t.Fatalf("the cut-off leader did not step down within two election timeouts (stepped down at tick %d)", steppedDown)
	}
	var fresh *tnode
	for _, n := range c.nodes {
		if n.r.role == Leader && n.r.term > oldTerm {
			fresh = n
		}
	}
	if fresh == nil || fresh.id == old.id || fresh.id == buddy.id {
		t.Fatalf("the majority did not elect a new leader: %s", c)
	}
	newData, _ := mustCommitOn(t, c, fresh, old.id, buddy.id)

	if err := old.r.ReadIndex(ctx + 1000); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("ReadIndex on the deposed leader: %v, want ErrNotLeader", err)
	}

	c.heal()
	c.runTicks(5 * c.opts.election)
	for _, n := range c.nodes {
		if slices.ContainsFunc(n.readStates, func(rs ReadState) bool { return rs.Ctx == ctx }) {
			t.Fatalf("member %d answered the read the cut-off leader could not confirm", n.id)
		}
		for _, d := range stale {
			if inLog(n, d) {
				t.Fatalf("member %d still holds %q, proposed to the cut-off leader", n.id, d)
			}
		}
		if !inLog(n, newData) && n.r.log.snap.Index < c.committedIndex(newData) {
			t.Fatalf("member %d lacks %q after healing", n.id, newData)
		}
	}
	for _, d := range stale {
		if c.committedIndex(d) != 0 {
			t.Fatalf("%q, proposed to the cut-off leader, was committed", d)
		}
	}
}

// mustCommitOn is mustCommit for a leader whose partition excludes some members.
func mustCommitOn(t *testing.T, c *cluster, l *tnode, excluded ...uint64) (string, uint64) {
	t.Helper()
	data, idx, err := c.propose(l)
	if err != nil {
		t.Fatalf("propose on %d: %v", l.id, err)
	}
	for i := 0; i < 20*c.opts.election; i++ {
		c.stabilize()
		if got := c.committedIndex(data); got != 0 && l.app.applied >= got {
			return data, idx
		}
		c.tickAll()
	}
	t.Fatalf("%q did not commit on %d (excluded %v): %s", data, l.id, excluded, c)
	return "", 0
}

// (b) Pre-vote: a member cut off alone, and then back, does not disrupt the
// leader: nobody's term increases.
func TestScenarioPreVoteNoDisruption(t *testing.T) {
	for _, n := range []int{3, 5} {
		c := scriptCluster(t, n, 2)
		l := mustLeader(t, c)
		term := l.r.term
		lonely := others(c, l.id)[0]
		c.partition(lonely.id)
		sawPreCandidate := false
		for tick := 0; tick < 20*c.opts.election; tick++ {
			c.tickAll()
			c.stabilize()
			sawPreCandidate = sawPreCandidate || lonely.r.role == PreCandidate
			if lonely.r.term != term {
				t.Fatalf("n=%d: the isolated member moved to term %d (leader's %d)", n, lonely.r.term, term)
			}
		}
		if !sawPreCandidate {
			t.Fatalf("n=%d: the isolated member never tried a pre-vote", n)
		}
		c.heal()
		c.runTicks(10 * c.opts.election)
		for _, m := range c.nodes {
			if m.r.term != term {
				t.Fatalf("n=%d: member %d is at term %d after healing, want %d", n, m.id, m.r.term, term)
			}
		}
		if l.r.role != Leader || lonely.r.lead != l.id {
			t.Fatalf("n=%d: leadership changed after healing: %s", n, c)
		}
		mustCommit(t, c, l)
	}
}

// (c) Leader change in the middle of a proposal: the proposal either commits
// everywhere (at one index) or is lost everywhere, never half. Three ways:
// it reached no follower, all followers (acks lost), or one follower.
func TestScenarioLeaderChangeMidProposal(t *testing.T) {
	for _, reach := range []int{0, 1, 2} {
		for seed := uint64(1); seed <= 8; seed++ {
			c := scriptCluster(t, 3, seed)
			l := mustLeader(t, c)
			mustCommit(t, c, l)
			c.stabilize()
			data, idx, err := c.propose(l)
			if err != nil {
				t.Fatal(err)
			}
			c.processReady(l) // persisted; MsgApps in the network
			var apps []Message
			for _, m := range c.net {
				if m.Type == MsgApp && len(m.Entries) > 0 {
					apps = append(apps, m)
				}
			}
			c.net = nil
			followers := others(c, l.id)
			for _, m := range apps {
				if (m.To == followers[0].id && reach >= 1) || (m.To == followers[1].id && reach >= 2) {
					c.net = append(c.net, m)
				}
			}
			for len(c.net) > 0 {
				c.deliver(0)
			}
			for _, f := range followers {
				c.processReady(f) // persisted there; the acks go nowhere:
			}
			c.net = nil
			c.crash(l)
			nl := mustLeader(t, c)
			if nl.id == l.id {
				t.Fatalf("crashed leader still leads")
			}
			c.restart(l)
			mustCommit(t, c, nl)
			c.runTicks(3 * c.opts.election)

			got := c.committedIndex(data)
			switch {
			case got == 0:
				for _, n := range c.nodes {
					if inLog(n, data) {
						t.Fatalf("reach %d seed %d: %q lost but still in member %d's log", reach, seed, data, n.id)
					}
				}
			case got != idx:
				t.Fatalf("reach %d seed %d: %q committed at %d, proposed at %d", reach, seed, data, got, idx)
			case !c.allApplied(got):
				t.Fatalf("reach %d seed %d: %q committed but not applied everywhere: %s", reach, seed, data, c)
			}
			if reach == 0 && got != 0 {
				t.Fatalf("reach 0 seed %d: %q reached no follower but committed", seed, data)
			}
			if reach == 2 && got == 0 {
				t.Fatalf("reach 2 seed %d: %q was on every follower but was lost", seed, data)
			}
		}
	}
}

// (e) A member restarted from what it persisted keeps its vote: it cannot
// vote twice in a term. A vote that was never persisted was never sent either.
func TestScenarioRestartKeepsVote(t *testing.T) {
	cfg := Config{ID: 1, Peers: []uint64{1, 2, 3}, ElectionTicks: 10, HeartbeatTicks: 2, MaxMsgEntries: 8, MaxInflight: 4, Rand: &testRand{1}}
	r, err := New(cfg, State{})
	if err != nil {
		t.Fatal(err)
	}
	var d disk
	persist := func(r *Raft) Ready {
		rd := r.Ready()
		if _, err := d.persist(rd); err != nil {
			t.Fatal(err)
		}
		if err := r.Advance(rd); err != nil {
			t.Fatal(err)
		}
		return rd
	}
	persist(r)
	persist(r)
	beforeVote := d.state()
	vote := func(r *Raft, from uint64) {
		t.Helper()
		if err := r.Step(Message{Type: MsgVote, From: from, To: 1, Term: 5, Index: 3, LogTerm: 1}); err != nil {
			t.Fatal(err)
		}
	}
	answer := func(rd Ready, to uint64) (granted, found bool) {
		for _, m := range rd.Messages {
			if m.Type == MsgVoteResp && m.To == to {
				return !m.Reject, true
			}
		}
		return false, false
	}

	vote(r, 2)
	rd := persist(r)
	if g, ok := answer(rd, 2); !ok || !g {
		t.Fatalf("first vote in term 5 not granted: %+v", rd.Messages)
	}
	if rd.Hard == nil || rd.Hard.Vote != 2 || rd.Hard.Term != 5 {
		t.Fatalf("the vote response went out in a Ready without the vote: %+v", rd.Hard)
	}

	r2, err := New(cfg, d.state()) // crash and restart from disk
	if err != nil {
		t.Fatal(err)
	}
	vote(r2, 3)
	if g, ok := answer(r2.Ready(), 3); !ok || g {
		t.Fatal("restarted member voted twice in term 5")
	}
	if err := r2.Advance(r2.Ready()); err != nil {
		t.Fatal(err)
	}
	vote(r2, 2)
	if g, ok := answer(r2.Ready(), 2); !ok || !g {
		t.Fatal("restarted member refused to repeat its vote for the same candidate")
	}

	// Crash before the vote was persisted: the response was never sent, so
	// voting for another candidate is allowed.
	r3, err := New(cfg, beforeVote)
	if err != nil {
		t.Fatal(err)
	}
	vote(r3, 3)
	if g, ok := answer(r3.Ready(), 3); !ok || !g {
		t.Fatal("a member whose earlier vote was never persisted (nor sent) refused to vote")
	}
}
