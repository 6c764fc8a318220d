package core

import (
	"testing"

	"github.com/cairnstore/cairn/core/raft"
)

// A snapshot from the leader replaces the member's whole log: entries past its index that
// the member wrote as a deposed leader (an older term) must not survive it, or the member
// cannot restart ("does not follow"). Found by the simulator, seed 10000418.
func TestCellDiskSnapshotDropsEveryEntry(t *testing.T) {
	var d cellDisk
	var ents []raft.Entry
	for i := uint64(1); i <= 26; i++ {
		ents = append(ents, raft.Entry{Index: i, Term: 3})
	}
	d.add(&raft.HardState{Term: 3}, nil, ents)
	d.add(&raft.HardState{Term: 4, Commit: 25}, &raft.Snapshot{Index: 25, Term: 4}, nil)
	if len(d.entries) != 0 {
		t.Fatalf("entries kept after the snapshot: %v", d.entries)
	}
	d.add(nil, nil, []raft.Entry{{Index: 26, Term: 4}, {Index: 27, Term: 4}})
	if len(d.entries) != 2 || d.entries[0].Term != 4 {
		t.Fatalf("entries after the snapshot: %v", d.entries)
	}
	// A local compaction keeps what follows its index.
	d.compactTo(&raft.Snapshot{Index: 26, Term: 4})
	if len(d.entries) != 1 || d.entries[0].Index != 27 {
		t.Fatalf("entries after a compaction at 26: %v", d.entries)
	}
}
