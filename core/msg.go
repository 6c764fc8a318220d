package core

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
	Vol       VolumeID
	Client    uint64
	Req       uint64
	Status    Status
	Epoch     Epoch // the replying primary's epoch (OK replies)
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
	Dirty       []uint64 // with NeedSync: blocks the member wrote after CommitKnown
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
	OpSetQoS   // change a volume's QoS (FromEpoch 0: whatever the epoch)
	OpJoinCell // a cell member under a new identity (Member) asks to replace its old one
)

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
}

// AuthReply answers an AuthRequest.
type AuthReply struct {
	Op     AuthOp
	ReqID  uint64
	Status Status
	Config Config
	Leader Addr // with StatusNotLeader: the member believed to lead (0: unknown)
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

// ConfigPush tells a replica host about a (new) configuration.
type ConfigPush struct{ Config Config }

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
