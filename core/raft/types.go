package raft

import (
	"errors"
	"fmt"
)

// Errors returned by the API. Step wraps ErrBadMessage or ErrInvariant.
var (
	// ErrNotLeader: Propose, ProposeConfChange or ReadIndex on a member that is
	// not the leader. Status().Lead names the leader this member follows, if any.
	ErrNotLeader = errors.New("raft: not the leader")
	// ErrConfChangePending: a configuration change is still unapplied.
	ErrConfChangePending = errors.New("raft: a configuration change is pending")
	// ErrBadConfChange: the change is malformed or a no-op for the current voters.
	ErrBadConfChange = errors.New("raft: invalid configuration change")
	// ErrBadMessage: Step got a malformed message or one addressed to another member.
	ErrBadMessage = errors.New("raft: malformed message")
	// ErrInvariant: a message or call would break a protocol invariant (e.g. two
	// leaders in one term, or a committed entry being overwritten). The state is
	// left unchanged.
	ErrInvariant = errors.New("raft: protocol invariant violated")
	// ErrCompacted: Compact at or below the current snapshot.
	ErrCompacted = errors.New("raft: already compacted")
	// ErrNotApplied: Compact beyond what the application has applied (Advanced).
	ErrNotApplied = errors.New("raft: index not applied yet")
	// ErrNoReady: Advance without an outstanding Ready, or with another Ready.
	ErrNoReady = errors.New("raft: Advance does not match the outstanding Ready")
	// ErrBadState: New got a State that is not a consistent Raft state.
	ErrBadState = errors.New("raft: invalid persisted state")
)

// EntryType says how the application treats an entry.
type EntryType uint8

const (
	EntryNormal     EntryType = iota // Data is an application command
	EntryNoop                        // appended by a new leader; no data
	EntryConfChange                  // Data is an encoded ConfChange
)

func (t EntryType) valid() bool { return t <= EntryConfChange }

func (t EntryType) String() string {
	switch t {
	case EntryNormal:
		return "Normal"
	case EntryNoop:
		return "Noop"
	case EntryConfChange:
		return "ConfChange"
	}
	return fmt.Sprintf("EntryType(%d)", uint8(t))
}

// Entry is one log entry. Raft keeps references to Data (from Propose and from
// messages); nobody may modify it afterwards.
type Entry struct {
	Index, Term uint64
	Type        EntryType
	Data        []byte
}

// HardState is what must be durable before any message of the same Ready is sent.
type HardState struct {
	Term   uint64
	Vote   uint64
	Commit uint64
}

// Snapshot is the application's state at Index (Data) plus the Raft metadata
// needed to continue the log after it.
type Snapshot struct {
	Index, Term uint64
	Voters      []uint64 // the voter set in force at Index (sorted)
	Data        []byte   // the application's state at Index
}

// State is what the driver restored from disk. Entries follow Snap (entries at
// or below Snap.Index are tolerated and dropped).
type State struct {
	Hard    HardState
	Snap    *Snapshot
	Entries []Entry
}

func (s State) empty() bool {
	return s.Snap == nil && len(s.Entries) == 0 && s.Hard == HardState{}
}

// MsgType is the kind of a Message. The zero value is invalid.
type MsgType uint8

const (
	MsgPreVote MsgType = iota + 1
	MsgPreVoteResp
	MsgVote
	MsgVoteResp
	MsgApp
	MsgAppResp
	MsgHeartbeat
	MsgHeartbeatResp
	MsgSnap
)

func (t MsgType) valid() bool { return t >= MsgPreVote && t <= MsgSnap }

func (t MsgType) String() string {
	switch t {
	case MsgPreVote:
		return "MsgPreVote"
	case MsgPreVoteResp:
		return "MsgPreVoteResp"
	case MsgVote:
		return "MsgVote"
	case MsgVoteResp:
		return "MsgVoteResp"
	case MsgApp:
		return "MsgApp"
	case MsgAppResp:
		return "MsgAppResp"
	case MsgHeartbeat:
		return "MsgHeartbeat"
	case MsgHeartbeatResp:
		return "MsgHeartbeatResp"
	case MsgSnap:
		return "MsgSnap"
	}
	return fmt.Sprintf("MsgType(%d)", uint8(t))
}

// Message is one Raft message. Raft keeps references to Entries, their Data and
// Snapshot; nobody may modify them once handed to Step or received in a Ready.
type Message struct {
	Type     MsgType
	From, To uint64
	Term     uint64
	// MsgApp: the entry before Entries. Votes: the candidate's last entry.
	// MsgAppResp: the index acknowledged, or (Reject) the MsgApp's Index rejected;
	// on reject LogTerm is the term at RejectHint.
	LogTerm, Index uint64
	Entries        []Entry
	Commit         uint64
	Reject         bool
	// RejectHint (MsgAppResp with Reject): the follower's best guess of the last
	// index it may share with the leader: at most its last index, and at most the
	// rejected Index, moved back past entries whose term exceeds the MsgApp's LogTerm.
	RejectHint uint64
	Context    uint64 // read-index round (MsgHeartbeat, MsgHeartbeatResp); 0: none
	Snapshot   *Snapshot
}

// ReadState answers ReadIndex(Ctx): the read is linearizable once the
// application has applied Index.
type ReadState struct {
	Index uint64
	Ctx   uint64
}

// Role is a member's role in its current term.
type Role uint8

const (
	Follower Role = iota
	PreCandidate
	Candidate
	Leader
)

func (r Role) String() string {
	switch r {
	case Follower:
		return "Follower"
	case PreCandidate:
		return "PreCandidate"
	case Candidate:
		return "Candidate"
	case Leader:
		return "Leader"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// Status is a snapshot of a member's volatile and persistent state.
type Status struct {
	ID, Term, Lead, Commit, Applied, LastIndex, FirstIndex uint64
	Role                                                   Role
	Voters                                                 []uint64 // sorted; the applied configuration
}
