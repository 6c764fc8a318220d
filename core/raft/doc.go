// Package raft is a pure, deterministic Raft state machine (Ongaro's
// dissertation, with PreVote and CheckQuorum always on) for Cairn's authority
// cell: 3 or 5 members replicating a small state.
//
// Raft does no I/O and keeps no clock: time arrives as Tick, the network as
// Step, randomness through Config.Rand, and everything Raft wants done leaves
// through Ready. It runs no goroutines and is not safe for concurrent use; one
// driver owns each *Raft.
//
// # Driver contract
//
// The driver loops:
//
//	for r.HasReady() {
//		rd := r.Ready()
//		// 1. Persist, ideally as one atomic batch; otherwise in this order
//		//    (New copes with a crash between any two parts):
//		//    rd.Compacted: the local snapshot becomes rd.Compacted; drop persisted entries <= its Index.
//		//    rd.Snapshot:  the local snapshot becomes rd.Snapshot; drop every persisted entry.
//		//    rd.Entries:   drop persisted entries >= rd.Entries[0].Index, then append rd.Entries.
//		//    rd.Hard:      overwrite the HardState.
//		// 2. Only then send rd.Messages (never before step 1 is durable). They may
//		//    be lost, duplicated or reordered; Raft copes.
//		// 3. Apply rd.Snapshot.Data (if any), then rd.Committed in order; serve
//		//    rd.ReadStates once the application has applied ReadState.Index.
//		// 4. r.Advance(rd)
//	}
//
// Tick, Step, Propose, ProposeConfChange, ReadIndex and Compact may be called at
// any time, including between Ready and Advance; their output accumulates for the
// next Ready. Ready called again before Advance returns the same Ready.
//
// Committed only ever holds entries that this member has already persisted, so
// the order of steps 1 and 3 within a Ready does not matter for them. Committed
// holds every entry type: EntryNormal (the application's commands), EntryNoop
// (skip) and EntryConfChange (Raft applies it itself on Advance; the application
// may look at it). A proposal returned index i while the leader's term was t
// (Status().Term); it committed if Committed holds index i with term t, and it
// was lost if index i shows up with another term.
//
// After a restart the driver rebuilds the application from the persisted
// snapshot (State.Snap.Data, or empty) and New hands every committed entry after
// it out again through Committed.
//
// Compact(i, data) takes the application's state at an index it has applied
// and Advanced past; the snapshot returns in Ready.Compacted for the driver to
// persist (not to apply).
//
// # Membership
//
// A bootstrap member is created with Config.Peers (the same set on every
// bootstrap member) and an empty State: it writes one AddVoter entry per peer
// (term 1, committed) through its first Ready, so a member added later learns
// the initial configuration from the log like any other change. A member
// joining an existing cell starts with an empty State and no Peers; it is no
// voter, never campaigns and only follows a leader until it applies the change
// that adds it. Configuration changes take effect on a member when the driver
// Advances past the Ready whose Committed (or Snapshot) holds them, one change
// at a time: a leader proposes the next only after applying the previous one
// (and after its term's no-op), and a member with a committed change still to
// apply does not campaign. A leader whose log holds its own removal takes no
// more proposals and steps down once it applies the removal.
//
// # Errors
//
// Malformed messages, messages for another member and protocol violations seen
// in messages are reported by Step as errors wrapping ErrBadMessage or
// ErrInvariant and otherwise ignored; nothing in this package panics on input.
package raft
