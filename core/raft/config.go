package raft

import (
	"errors"
	"fmt"
	"slices"
)

// Rand supplies election jitter (the node passes its seeded PRNG).
type Rand interface{ Uint64() uint64 }

// maxTicks bounds the tick settings so that tick arithmetic cannot overflow.
const maxTicks = 1 << 20

// maxLimit bounds MaxMsgEntries and MaxInflight.
const maxLimit = 1 << 16

// Config configures one member.
type Config struct {
	ID uint64 // this member; nonzero
	// Peers are the voters at bootstrap (must include ID). Used only when the
	// State given to New is empty; a member joining an existing cell has none.
	Peers []uint64
	// A follower waits ElectionTicks + rand[0, ElectionTicks) ticks without
	// hearing from a leader before it starts a pre-vote; a leader steps down if
	// it has not heard from a quorum within ElectionTicks. At least
	// 2*HeartbeatTicks+1, so that a healthy leader's heartbeats keep followers
	// in lease.
	ElectionTicks  int
	HeartbeatTicks int // a leader heartbeats every HeartbeatTicks ticks; >= 1
	MaxMsgEntries  int // entries per MsgApp (e.g. 64)
	MaxInflight    int // unacknowledged MsgApps per follower (e.g. 16)
	Rand           Rand
}

// Validate reports whether c can run.
func (c Config) Validate() error {
	switch {
	case c.ID == 0:
		return errors.New("raft: Config.ID must be nonzero")
	case c.HeartbeatTicks < 1:
		return fmt.Errorf("raft: Config.HeartbeatTicks must be >= 1, got %d", c.HeartbeatTicks)
	case c.ElectionTicks < 2*c.HeartbeatTicks+1:
		return fmt.Errorf("raft: Config.ElectionTicks must be >= 2*HeartbeatTicks+1 = %d, got %d",
			2*c.HeartbeatTicks+1, c.ElectionTicks)
	case c.ElectionTicks > maxTicks:
		return fmt.Errorf("raft: Config.ElectionTicks must be <= %d, got %d", maxTicks, c.ElectionTicks)
	case c.MaxMsgEntries < 1 || c.MaxMsgEntries > maxLimit:
		return fmt.Errorf("raft: Config.MaxMsgEntries must be in [1, %d], got %d", maxLimit, c.MaxMsgEntries)
	case c.MaxInflight < 1 || c.MaxInflight > maxLimit:
		return fmt.Errorf("raft: Config.MaxInflight must be in [1, %d], got %d", maxLimit, c.MaxInflight)
	case c.Rand == nil:
		return errors.New("raft: Config.Rand must be set")
	}
	if len(c.Peers) == 0 {
		return nil
	}
	if err := checkVoters(c.Peers); err != nil {
		return fmt.Errorf("raft: Config.Peers: %w", err)
	}
	if !slices.Contains(c.Peers, c.ID) {
		return fmt.Errorf("raft: Config.Peers %v must include Config.ID %d", c.Peers, c.ID)
	}
	return nil
}

// checkVoters rejects zero IDs and duplicates.
func checkVoters(ids []uint64) error {
	s := sortedCopy(ids)
	for i, id := range s {
		if id == 0 {
			return errors.New("member ID 0")
		}
		if i > 0 && s[i-1] == id {
			return fmt.Errorf("duplicate member ID %d", id)
		}
	}
	return nil
}

func sortedCopy(ids []uint64) []uint64 {
	s := slices.Clone(ids)
	slices.Sort(s)
	return s
}
