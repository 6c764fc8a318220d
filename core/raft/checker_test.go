package raft

// checker holds the cluster-wide history that the safety properties are
// checked against after every harness action:
//
//   - election safety: at most one leader per term, ever;
//   - log matching: two persisted logs that hold an entry with the same index
//     and term hold identical prefixes up to it (chain hashes agree);
//   - state machine safety: every member applies the same entry at each index
//     (the application's chain hash at i agrees everywhere, snapshots included);
//   - leader completeness: a member that becomes leader holds every entry
//     applied anywhere before;
//   - durability: every applied entry is on the disk of a majority (fixed
//     membership), so no crash loses a committed entry;
//   - Committed is gap-free and delivers each entry once;
//   - read index: a ReadState's Index is >= the leader's commit index when
//     ReadIndex was called and >= every entry applied (so acknowledged to a
//     client) anywhere before that.
type checker struct {
	c       *cluster
	leaders map[uint64]uint64    // term -> leader
	hashes  []uint64             // hashes[i]: application hash after applying index i
	entries []Entry              // entries[i]: the entry applied at index i
	logs    map[[2]uint64]uint64 // (index, term) -> chain hash, over every persisted log ever
	reads   map[uint64]uint64    // read ctx -> the minimum acceptable ReadState.Index
}

func newChecker(c *cluster) *checker {
	return &checker{
		c: c, leaders: map[uint64]uint64{}, hashes: []uint64{0}, entries: []Entry{{}},
		logs: map[[2]uint64]uint64{}, reads: map[uint64]uint64{},
	}
}

func (k *checker) maxApplied() uint64 { return uint64(len(k.hashes) - 1) }

func (k *checker) applied(n *tnode, e Entry) {
	if e.Index != n.app.applied+1 {
		k.c.fail("node %d: Committed delivered index %d after applying %d", n.id, e.Index, n.app.applied)
		return
	}
	h := entryHash(n.app.hash, e)
	switch {
	case e.Index < uint64(len(k.hashes)):
		if k.hashes[e.Index] != h {
			k.c.fail("state machine safety: node %d applied %v term %d %q at %d, another member applied term %d %q",
				n.id, e.Type, e.Term, e.Data, e.Index, k.entries[e.Index].Term, k.entries[e.Index].Data)
		}
	case e.Index == uint64(len(k.hashes)):
		k.hashes = append(k.hashes, h)
		k.entries = append(k.entries, e)
	}
}

func (k *checker) appliedSnapshot(n *tnode, s Snapshot) {
	a := decodeApp(s.Data)
	switch {
	case a.applied != s.Index:
		k.c.fail("node %d: snapshot at %d holds application state at %d", n.id, s.Index, a.applied)
	case s.Index <= n.app.applied:
		k.c.fail("node %d: snapshot at %d would move the application back from %d", n.id, s.Index, n.app.applied)
	case s.Index > k.maxApplied():
		k.c.fail("node %d: snapshot at %d beyond anything applied (%d)", n.id, s.Index, k.maxApplied())
	case k.hashes[s.Index] != a.hash:
		k.c.fail("state machine safety: node %d installed a snapshot at %d that differs from what was applied", n.id, s.Index)
	}
}

// persisted checks n's disk after it persisted rd (first: first entry written).
func (k *checker) persisted(n *tnode, rd Ready, first uint64) {
	k.persistedPart(n, rd, first)
	d := &n.disk
	last := d.base() + uint64(len(d.ents))
	if d.hard.Commit > last {
		k.c.fail("node %d persisted commit %d beyond its persisted log (last %d)", n.id, d.hard.Commit, last)
	}
	if len(d.ents) > 0 && d.ents[len(d.ents)-1].Term > d.hard.Term {
		k.c.fail("node %d persisted entries of term %d with HardState term %d", n.id, d.ents[len(d.ents)-1].Term, d.hard.Term)
	}
}

// persistedPart checks what holds even when only part of a Ready was written.
func (k *checker) persistedPart(n *tnode, rd Ready, first uint64) {
	d := &n.disk
	if (rd.Snapshot != nil || rd.Compacted != nil) && d.base() <= k.maxApplied() && k.hashes[d.base()] != d.snapHash {
		k.c.fail("node %d persisted a snapshot at %d that differs from what was applied", n.id, d.base())
	}
	if first != 0 {
		for i := first; i <= d.base()+uint64(len(d.ents)); i++ {
			e := d.ents[i-d.base()-1]
			h, _ := d.hashAt(i)
			key := [2]uint64{e.Index, e.Term}
			if old, ok := k.logs[key]; ok && old != h {
				k.c.fail("log matching: node %d persisted index %d term %d with a different prefix than another log", n.id, e.Index, e.Term)
				return
			}
			k.logs[key] = h
		}
	}
}

func (k *checker) readState(n *tnode, rs ReadState) {
	floor, ok := k.reads[rs.Ctx]
	switch {
	case !ok:
		k.c.fail("node %d: ReadState for unknown ctx %d", n.id, rs.Ctx)
	case rs.Index < floor:
		k.c.fail("linearizability: node %d answered read %d with index %d, but %d was committed before the read", n.id, rs.Ctx, rs.Index, floor)
	}
	delete(k.reads, rs.Ctx) // answered once
}

// check runs the checks that look at the whole cluster.
func (c *cluster) check() {
	if c.err != nil {
		return
	}
	k := c.chk
	for _, n := range c.nodes {
		if !n.up || n.r.role != Leader {
			continue
		}
		term := n.r.term
		old, seen := k.leaders[term]
		if seen && old != n.id {
			c.fail("election safety: %d and %d both led term %d", old, n.id, term)
			return
		}
		if !seen {
			k.leaders[term] = n.id
			k.leaderComplete(n)
		}
	}
	if c.opts.fixedMembership {
		k.durable()
	}
}

// leaderComplete checks that a new leader's log holds every applied entry.
func (k *checker) leaderComplete(n *tnode) {
	l := &n.r.log
	top := k.maxApplied()
	if l.snap.Index > top {
		k.c.fail("leader %d: snapshot at %d beyond anything applied", n.id, l.snap.Index)
		return
	}
	if l.lastIndex() < top {
		k.c.fail("leader completeness: leader %d of term %d ends at %d, but %d was applied", n.id, n.r.term, l.lastIndex(), top)
		return
	}
	var h uint64
	if l.snap.Index > 0 {
		h = appHashOf(l.snap.Data)
	}
	if h != k.hashes[l.snap.Index] {
		k.c.fail("leader completeness: leader %d of term %d has a foreign snapshot at %d", n.id, n.r.term, l.snap.Index)
		return
	}
	for _, e := range l.slice(l.firstIndex(), top+1) {
		h = entryHash(h, e)
	}
	if h != k.hashes[top] {
		k.c.fail("leader completeness: leader %d of term %d lacks or differs in entries applied up to %d", n.id, n.r.term, top)
	}
}

// durable checks that the highest applied entry (and so, by the chain hash,
// every applied entry) is on the disk of a majority.
func (k *checker) durable() {
	top := k.maxApplied()
	if top <= uint64(k.c.opts.n) {
		return // the bootstrap entries: every member recreates them from Peers
	}
	count := 0
	for _, n := range k.c.nodes {
		if h, ok := n.disk.hashAt(top); ok && h == k.hashes[top] {
			count++
		} else if n.disk.base() > top {
			count++
		}
	}
	if count < k.c.opts.n/2+1 {
		k.c.fail("durability: entry %d is applied but persisted on only %d of %d members", top, count, k.c.opts.n)
	}
}
