package core

import "slices"

// leaderGuess is how a node or a client finds the authority cell's leader: it sends to
// the member it believes leads, follows a NotLeader reply's hint, and moves on to the
// next member after a few requests went unanswered.
type leaderGuess struct {
	members []Addr // sorted
	leader  Addr
	misses  int
}

// maxMisses: unanswered requests before trying the next member.
const maxMisses = 3

func newLeaderGuess(members []Addr) leaderGuess {
	m := slices.Clone(members)
	slices.Sort(m)
	if len(m) == 0 {
		return leaderGuess{}
	}
	return leaderGuess{members: m, leader: m[0]}
}

// to returns the member to send the next request to.
func (g *leaderGuess) to() Addr {
	if len(g.members) == 0 {
		return 0
	}
	if g.misses >= maxMisses {
		i, _ := slices.BinarySearch(g.members, g.leader)
		g.leader = g.members[(i+1)%len(g.members)]
		g.misses = 0
	}
	g.misses++
	return g.leader
}

// heard records an answer from a member that leads.
func (g *leaderGuess) heard(from Addr) {
	if _, ok := slices.BinarySearch(g.members, from); ok {
		g.leader, g.misses = from, 0
	}
}

// redirected records a NotLeader answer: try the member it names, or, if it knows no
// leader, the next member at once.
func (g *leaderGuess) redirected(hint Addr) {
	if _, ok := slices.BinarySearch(g.members, hint); ok {
		g.leader, g.misses = hint, 0
		return
	}
	g.misses = maxMisses
}
