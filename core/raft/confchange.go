package raft

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// ConfChangeType is the kind of a configuration change. The zero value is invalid.
type ConfChangeType uint8

const (
	AddVoter ConfChangeType = iota + 1
	RemoveVoter
)

func (t ConfChangeType) String() string {
	switch t {
	case AddVoter:
		return "AddVoter"
	case RemoveVoter:
		return "RemoveVoter"
	}
	return fmt.Sprintf("ConfChangeType(%d)", uint8(t))
}

// ConfChange adds or removes one voter.
type ConfChange struct {
	Type ConfChangeType
	ID   uint64
}

const confChangeLen = 9

// Encode returns the change as stored in an EntryConfChange entry.
func (cc ConfChange) Encode() []byte {
	b := make([]byte, confChangeLen)
	b[0] = byte(cc.Type)
	binary.BigEndian.PutUint64(b[1:], cc.ID)
	return b
}

// DecodeConfChange parses the Data of an EntryConfChange entry.
func DecodeConfChange(b []byte) (ConfChange, error) {
	if len(b) != confChangeLen {
		return ConfChange{}, fmt.Errorf("%w: %d bytes, want %d", ErrBadConfChange, len(b), confChangeLen)
	}
	cc := ConfChange{Type: ConfChangeType(b[0]), ID: binary.BigEndian.Uint64(b[1:])}
	if (cc.Type != AddVoter && cc.Type != RemoveVoter) || cc.ID == 0 {
		return ConfChange{}, fmt.Errorf("%w: %v of member %d", ErrBadConfChange, cc.Type, cc.ID)
	}
	return cc, nil
}

// apply returns voters (sorted) changed by cc; a change that does not apply
// (adding a voter twice, removing a non-voter) leaves them as they are.
func (cc ConfChange) apply(voters []uint64) []uint64 {
	i, found := slices.BinarySearch(voters, cc.ID)
	switch {
	case cc.Type == AddVoter && !found:
		return slices.Insert(slices.Clone(voters), i, cc.ID)
	case cc.Type == RemoveVoter && found:
		return slices.Delete(slices.Clone(voters), i, i+1)
	}
	return voters
}

// ProposeConfChange appends a configuration change (leader only). It takes
// effect on each member when applied, and only one may be unapplied at a time
// (ErrConfChangePending). The change must alter the current voters and leave
// at least one.
func (r *Raft) ProposeConfChange(cc ConfChange) (uint64, error) {
	if r.role != Leader {
		return 0, ErrNotLeader
	}
	if r.pendingConfIndex > r.applied {
		return 0, ErrConfChangePending
	}
	if _, err := DecodeConfChange(cc.Encode()); err != nil {
		return 0, err
	}
	next := cc.apply(r.voters)
	if len(next) == len(r.voters) || len(next) == 0 {
		return 0, fmt.Errorf("%w: %v of %d with voters %v", ErrBadConfChange, cc.Type, cc.ID, r.voters)
	}
	idx := r.appendEntry(Entry{Type: EntryConfChange, Data: cc.Encode()})
	r.pendingConfIndex = idx
	r.removingSelf = cc.Type == RemoveVoter && cc.ID == r.id
	r.replicate()
	return idx, nil
}

// applyConfChange makes a committed, applied change take effect. Undecodable
// changes are ignored (identically on every member: the entry is the same).
func (r *Raft) applyConfChange(e Entry) {
	cc, err := DecodeConfChange(e.Data)
	if err != nil {
		return
	}
	r.voters = cc.apply(r.voters)
	if r.role != Leader {
		return
	}
	if !slices.Contains(r.voters, r.id) {
		// Removed: tell the others the commit index (they may not know the
		// change is committed, and need it to stop counting us), then step down.
		r.bcastHeartbeat(0)
		r.becomeFollower(r.term, 0)
		return
	}
	r.syncProgress()
	if r.maybeCommit() {
		r.bcastAppend()
	}
	r.releaseReads()
}

// syncProgress makes the leader's progress list match its voters: new voters
// start probing from the end of the log, removed ones are forgotten.
func (r *Raft) syncProgress() {
	prs := make([]progress, 0, len(r.voters))
	for _, v := range r.voters {
		if v == r.id {
			continue
		}
		if pr := r.progress(v); pr != nil {
			prs = append(prs, *pr)
			continue
		}
		pr := newProgress(v, r.log.lastIndex()+1, r.cfg.MaxInflight)
		pr.recentActive = true // give it an election timeout to answer
		prs = append(prs, pr)
	}
	r.prs = prs
	for i := range r.prs {
		r.maybeSendAppend(&r.prs[i], true)
	}
}

// logRemovesSelf reports whether an unapplied entry removes this member.
func (r *Raft) logRemovesSelf() bool {
	removing := false
	for _, e := range r.log.slice(r.applied+1, r.log.lastIndex()+1) {
		if e.Type != EntryConfChange {
			continue
		}
		if cc, err := DecodeConfChange(e.Data); err == nil && cc.ID == r.id {
			removing = cc.Type == RemoveVoter // the last such change counts
		}
	}
	return removing
}

// votersAt returns the voters in force at index (snapshot index <= index <=
// lastIndex), replaying conf changes after the snapshot.
func (r *Raft) votersAt(index uint64) []uint64 {
	voters := sortedCopy(r.log.snap.Voters)
	for _, e := range r.log.slice(r.log.firstIndex(), index+1) {
		if e.Type != EntryConfChange {
			continue
		}
		if cc, err := DecodeConfChange(e.Data); err == nil {
			voters = cc.apply(voters)
		}
	}
	return voters
}
