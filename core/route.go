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

// Unanswered records that to, asked something a live leader answers within a known
// time (a health check), did not answer: it is down, cut off or no longer leads, so the
// next request goes to the next member at once instead of after maxMisses silences
// (which cost a secondary whose guess was the dead member three health-check periods).
// Only a guess still naming to moves (several requests that went unanswered by the
// same member move it once).
func (g *LeaderGuess) Unanswered(to Addr) {
	if g.leader == to && len(g.members) > 0 {
		g.misses = maxMisses
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
