package raft

import (
	"errors"
	"maps"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

func testConfig(id uint64, peers ...uint64) Config {
	return Config{ID: id, Peers: peers, ElectionTicks: 10, HeartbeatTicks: 2, MaxMsgEntries: 8, MaxInflight: 4, Rand: &testRand{id}}
}

func mustNew(t *testing.T, c Config, st State) *Raft {
	t.Helper()
	r, err := New(c, st)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// drain handles every Ready of r (nothing persisted anywhere) and returns them.
func drain(t *testing.T, r *Raft) []Ready {
	t.Helper()
	var out []Ready
	for i := 0; i < 16 && r.HasReady(); i++ {
		rd := r.Ready()
		if err := r.Advance(rd); err != nil {
			t.Fatal(err)
		}
		out = append(out, rd)
	}
	if r.HasReady() {
		t.Fatal("Ready never settles")
	}
	return out
}

func TestConfigValidate(t *testing.T) {
	ok := testConfig(1, 1, 2, 3)
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(*Config){
		"zero id":          func(c *Config) { c.ID = 0 },
		"heartbeat 0":      func(c *Config) { c.HeartbeatTicks = 0 },
		"election short":   func(c *Config) { c.ElectionTicks = 2 * c.HeartbeatTicks },
		"election huge":    func(c *Config) { c.ElectionTicks = maxTicks + 1 },
		"no entries":       func(c *Config) { c.MaxMsgEntries = 0 },
		"no inflight":      func(c *Config) { c.MaxInflight = 0 },
		"no rand":          func(c *Config) { c.Rand = nil },
		"peer 0":           func(c *Config) { c.Peers = []uint64{1, 0} },
		"duplicate peer":   func(c *Config) { c.Peers = []uint64{1, 2, 2} },
		"self not in peer": func(c *Config) { c.Peers = []uint64{2, 3} },
	}
	for _, name := range slices.Sorted(maps.Keys(bad)) {
		c := testConfig(1, 1, 2, 3)
		bad[name](&c)
		if c.Validate() == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
		if _, err := New(c, State{}); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	joiner := testConfig(4)
	if err := joiner.Validate(); err != nil {
		t.Fatalf("a joining member (no peers): %v", err)
	}
}

func TestConfChangeEncoding(t *testing.T) {
	for _, cc := range []ConfChange{{AddVoter, 1}, {RemoveVoter, 1 << 60}} {
		got, err := DecodeConfChange(cc.Encode())
		if err != nil || got != cc {
			t.Fatalf("%+v: round trip gave %+v, %v", cc, got, err)
		}
	}
	for _, b := range [][]byte{nil, {1}, make([]byte, 9), append([]byte{3}, make([]byte, 8)...), ConfChange{AddVoter, 0}.Encode(), make([]byte, 10)} {
		if _, err := DecodeConfChange(b); !errors.Is(err, ErrBadConfChange) {
			t.Fatalf("%x decoded: %v", b, err)
		}
	}
}

// A single voter elects itself, commits after persisting, and answers reads
// at once (once its term has a committed entry).
func TestSingleVoter(t *testing.T) {
	r := mustNew(t, testConfig(1, 1), State{})
	drain(t, r)
	for i := 0; i < 20 && r.role != Leader; i++ {
		r.Tick()
	}
	if r.role != Leader {
		t.Fatal("single voter did not elect itself")
	}
	if err := r.ReadIndex(7); err != nil { // before the no-op commits: queued
		t.Fatal(err)
	}
	idx, err := r.Propose([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	var committed []Entry
	var reads []ReadState
	for _, rd := range drain(t, r) {
		committed = append(committed, rd.Committed...)
		reads = append(reads, rd.ReadStates...)
		if len(rd.Messages) != 0 {
			t.Fatalf("single voter sent %+v", rd.Messages)
		}
	}
	if len(committed) == 0 || committed[len(committed)-1].Index != idx {
		t.Fatalf("committed %+v, want up to %d", committed, idx)
	}
	if len(reads) != 1 || reads[0].Ctx != 7 || reads[0].Index < idx-1 {
		t.Fatalf("reads %+v", reads)
	}
	if err := r.ReadIndex(8); err != nil {
		t.Fatal(err)
	}
	rd := r.Ready()
	if len(rd.ReadStates) != 1 || rd.ReadStates[0] != (ReadState{Index: r.log.commit, Ctx: 8}) {
		t.Fatalf("single-voter read not answered at once: %+v", rd.ReadStates)
	}
	if err := r.Advance(rd); err != nil {
		t.Fatal(err)
	}
}

func TestNotLeaderErrors(t *testing.T) {
	r := mustNew(t, testConfig(2, 1, 2, 3), State{})
	drain(t, r)
	if _, err := r.Propose(nil); !errors.Is(err, ErrNotLeader) {
		t.Fatal(err)
	}
	if _, err := r.ProposeConfChange(ConfChange{AddVoter, 9}); !errors.Is(err, ErrNotLeader) {
		t.Fatal(err)
	}
	if err := r.ReadIndex(1); !errors.Is(err, ErrNotLeader) {
		t.Fatal(err)
	}
	// A heartbeat from the leader makes it the hint.
	if err := r.Step(Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 2}); err != nil {
		t.Fatal(err)
	}
	if s := r.Status(); s.Lead != 1 || s.Term != 2 || s.Role != Follower {
		t.Fatalf("status %+v", s)
	}
}

func TestAdvanceChecksItsReady(t *testing.T) {
	r := mustNew(t, testConfig(1, 1, 2, 3), State{})
	if err := r.Advance(Ready{}); !errors.Is(err, ErrNoReady) {
		t.Fatalf("Advance without Ready: %v", err)
	}
	rd := r.Ready()
	if err := r.Advance(Ready{}); !errors.Is(err, ErrNoReady) {
		t.Fatalf("Advance with another Ready: %v", err)
	}
	if r.HasReady() {
		t.Fatal("HasReady while a Ready is outstanding")
	}
	if err := r.Advance(rd); err != nil {
		t.Fatal(err)
	}
	if err := r.Advance(rd); !errors.Is(err, ErrNoReady) {
		t.Fatalf("Advance twice: %v", err)
	}
}

// Output produced between Ready and Advance goes to the next Ready; a
// truncation in between makes the stale part of the handed-out entries
// non-durable; committed entries are delivered once.
func TestStepBetweenReadyAndAdvance(t *testing.T) {
	r := mustNew(t, testConfig(2, 1, 2, 3), State{})
	drain(t, r)
	step := func(m Message) {
		t.Helper()
		m.To = 2
		if err := r.Step(m); err != nil {
			t.Fatal(err)
		}
	}
	step(Message{Type: MsgApp, From: 1, Term: 2, Index: 3, LogTerm: 1, Commit: 3,
		Entries: []Entry{{Index: 4, Term: 2}, {Index: 5, Term: 2}, {Index: 6, Term: 2}}})
	rd1 := r.Ready()
	if len(rd1.Entries) != 3 || rd1.Entries[0].Index != 4 {
		t.Fatalf("rd1 entries %+v", rd1.Entries)
	}
	// A new leader of term 3 overwrites from 5 while rd1 is being persisted.
	step(Message{Type: MsgApp, From: 3, Term: 3, Index: 4, LogTerm: 2, Commit: 4, Entries: []Entry{{Index: 5, Term: 3}}})
	if again := r.Ready(); !sameReady(again, rd1) {
		t.Fatal("Ready before Advance changed")
	}
	if rd1.Entries[1].Term != 2 {
		t.Fatal("a handed-out entry changed under the driver")
	}
	if err := r.Advance(rd1); err != nil {
		t.Fatal(err)
	}
	if r.rdy.persisted != 4 {
		t.Fatalf("persisted %d after a truncation at 5, want 4", r.rdy.persisted)
	}
	rd2 := r.Ready()
	if len(rd2.Entries) != 1 || rd2.Entries[0].Index != 5 || rd2.Entries[0].Term != 3 {
		t.Fatalf("rd2 entries %+v, want the new entry 5", rd2.Entries)
	}
	if len(rd2.Committed) != 1 || rd2.Committed[0].Index != 4 {
		t.Fatalf("rd2 committed %+v, want entry 4 (persisted and committed)", rd2.Committed)
	}
	if rd2.Hard == nil || rd2.Hard.Term != 3 || rd2.Hard.Commit != 4 {
		t.Fatalf("rd2 hard %+v", rd2.Hard)
	}
	acks := 0
	for _, m := range rd2.Messages {
		if m.Type == MsgAppResp && m.To == 3 && m.Index == 5 && !m.Reject {
			acks++
		}
	}
	if acks != 1 {
		t.Fatalf("rd2 messages %+v", rd2.Messages)
	}
	if err := r.Advance(rd2); err != nil {
		t.Fatal(err)
	}
	step(Message{Type: MsgHeartbeat, From: 3, Term: 3, Commit: 5})
	var committed []uint64
	for _, rd := range drain(t, r) {
		for _, e := range rd.Committed {
			committed = append(committed, e.Index)
		}
	}
	if !slices.Equal(committed, []uint64{5}) {
		t.Fatalf("committed %v, want [5] once", committed)
	}
}

func TestStepRejectsBadMessages(t *testing.T) {
	r := mustNew(t, testConfig(2, 1, 2, 3), State{})
	drain(t, r)
	before := r.Status()
	snap := &Snapshot{Index: 9, Term: 2, Voters: []uint64{1, 2, 3}}
	for name, m := range map[string]Message{
		"type 0":            {From: 1, To: 2, Term: 2},
		"type 99":           {Type: 99, From: 1, To: 2, Term: 2},
		"other recipient":   {Type: MsgHeartbeat, From: 1, To: 3, Term: 2},
		"from nobody":       {Type: MsgHeartbeat, To: 2, Term: 2},
		"from self":         {Type: MsgHeartbeat, From: 2, To: 2, Term: 2},
		"term 0":            {Type: MsgHeartbeat, From: 1, To: 2},
		"gap":               {Type: MsgApp, From: 1, To: 2, Term: 2, Index: 3, LogTerm: 1, Entries: []Entry{{Index: 5, Term: 2}}},
		"term goes back":    {Type: MsgApp, From: 1, To: 2, Term: 3, Index: 3, LogTerm: 1, Entries: []Entry{{Index: 4, Term: 3}, {Index: 5, Term: 2}}},
		"entry beyond term": {Type: MsgApp, From: 1, To: 2, Term: 2, Index: 3, LogTerm: 1, Entries: []Entry{{Index: 4, Term: 3}}},
		"bad entry type":    {Type: MsgApp, From: 1, To: 2, Term: 2, Index: 3, LogTerm: 1, Entries: []Entry{{Index: 4, Term: 2, Type: 9}}},
		"prev term > term":  {Type: MsgApp, From: 1, To: 2, Term: 2, Index: 3, LogTerm: 5},
		"index overflow":    {Type: MsgApp, From: 1, To: 2, Term: 2, Index: ^uint64(0), LogTerm: 1, Entries: []Entry{{Index: 0, Term: 2}}},
		"no snapshot":       {Type: MsgSnap, From: 1, To: 2, Term: 2},
		"snapshot no voter": {Type: MsgSnap, From: 1, To: 2, Term: 2, Snapshot: &Snapshot{Index: 9, Term: 2}},
		"snapshot future":   {Type: MsgSnap, From: 1, To: 2, Term: 1, Snapshot: snap},
		"vote log > term":   {Type: MsgVote, From: 1, To: 2, Term: 2, LogTerm: 3},
	} {
		if err := r.Step(m); !errors.Is(err, ErrBadMessage) {
			t.Errorf("%s: Step returned %v, want ErrBadMessage", name, err)
		}
	}
	if after := r.Status(); after.Term != before.Term || after.LastIndex != before.LastIndex || after.Commit != before.Commit || r.HasReady() {
		t.Fatalf("bad messages changed the state: %+v -> %+v", before, after)
	}
}

// Two leaders claiming one term are reported, not obeyed; a stale MsgApp
// below the commit index is acknowledged with the commit index.
func TestStepReportsInvariantViolations(t *testing.T) {
	r := mustNew(t, testConfig(2, 1, 2, 3), State{})
	drain(t, r)
	if err := r.Step(Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 2}); err != nil {
		t.Fatal(err)
	}
	if err := r.Step(Message{Type: MsgHeartbeat, From: 3, To: 2, Term: 2}); !errors.Is(err, ErrInvariant) {
		t.Fatalf("second leader in term 2: %v", err)
	}
	err := r.Step(Message{Type: MsgApp, From: 1, To: 2, Term: 2, Index: 3, LogTerm: 1, Commit: 3,
		Entries: []Entry{{Index: 4, Term: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Step(Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 2, Commit: 4}); err != nil {
		t.Fatal(err)
	}
	err = r.Step(Message{Type: MsgApp, From: 1, To: 2, Term: 2, Index: 3, LogTerm: 1, Commit: 3,
		Entries: []Entry{{Index: 4, Term: 2}}})
	if err != nil {
		t.Fatalf("a stale duplicate below commit must be acknowledged, not refused: %v", err)
	}
	if r.log.lastIndex() != 4 || r.log.commit != 4 {
		t.Fatalf("log %d/%d", r.log.lastIndex(), r.log.commit)
	}
}

func TestNewValidatesState(t *testing.T) {
	c := testConfig(1, 1, 2, 3)
	for name, st := range map[string]State{
		"snapshot index 0":  {Snap: &Snapshot{Term: 1, Voters: []uint64{1}}, Hard: HardState{Term: 1}},
		"snapshot voter 0":  {Snap: &Snapshot{Index: 3, Term: 1, Voters: []uint64{0}}, Hard: HardState{Term: 1}},
		"gap":               {Entries: []Entry{{Index: 1, Term: 1}, {Index: 3, Term: 1}}, Hard: HardState{Term: 1}},
		"term back":         {Entries: []Entry{{Index: 1, Term: 2}, {Index: 2, Term: 1}}, Hard: HardState{Term: 2}},
		"not after snap":    {Snap: &Snapshot{Index: 3, Term: 1, Voters: []uint64{1}}, Entries: []Entry{{Index: 5, Term: 1}}, Hard: HardState{Term: 1}},
		"snap term differs": {Snap: &Snapshot{Index: 3, Term: 2, Voters: []uint64{1}}, Entries: []Entry{{Index: 3, Term: 1}}, Hard: HardState{Term: 2}},
	} {
		if _, err := New(c, st); !errors.Is(err, ErrBadState) {
			t.Errorf("%s: New returned %v, want ErrBadState", name, err)
		}
	}
	// A crash between the parts of one Ready: normalized, not refused.
	r := mustNew(t, c, State{
		Hard:    HardState{Term: 1, Vote: 3, Commit: 9},
		Entries: []Entry{{Index: 1, Term: 1}, {Index: 2, Term: 2}},
	})
	if s := r.Status(); s.Term != 2 || s.Commit != 2 || r.vote != 0 {
		t.Fatalf("normalized status %+v vote %d", s, r.vote)
	}
	// Entries at or below the snapshot are dropped.
	r = mustNew(t, c, State{
		Hard:    HardState{Term: 2, Commit: 3},
		Snap:    &Snapshot{Index: 3, Term: 1, Voters: []uint64{3, 1, 2}, Data: []byte("s")},
		Entries: []Entry{{Index: 2, Term: 1}, {Index: 3, Term: 1}, {Index: 4, Term: 2}},
	})
	if s := r.Status(); s.FirstIndex != 4 || s.LastIndex != 4 || !slices.Equal(s.Voters, []uint64{1, 2, 3}) || s.Applied != 3 {
		t.Fatalf("restored status %+v", s)
	}
}

// A log holding two configuration changes past the persisted commit index
// (a crash lost the HardState written after the entries): the earlier change
// is known to be committed, so the restarted member never tallies votes with
// a configuration two changes old.
func TestNewInfersCommittedConfChange(t *testing.T) {
	conf := func(i, term uint64, typ ConfChangeType, id uint64) Entry {
		return Entry{Index: i, Term: term, Type: EntryConfChange, Data: ConfChange{typ, id}.Encode()}
	}
	r := mustNew(t, testConfig(1, 1, 2, 3), State{
		Hard: HardState{Term: 2, Commit: 3},
		Entries: []Entry{
			conf(1, 1, AddVoter, 1), conf(2, 1, AddVoter, 2), conf(3, 1, AddVoter, 3),
			{Index: 4, Term: 2, Type: EntryNoop}, conf(5, 2, AddVoter, 4), {Index: 6, Term: 2}, conf(7, 2, RemoveVoter, 4),
		},
	})
	if got := r.Status().Commit; got != 5 {
		t.Fatalf("commit %d after restart, want 5 (the earlier of two changes)", got)
	}
	if r.promotable() {
		t.Fatal("promotable before applying the committed change")
	}
	var voters []uint64
	for _, rd := range drain(t, r) {
		if len(rd.Committed) > 0 {
			voters = r.Status().Voters
		}
	}
	if !slices.Equal(voters, []uint64{1, 2, 3, 4}) || !r.promotable() {
		t.Fatalf("voters %v promotable %v after applying", voters, r.promotable())
	}
}

func TestCompactErrors(t *testing.T) {
	r := mustNew(t, testConfig(1, 1), State{})
	drain(t, r)
	for i := 0; i < 20 && r.role != Leader; i++ {
		r.Tick()
	}
	if _, err := r.Propose([]byte("x")); err != nil {
		t.Fatal(err)
	}
	drain(t, r) // applied: 1 bootstrap entry, the no-op (term 2), x
	if err := r.Compact(2, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Compact(2, nil); !errors.Is(err, ErrCompacted) {
		t.Fatalf("compact twice: %v", err)
	}
	if err := r.Compact(9, nil); !errors.Is(err, ErrNotApplied) {
		t.Fatalf("compact beyond applied: %v", err)
	}
	rd := r.Ready()
	if rd.Compacted == nil || rd.Compacted.Index != 2 || rd.Compacted.Term != 2 || !slices.Equal(rd.Compacted.Voters, []uint64{1}) {
		t.Fatalf("Compacted %+v", rd.Compacted)
	}
	if err := r.Advance(rd); err != nil {
		t.Fatal(err)
	}
}

// Random messages, including nonsense, never panic and never break the
// log's own invariants.
func TestStepArbitraryMessages(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		r, err := New(testConfig(2, 1, 2, 3), State{})
		if err != nil {
			rt.Fatal(err)
		}
		small := rapid.Uint64Range(0, 12)
		for i, n := 0, rapid.IntRange(1, 60).Draw(rt, "n"); i < n; i++ {
			switch rapid.IntRange(0, 3).Draw(rt, "op") {
			case 0:
				r.Tick()
			case 1:
				rd := r.Ready()
				if err := r.Advance(rd); err != nil {
					rt.Fatal(err)
				}
			case 2:
				_, _ = r.Propose([]byte("x"))
				_ = r.ReadIndex(small.Draw(rt, "ctx"))
				_ = r.Compact(small.Draw(rt, "compact"), nil)
			default:
				m := Message{
					Type: MsgType(rapid.IntRange(0, 10).Draw(rt, "type")), From: small.Draw(rt, "from"), To: 2,
					Term: small.Draw(rt, "term"), LogTerm: small.Draw(rt, "logterm"), Index: small.Draw(rt, "index"),
					Commit: small.Draw(rt, "commit"), Reject: rapid.Bool().Draw(rt, "reject"),
					RejectHint: small.Draw(rt, "hint"), Context: small.Draw(rt, "ctx"),
				}
				first, term := m.Index+1, m.LogTerm
				for k := rapid.IntRange(0, 3).Draw(rt, "ents"); k > 0; k-- {
					term = max(term, small.Draw(rt, "eterm"))
					m.Entries = append(m.Entries, Entry{Index: first, Term: term})
					first++
				}
				if rapid.Bool().Draw(rt, "snap") {
					m.Snapshot = &Snapshot{Index: small.Draw(rt, "sidx"), Term: small.Draw(rt, "sterm"), Voters: []uint64{1, 2, 3}}
				}
				_ = r.Step(m)
			}
			l := &r.log
			if l.commit < l.snap.Index || l.commit > l.lastIndex() || r.applied > l.commit {
				rt.Fatalf("log invariants broken: snap %d commit %d last %d applied %d", l.snap.Index, l.commit, l.lastIndex(), r.applied)
			}
		}
	})
}
