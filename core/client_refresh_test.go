package core

import "testing"

// A member left unanswered moves the guess on at once, but only while the guess still
// names it.
func TestLeaderGuessUnanswered(t *testing.T) {
	g := NewLeaderGuess([]Addr{3, 1, 2})
	if to := g.To(); to != 1 {
		t.Fatalf("first guess %d, want 1", to)
	}
	g.Unanswered(1)
	if to := g.To(); to != 2 {
		t.Fatalf("after 1 left a request unanswered: %d, want 2", to)
	}
	g.Unanswered(1) // a stale report about the member already left behind
	g.Unanswered(3) // about a member the guess does not name
	if to := g.To(); to != 2 {
		t.Fatalf("after reports about other members: %d, want 2", to)
	}
}

// A client whose attempt went unanswered keeps asking the authority every
// RefreshInterval, and resends the same request to the new primary as soon as an answer
// names a newer epoch, instead of waiting for the next attempt timeout.
func TestClientFollowsNewEpochWithinRefreshInterval(t *testing.T) {
	const vol = VolumeID(7)
	p := DefaultClientParams(900, 1, []Addr{1, 2, 3})
	c := NewClient(p)
	cfg := func(e Epoch, primary Addr) *AuthReply {
		return &AuthReply{Op: OpGetConfig, Status: StatusOK, Config: Config{Volume: vol, Blocks: 16, RF: 2,
			Epoch: e, Primary: primary, InSync: []Addr{primary}, Replicas: []Addr{1, 2}}}
	}
	sent := func(now int64) (auth int, writes []Envelope) {
		c.Tick(now)
		msgs, _ := c.Drain()
		for _, e := range msgs {
			switch e.Msg.(type) {
			case *AuthRequest:
				auth++
			case *ClientWrite:
				writes = append(writes, e)
			}
		}
		return auth, writes
	}
	req := c.Write(0, vol, 0, make([]byte, BlockSize))
	c.Drain() // the configuration request
	c.Step(1*Millisecond, 1, cfg(1, 1))
	if _, w := sent(1 * Millisecond); len(w) != 1 || w[0].To != 1 {
		t.Fatalf("first attempt: %v, want one write to node 1", w)
	}
	// Node 1 never answers. At the attempt timeout the client asks the authority again;
	// the authority still says epoch 1 (node 1's promise has not run out), so the write
	// goes to node 1 again.
	at := p.AttemptTimeout + 1*Millisecond
	if a, _ := sent(at); a != 1 {
		t.Fatalf("at the attempt timeout: %d configuration requests, want 1", a)
	}
	c.Step(at, 1, cfg(1, 1))
	if _, w := sent(at); len(w) != 1 || w[0].To != 1 {
		t.Fatalf("second attempt: %v, want one write to node 1", w)
	}
	// Before: nothing happened until the next attempt timeout. Now the client asks every
	// RefreshInterval while its primary is silent...
	at += p.RefreshInterval
	if a, w := sent(at); a != 1 || len(w) != 0 {
		t.Fatalf("a refresh interval later: %d configuration requests and %d writes, want 1 and 0", a, len(w))
	}
	// ...and an answer naming node 2 at epoch 2 sends the same request there at once.
	c.Step(at, 2, cfg(2, 2))
	msgs, _ := c.Drain()
	var w []Envelope
	for _, e := range msgs {
		if m, ok := e.Msg.(*ClientWrite); ok && m.Req == req {
			w = append(w, e)
		}
	}
	if len(w) != 1 || w[0].To != 2 || w[0].Msg.(*ClientWrite).Epoch != 2 {
		t.Fatalf("after epoch 2: %v, want request %d resent to node 2 under epoch 2", w, req)
	}
}
