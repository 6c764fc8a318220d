package core

import "github.com/cairnstore/cairn/core/hist"

// OpClass is the kind of client operation a latency is recorded for.
type OpClass uint8

// Operation classes, in the order of VolumeStats.Latency.
const (
	ClassRead OpClass = iota
	ClassWrite
	ClassFlush
	NumOpClasses
)

func (c OpClass) String() string {
	switch c {
	case ClassRead:
		return "read"
	case ClassWrite:
		return "write"
	case ClassFlush:
		return "flush"
	}
	return "unknown"
}

// VolumeStats is what a node measured for one volume while it was the volume's primary.
// Counters are cumulative since the node started.
type VolumeStats struct {
	Volume  VolumeID
	Primary bool // this node is the volume's primary now
	QoS     QoS  // the limits in force (zero: not throttled)

	Admitted  uint64 // requests admitted (any grant)
	Lent      uint64 // of those, admitted at a discount because the node had headroom
	Throttled uint64 // requests that waited in the volume's queue before admission
	Busy      uint64 // requests refused with StatusBusy because the queue was full
	Queued    int    // requests waiting now
	Credits   int64  // burst credits now
	// Redundancy, as the primary sees it (zero on a node that is not the primary): the
	// in-sync replicas (the primary included) of the RF, and the members being rebuilt (their
	// disk is not the one recorded: wiped or replaced, DESIGN 2.12).
	RF         uint8
	InSync     int
	Rebuilding int

	// Latency from a request's arrival at the primary to its OK reply, per OpClass, in
	// nanoseconds of the node's clock. Copies: the caller owns them.
	Latency [NumOpClasses]*hist.Histogram
}

// NodeStats is a node's QoS and latency snapshot (Node.Stats).
type NodeStats struct {
	Self         Addr
	GlobalRate   int64 // the adaptive node-wide admission rate, ops/s
	GlobalTokens int64 // its bucket's level (negative: debt from guaranteed admissions)
	DiskLatency  int64 // smoothed storage latency the rate adapts to, ns
	StorageQueue int   // storage operations in flight now
	// Catch-up in parts (DESIGN 2.5) since the node started: parts sent as a primary,
	// parts applied as a member, and multi-part catch-ups completed (final Syncs applied).
	SyncPartsSent, SyncPartsApplied, SyncSeriesDone uint64
	// ReMirrorBytes: catch-up data (block images) this node sent, as a primary, to members
	// being rebuilt (DESIGN 2.12), since it started.
	ReMirrorBytes uint64
	// CopyWaits: catch-up answers held back by the node's copy rate (Params.CopyRate).
	CopyWaits uint64
	Volumes   []VolumeStats
}
