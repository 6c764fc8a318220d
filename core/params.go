package core

import (
	"fmt"
	"slices"

	"github.com/cairnstore/cairn/core/qos"
)

// Times are nanoseconds on the node's own clock.
const (
	Millisecond int64 = 1_000_000
	Second      int64 = 1_000 * Millisecond
)

// NodeInfo names a storage node and its zone (for the authority's placement).
type NodeInfo struct {
	Addr Addr
	Zone uint32
}

// Params configures a node.
type Params struct {
	Self Addr
	Zone uint32
	// Authorities are the authority cell's members (one per zone, 3 or 5; 1 for tests):
	// requests go to the one believed to lead, and move on when it does not answer.
	Authorities []Addr
	Nodes       []NodeInfo // all storage nodes (used by the authority to place replicas)

	HeartbeatInterval int64 // primary -> members
	Lease             int64 // L: a member promises not to seek promotion for L after each heartbeat
	DriftPPM          int64 // ρ in parts per million: bound on clock rate error
	LeaseMargin       int64 // subtracted from every lease
	FailTimeout       int64 // a member that hears nothing from its primary for this long runs a health check
	ShrinkTimeout     int64 // a primary shrinks out a member that has not acked for this long
	ProbeTimeout      int64 // the authority's health probe
	RetransmitTimeout int64 // resend replicates / syncs / authority requests
	MaxPending        int   // uncommitted writes per volume before Busy
	CheckpointEvery   int   // journal records between checkpoints
	QueueDepth        int   // requests a throttled volume holds waiting for tokens before Busy
	QueueBytes        int64 // and write payload bytes it holds (a bound on memory; one request always fits)
	RaftTick          int64 // the authority cell's Raft tick: heartbeats every tick, elections after 10–20
	// MaxSyncBlocks bounds the blocks one catch-up message carries (a Sync or a SyncPart):
	// a member further behind is brought up to date in parts (DESIGN 2.5). At most
	// MaxDataBytes/BlockSize, so a message always fits a transport frame.
	MaxSyncBlocks int

	// Replacement (DESIGN 2.13). NodeBeat: how often a node tells the authority it is
	// alive. ReplaceAfter: a replica whose node is silent this long is replaced on another
	// node. GrantTimeout: a replica slot's grant whose holder never held data is given up
	// after this much silence. MaxReMirrors: volumes being copied to a new replica at once,
	// cluster-wide (the storm guard).
	NodeBeat     int64
	ReplaceAfter int64
	GrantTimeout int64
	MaxReMirrors int
	// CopyRate: bytes per second of block images this node sends as a primary, to every
	// member it copies or catches up together (re-mirroring and catch-up share it); 0: no
	// limit. A part that would exceed it waits (the member asks again).
	CopyRate int64

	// Join: this node is new to a running cluster (not in the others' Nodes): it asks the
	// authority to admit it (OpJoinNode, with Zone and Address: the HOST:PORT its peers
	// reach it at) before anything else, and stops (Output.Fatal) if its id is in use.
	Join    bool
	Address string

	// Wiped: this node's disk was lost (or it is a new machine for an old address). An
	// authority member then joins the cell under a new identity instead of bootstrapping it.
	Wiped bool

	// Disk is the identity of this node's data directory (nonzero, random when the directory
	// was created; a wiped or replaced disk gets a new one). A replica is (node, disk): the
	// authority records the disk of every replica (DESIGN 2.12).
	Disk uint64

	// Global is the node-wide adaptive admission bucket (spec section 6).
	Global qos.GlobalConfig
}

// DefaultParams returns production-sane timings.
func DefaultParams(self Addr, zone uint32, authorities []Addr, nodes []NodeInfo) Params {
	return Params{
		Self: self, Zone: zone, Authorities: authorities, Nodes: nodes,
		HeartbeatInterval: 50 * Millisecond,
		Lease:             800 * Millisecond,
		DriftPPM:          1000,
		LeaseMargin:       10 * Millisecond,
		FailTimeout:       1000 * Millisecond,
		ShrinkTimeout:     500 * Millisecond,
		ProbeTimeout:      300 * Millisecond,
		RetransmitTimeout: 100 * Millisecond,
		MaxPending:        256,
		CheckpointEvery:   512,
		QueueDepth:        64,
		QueueBytes:        64 << 20,
		RaftTick:          50 * Millisecond,
		MaxSyncBlocks:     1024, // 4 MiB of data per message
		NodeBeat:          Second,
		ReplaceAfter:      5 * 60 * Second,
		GrantTimeout:      30 * Second,
		MaxReMirrors:      4,
		CopyRate:          256 << 20,
		Global:            qos.DefaultGlobalConfig(),
	}
}

// Validate checks the timing relations the safety argument needs.
func (p *Params) Validate() error {
	switch {
	case p.Self == 0:
		return fmt.Errorf("params: Self must be nonzero")
	case p.Disk == 0:
		return fmt.Errorf("params: Disk (the data directory's identity) must be nonzero")
	case len(p.Authorities) == 0 || len(p.Authorities) > 7 || slices.Contains(p.Authorities, 0):
		return fmt.Errorf("params: Authorities must name 1 to 7 nonzero members (got %v)", p.Authorities)
	case p.RaftTick <= 0:
		return fmt.Errorf("params: RaftTick must be positive")
	case p.HeartbeatInterval <= 0 || p.Lease <= 0 || p.FailTimeout <= 0 || p.ShrinkTimeout <= 0 || p.ProbeTimeout <= 0 || p.RetransmitTimeout <= 0:
		return fmt.Errorf("params: every timeout must be positive")
	case p.DriftPPM < 0 || p.DriftPPM >= 100_000:
		return fmt.Errorf("params: DriftPPM %d out of range [0, 100000)", p.DriftPPM)
	case p.LeaseMargin < 0:
		return fmt.Errorf("params: LeaseMargin %d must not be negative (it would lengthen leases)", p.LeaseMargin)
	case p.Lease > 1<<50 || p.HeartbeatInterval > 1<<50:
		return fmt.Errorf("params: Lease and HeartbeatInterval must be below 2^50 ns")
	case p.HeartbeatInterval*2 >= p.Lease:
		return fmt.Errorf("params: Lease %d must exceed two heartbeat intervals (%d)", p.Lease, p.HeartbeatInterval)
	case p.MaxPending <= 0 || p.CheckpointEvery <= 0:
		return fmt.Errorf("params: MaxPending and CheckpointEvery must be positive")
	case p.QueueDepth <= 0 || p.QueueDepth > 1<<16:
		return fmt.Errorf("params: QueueDepth %d outside 1..65536", p.QueueDepth)
	case p.MaxSyncBlocks <= 0 || p.MaxSyncBlocks > MaxDataBytes/BlockSize:
		return fmt.Errorf("params: MaxSyncBlocks %d outside 1..%d", p.MaxSyncBlocks, MaxDataBytes/BlockSize)
	case p.CopyRate < 0:
		return fmt.Errorf("params: CopyRate %d must not be negative", p.CopyRate)
	case p.NodeBeat <= 0 || p.ReplaceAfter <= 0 || p.GrantTimeout <= 0 || p.MaxReMirrors <= 0:
		return fmt.Errorf("params: NodeBeat, ReplaceAfter, GrantTimeout and MaxReMirrors must be positive")
	case p.ReplaceAfter < 5*p.NodeBeat || p.GrantTimeout < 5*p.NodeBeat:
		return fmt.Errorf("params: ReplaceAfter and GrantTimeout must be at least five beats (%d)", 5*p.NodeBeat)
	case p.Join && (p.Address == "" || len(p.Address) > MaxAddressLen):
		return fmt.Errorf("params: a joining node needs its Address (HOST:PORT, at most %d bytes)", MaxAddressLen)
	case p.QueueBytes < BlockSize:
		return fmt.Errorf("params: QueueBytes %d below one block", p.QueueBytes)
	}
	if err := p.Global.Validate(); err != nil {
		return fmt.Errorf("params: %w", err)
	}
	return nil
}

// leaseFrom is how long a primary may rely on a promise made in answer to a heartbeat
// it sent at sentAt: L·(1-2ρ) − margin on its own clock, which is never longer in real
// time than L on the member's clock when both clocks drift by at most ρ.
func (p *Params) leaseFrom(sentAt int64) int64 {
	return sentAt + p.Lease - ((p.Lease+999_999)/1_000_000)*2*p.DriftPPM - p.LeaseMargin
}
