package core

import "fmt"

// Message is anything that travels between endpoints. Every message goes through the
// wire codec (Encode/Decode), in the simulator as in production.
type Message interface {
	Kind() Kind
	encode(e *encoder)
	decode(d *decoder)
}

// Kind tags a message on the wire.
type Kind uint8

// Message kinds. Values are part of the wire format: append, never renumber.
const (
	KindClientWrite Kind = iota + 1
	KindClientRead
	KindClientReply
	KindReplicate
	KindHeartbeat
	KindReplicaAck
	KindSync
	KindAuthRequest
	KindAuthReply
	KindHealthCheck
	KindProbe
	KindProbeAck
	KindHealthResult
	KindConfigPush
	KindConfigPushAck
	KindRepairRequest
	KindRepairReply
	KindClientFlush
	KindRaft
	KindSyncPart
	kindEnd
)

// ClientWrite asks the primary to write len(Data)/BlockSize blocks at Block.
type ClientWrite struct {
	Vol    VolumeID
	Epoch  Epoch
	Client uint64
	Req    uint64
	Oldest uint64 // the client's oldest unfinished request: older ones are never applied
	Block  uint64
	Data   []byte
	FUA    bool
}

// ClientRead asks the primary for Count blocks at Block.
type ClientRead struct {
	Vol    VolumeID
	Epoch  Epoch
	Client uint64
	Req    uint64
	Block  uint64
	Count  uint32
}

// ClientFlush asks the primary to answer once every write it has logged so far is
// committed (durable on every in-sync member). Acknowledged writes already are.
type ClientFlush struct {
	Vol    VolumeID
	Epoch  Epoch
	Client uint64
	Req    uint64
}

// ClientReply answers a ClientWrite, ClientRead, or ClientFlush.
type ClientReply struct {
	Vol    VolumeID
	Client uint64
	Req    uint64
	Status Status
	Epoch  Epoch // the replying primary's epoch (OK replies)
	// Data: a read's blocks, allocated for this reply alone; the node keeps no reference
	// to it once sent (netio's local route hands it to the client without a copy).
	Data      []byte
	HasConfig bool
	Config    Config
}

// Replicate carries one entry from the primary to a member.
type Replicate struct {
	Vol       VolumeID
	Config    Config // the sender's configuration (its epoch fences stale members)
	Commit    LSN
	PrevEpoch Epoch // epoch of entry LSN-1 in the primary's log (0 if none)
	Entry     Entry
}

// Heartbeat renews the primary's lease and tells members the configuration.
type Heartbeat struct {
	Vol    VolumeID
	Config Config
	SentAt int64 // primary's local clock
	Commit LSN
	// WantState asks the member to answer with NeedSync and its dirty blocks.
	WantState bool
	// Credits is the primary's burst-credit balance (-1: not throttled), so a member that
	// is promoted continues it instead of starting with a full bucket.
	Credits int64
}

// ReplicaAck reports a member's log position to the primary.
type ReplicaAck struct {
	Vol         VolumeID
	Epoch       Epoch
	Last        LSN // highest durable LSN
	LastEpoch   Epoch
	EchoSentAt  int64 // nonzero: this acks a heartbeat and carries a promise
	NeedSync    bool  // the member's log diverges or lags: send a Sync
	CommitKnown LSN
	// Dirty: with NeedSync, in the first round of a catch-up series: the blocks the member
	// wrote after CommitKnown (at or above SyncCursor only; the blocks below were sent).
	Dirty []uint64
	// DirtyUpto: 0 when Dirty lists every such block; otherwise the list covers only the
	// block numbers below DirtyUpto (a member with too many to list, e.g. after a restart
	// in the middle of a long catch-up: the blocks parts wrote count as dirty).
	DirtyUpto uint64
	// Syncing: the member's block store is part-way through a catch-up series (parts
	// applied, the final Sync not yet): its log position says nothing about its blocks.
	Syncing bool
	// The member's catch-up series (DESIGN 2.5), with NeedSync: the base LSN of the current
	// round, the round number (0: the first, which carries Dirty), the cursor (the next
	// block number the round needs; 0: the round has not started) and the round's start
	// (the primary's applied LSN when the round's first part was read).
	SyncBase   LSN
	SyncRound  uint64
	SyncCursor uint64
	SyncStart  LSN
	// Disk: the sender's disk identity (DESIGN 2.12). A primary counts an ack only from
	// the disk the authority recorded for that replica, and starts over with a member
	// whose disk changed (it was wiped: it holds nothing of what it acknowledged before).
	Disk uint64
}

// Sync brings a member to the primary's state at LSN Upto.
type Sync struct {
	Vol       VolumeID
	Epoch     Epoch
	From      LSN // the member's CommitKnown the delta is relative to
	Upto      LSN
	UptoEpoch Epoch
	Commit    LSN
	Blocks    []BlockImage
	Dedup     []DedupRec
	// The request this Sync answers (echoed: the member accepts only the answer to its
	// current request): the series base it reported and its round.
	ReqBase LSN
	Round   uint64
}

// SyncPart is one bounded part of a catch-up round (DESIGN 2.5): the primary's current
// image of every block in [Cursor, Next) that changed after Base (or, in round 0, that the
// member reported dirty). Parts are applied to the block store but do not move the
// member's log; the round's last part has End set, and the series ends with a Sync.
type SyncPart struct {
	Vol     VolumeID
	Epoch   Epoch
	ReqBase LSN    // the base the member reported (echo)
	Round   uint64 // echo
	Cursor  uint64 // echo: the first block number this part covers
	Base    LSN    // the round's base as the primary used it (0 if ReqBase was beyond its applied LSN)
	Start   LSN    // the round's start: the primary's applied LSN when the round's first part was read
	Upto    LSN    // the primary's applied LSN when this part was read (>= Start)
	Next    uint64 // the first block number after this part
	End     bool   // the round's last part: every block at or above Cursor is covered
	Blocks  []BlockImage
}

// AuthOp is an authority operation.
type AuthOp uint8

// Authority operations.
const (
	OpGetConfig AuthOp = iota + 1
	OpCreateVolume
	OpDeleteVolume
	OpPromote
	OpShrink
	OpGrow
	OpRequestHost
	OpSetQoS      // change a volume's QoS (FromEpoch 0: whatever the epoch)
	OpJoinCell    // a cell member under a new identity (Member) asks to replace its old one
	OpListVolumes // list volumes with ids above Vol (a cursor), in id order, a page at a time
	// opForgetDeleted is internal: the leader proposes it once every host of a deleted
	// volume acknowledged the deletion (Vol, FromEpoch: the deletion's epoch). A request
	// with this op is refused.
	opForgetDeleted
	// OpRenew: the current primary asks for a new epoch with the same configuration (Node:
	// itself). A primary acts only at an epoch issued after its process started (DESIGN
	// 2.4): one that restarted, or learned its role from a push, renews first, so it never
	// creates an entry under an (LSN, epoch) an earlier incarnation may have sent.
	OpRenew
	// OpNodeBeat: a storage node tells the leader it is alive (Node: itself, Disk: its data
	// directory's identity). The answer lists, in List, volumes with an open replica slot
	// this node may take (it asks OpRequestHost for them). Not logged.
	OpNodeBeat
	// OpListNodes: the node table with each node's state as the leader sees it (Nodes).
	OpListNodes
	// OpRemoveNode: the operator says node Node is gone for good: its replicas are replaced
	// at once and it never hosts again.
	OpRemoveNode
	// OpDrainNode: move every replica off node Node while the volumes serve I/O (a new
	// replica is copied and grown first, then the old one leaves); it hosts nothing new.
	OpDrainNode
	// opDropReplica is internal (leader): take replica Node out of volume Vol (compare-and-
	// set on FromEpoch) because its node is removed, draining, or silent past the
	// replacement delay. A request with this op is refused.
	opDropReplica
	// OpJoinNode: a new storage node (Node: itself, with Zone, Address and Disk) joins a
	// running cluster. An id already in use (listed at the cluster's start, removed, or
	// joined with another disk) is refused; the same node joining again is answered OK.
	OpJoinNode
	// OpHandover: the primary of Vol, on a node being removed or drained, has stopped
	// serving and asks the authority to make another in-sync member primary (the leader
	// picks it; compare-and-set on FromEpoch). It asks only when the leader's answer to its
	// beat lists the volume as ready (the volume can spare it).
	OpHandover
)

// Node states in the authority's node table (NodeEntry.State).
const (
	NodeUp       uint8 = iota // heard from within the replacement delay
	NodeDown                  // silent past the leader's beat timeout (its replicas stay until ReplaceAfter)
	NodeDraining              // its replicas are being moved off
	NodeRemoved               // gone for good: hosts nothing
)

// NodeStateName names a node state for people.
func NodeStateName(s uint8) string {
	switch s {
	case NodeUp:
		return "up"
	case NodeDown:
		return "down"
	case NodeDraining:
		return "draining"
	case NodeRemoved:
		return "removed"
	}
	return fmt.Sprintf("state-%d", s)
}

// MaxNodes bounds the storage nodes of a cluster (the node table, an OpListNodes answer).
const MaxNodes = 1024

// NodeEntry is one node in an OpListNodes answer.
type NodeEntry struct {
	Node     Addr
	Zone     uint32
	State    uint8
	Disk     uint64 // the identity its last beat carried (0: not heard by this leader)
	SilentMs uint64 // since its last beat reached this leader
	Replicas uint32 // replicas it hosts
	Address  string // HOST:PORT of a node that joined the running cluster (empty: listed at its start)
}

// MaxListVolumes bounds the volumes one OpListVolumes answer carries (More says whether
// more follow): a page of 256 is at most ~70 KiB encoded, far below a transport frame.
const MaxListVolumes = 256

// MaxVolumeName bounds a volume's name (see CheckVolumeName).
const MaxVolumeName = 64

// AuthRequest asks the authority for a configuration change or read.
type AuthRequest struct {
	Op        AuthOp
	ReqID     uint64
	Vol       VolumeID
	FromEpoch Epoch
	Node      Addr
	Blocks    uint64 // create
	RF        uint8  // create
	QoS       QoS    // create, set-qos
	Member    uint64 // join-cell: the member's new Raft identity
	// Name: create: the volume's name to store (CheckVolumeName; empty for a numbered
	// volume). Delete, set-qos: if not empty, the change applies only to a volume stored
	// under this name (NotFound otherwise), so a name that hashes to another volume's id
	// never changes that volume.
	Name string
	// Disk: promote: the candidate's disk identity (it must be the one recorded); grow: the
	// member's (recorded with it); renew: the primary's own (DESIGN 2.12).
	Disk uint64
	// Disks: renew: the disk each replica reported to the primary, parallel to the
	// configuration's replicas (0: not heard). A replica with no recorded disk gets the one
	// reported, or leaves the in-sync set; one that reports another disk than recorded
	// leaves it too.
	Disks []uint64
	// Zone, Address: join-node: the joining node's zone and the HOST:PORT its peers reach
	// it at (at most MaxAddressLen bytes). Wiped: join-node: the node lost its disk and
	// comes back under the same id, zone and address with a new one (--wiped).
	Zone    uint32
	Address string
	Wiped   bool
}

// MaxAddressLen bounds a node's HOST:PORT in the node table.
const MaxAddressLen = 256

// AuthReply answers an AuthRequest.
type AuthReply struct {
	Op     AuthOp
	ReqID  uint64
	Status Status
	Config Config
	Leader Addr   // with StatusNotLeader: the member believed to lead (0: unknown)
	Name   string // create, get (OK or Conflict): the volume's stored name
	List   []VolumeEntry
	More   bool        // list: volumes with higher ids follow (ask again from the last id listed)
	Nodes  []NodeEntry // OpListNodes
}

// VolumeEntry is one volume in an OpListVolumes answer.
type VolumeEntry struct {
	Name   string
	Config Config
}

// HealthCheck asks the authority to probe a volume's primary for a member.
type HealthCheck struct {
	Vol   VolumeID
	Epoch Epoch
}

// Probe is the authority's independent-path liveness check of a primary.
type Probe struct {
	Vol   VolumeID
	Nonce uint64
}

// ProbeAck answers a Probe.
type ProbeAck struct {
	Vol   VolumeID
	Nonce uint64
}

// HealthResult answers a HealthCheck.
type HealthResult struct {
	Vol     VolumeID
	Epoch   Epoch
	Healthy bool
	Config  Config
}

// ConfigPush tells a replica host about a (new) configuration. Deleted: the volume was
// deleted; Config is its tombstone (the epoch after its last one, the hosts that held it).
// The host forgets the volume and frees its blocks, and acknowledges once that is durable.
type ConfigPush struct {
	Config  Config
	Deleted bool
}

// ConfigPushAck acknowledges a ConfigPush.
type ConfigPushAck struct {
	Vol   VolumeID
	Epoch Epoch
}

// RepairRequest asks another replica for a block this replica found corrupt, at the LSN
// that last wrote it (only committed versions are repaired: they are identical everywhere).
type RepairRequest struct {
	Vol   VolumeID
	Block uint64
	LSN   LSN
}

// RepairReply answers a RepairRequest; OK only when the sender holds that version intact.
type RepairReply struct {
	Vol   VolumeID
	Block uint64
	LSN   LSN
	OK    bool
	Data  []byte
}

func (*RepairRequest) Kind() Kind { return KindRepairRequest }
func (*RepairReply) Kind() Kind   { return KindRepairReply }

func (*ClientWrite) Kind() Kind   { return KindClientWrite }
func (*ClientRead) Kind() Kind    { return KindClientRead }
func (*ClientFlush) Kind() Kind   { return KindClientFlush }
func (*ClientReply) Kind() Kind   { return KindClientReply }
func (*Replicate) Kind() Kind     { return KindReplicate }
func (*Heartbeat) Kind() Kind     { return KindHeartbeat }
func (*ReplicaAck) Kind() Kind    { return KindReplicaAck }
func (*Sync) Kind() Kind          { return KindSync }
func (*SyncPart) Kind() Kind      { return KindSyncPart }
func (*AuthRequest) Kind() Kind   { return KindAuthRequest }
func (*AuthReply) Kind() Kind     { return KindAuthReply }
func (*HealthCheck) Kind() Kind   { return KindHealthCheck }
func (*Probe) Kind() Kind         { return KindProbe }
func (*ProbeAck) Kind() Kind      { return KindProbeAck }
func (*HealthResult) Kind() Kind  { return KindHealthResult }
func (*ConfigPush) Kind() Kind    { return KindConfigPush }
func (*ConfigPushAck) Kind() Kind { return KindConfigPushAck }

func newMessage(k Kind) Message {
	switch k {
	case KindClientWrite:
		return &ClientWrite{}
	case KindClientRead:
		return &ClientRead{}
	case KindClientReply:
		return &ClientReply{}
	case KindReplicate:
		return &Replicate{}
	case KindHeartbeat:
		return &Heartbeat{}
	case KindReplicaAck:
		return &ReplicaAck{}
	case KindSync:
		return &Sync{}
	case KindSyncPart:
		return &SyncPart{}
	case KindAuthRequest:
		return &AuthRequest{}
	case KindAuthReply:
		return &AuthReply{}
	case KindHealthCheck:
		return &HealthCheck{}
	case KindProbe:
		return &Probe{}
	case KindProbeAck:
		return &ProbeAck{}
	case KindHealthResult:
		return &HealthResult{}
	case KindConfigPush:
		return &ConfigPush{}
	case KindConfigPushAck:
		return &ConfigPushAck{}
	case KindRepairRequest:
		return &RepairRequest{}
	case KindRepairReply:
		return &RepairReply{}
	case KindClientFlush:
		return &ClientFlush{}
	case KindRaft:
		return &RaftMsg{}
	}
	return nil
}
