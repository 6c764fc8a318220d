package core

import "github.com/cairnstore/cairn/core/raft"

// RaftMsg carries one message of the authority cell's consensus between members. Raft
// member IDs are the members' addresses.
type RaftMsg struct{ M raft.Message }

func (*RaftMsg) Kind() Kind { return KindRaft }

func (m *RaftMsg) encode(e *encoder) {
	r := &m.M
	e.u64(uint64(r.Type))
	e.u64(r.From)
	e.u64(r.To)
	e.u64(r.Term)
	e.u64(r.LogTerm)
	e.u64(r.Index)
	e.raftEntries(r.Entries)
	e.u64(r.Commit)
	e.bool(r.Reject)
	e.u64(r.RejectHint)
	e.u64(r.Context)
	e.bool(r.Snapshot != nil)
	if r.Snapshot != nil {
		e.raftSnapshot(r.Snapshot)
	}
}

func (m *RaftMsg) decode(d *decoder) {
	r := &m.M
	r.Type = raft.MsgType(d.u8())
	r.From, r.To, r.Term, r.LogTerm, r.Index = d.u64(), d.u64(), d.u64(), d.u64(), d.u64()
	r.Entries = d.raftEntries()
	r.Commit = d.u64()
	r.Reject = d.bool()
	r.RejectHint, r.Context = d.u64(), d.u64()
	if d.bool() {
		r.Snapshot = d.raftSnapshot()
	}
}

func (e *encoder) raftEntries(es []raft.Entry) {
	e.u64(uint64(len(es)))
	for i := range es {
		e.u64(es[i].Index)
		e.u64(es[i].Term)
		e.u64(uint64(es[i].Type))
		e.bytes(es[i].Data)
	}
}

func (d *decoder) raftEntries() []raft.Entry {
	n := d.length(maxList, 4)
	if n == 0 {
		return nil
	}
	es := make([]raft.Entry, n)
	for i := range es {
		es[i] = raft.Entry{Index: d.u64(), Term: d.u64(), Type: raft.EntryType(d.u8()), Data: d.bytes()}
	}
	return es
}

func (e *encoder) raftSnapshot(s *raft.Snapshot) {
	e.u64(s.Index)
	e.u64(s.Term)
	e.u64s(s.Voters)
	e.bytes(s.Data)
}

func (d *decoder) raftSnapshot() *raft.Snapshot {
	return &raft.Snapshot{Index: d.u64(), Term: d.u64(), Voters: d.u64s(), Data: d.bytes()}
}
