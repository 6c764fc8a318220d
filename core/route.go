package core

import "slices"

// LeaderGuess is how a node or a client finds the authority cell's leader: it sends to
// the member it believes leads, follows a NotLeader reply's hint, and moves on to the
// next member after a few requests went unanswered.
type LeaderGuess struct {
	members []Addr // sorted
	leader  Addr
	misses  int
}

// maxMisses: unanswered requests before trying the next member.
const maxMisses = 3

// NewLeaderGuess starts guessing with the lowest member.
func NewLeaderGuess(members []Addr) LeaderGuess {
	m := slices.Clone(members)
	slices.Sort(m)
	if len(m) == 0 {
		return LeaderGuess{}
	}
	return LeaderGuess{members: m, leader: m[0]}
}

// To returns the member to send the next request to.
func (g *LeaderGuess) To() Addr {
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

// Heard records an answer from a member that leads.
func (g *LeaderGuess) Heard(from Addr) {
	if _, ok := slices.BinarySearch(g.members, from); ok {
		g.leader, g.misses = from, 0
	}
}

// Redirected records a NotLeader answer: try the member it names, or, if it knows no
// leader, the next member at once.
func (g *LeaderGuess) Redirected(hint Addr) {
	if _, ok := slices.BinarySearch(g.members, hint); ok {
		g.leader, g.misses = hint, 0
		return
	}
	g.misses = maxMisses
}
