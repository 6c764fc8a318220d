package core

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Wire format: one version byte, one kind byte, then the body's fields in declaration
// order: integers as uvarints, booleans as one byte, byte strings and lists as a uvarint
// length then the elements. Decoding checks every length against the remaining bytes
// and the limits below, and rejects trailing bytes.
const wireVersion = 3

// WireVersion is the first byte of every encoded message (2: configurations carry disk
// identities; 3: authority answers carry the node table).
const WireVersion = wireVersion

// Limits on decoded sizes: a hostile or corrupt frame cannot make the decoder allocate more.
const (
	MaxDataBytes = 8 << 20 // one message's block data
	maxList      = 1 << 20 // elements of any list
)

// ErrDecode is wrapped by every decoding error.
var ErrDecode = errors.New("core: bad message")

// Encode appends m's wire form to dst.
func Encode(dst []byte, m Message) []byte {
	e := encoder{b: append(dst, wireVersion, byte(m.Kind()))}
	m.encode(&e)
	return e.b
}

// Decode parses one message that occupies all of b.
func Decode(b []byte) (Message, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrDecode, len(b))
	}
	if b[0] != wireVersion {
		return nil, fmt.Errorf("%w: version %d", ErrDecode, b[0])
	}
	m := newMessage(Kind(b[1]))
	if m == nil {
		return nil, fmt.Errorf("%w: unknown kind %d", ErrDecode, b[1])
	}
	d := decoder{b: b[2:]}
	m.decode(&d)
	if d.err != nil {
		return nil, fmt.Errorf("%w: kind %d: %v", ErrDecode, b[1], d.err)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: kind %d: %d trailing bytes", ErrDecode, b[1], len(d.b))
	}
	return m, nil
}

type encoder struct{ b []byte }

func (e *encoder) u64(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) i64(v int64)  { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}
func (e *encoder) bytes(v []byte) { e.u64(uint64(len(v))); e.b = append(e.b, v...) }
func (e *encoder) str(v string)   { e.u64(uint64(len(v))); e.b = append(e.b, v...) }
func (e *encoder) addrs(v []Addr) {
	e.u64(uint64(len(v)))
	for _, a := range v {
		e.u64(uint64(a))
	}
}
func (e *encoder) u64s(v []uint64) {
	e.u64(uint64(len(v)))
	for _, a := range v {
		e.u64(a)
	}
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
	d.b = nil
}

func (d *decoder) u64() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("truncated or overlong integer")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) i64() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("truncated or overlong integer")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) u32() uint32 {
	v := d.u64()
	if v > 1<<32-1 {
		d.fail("value %d overflows 32 bits", v)
	}
	return uint32(v)
}

func (d *decoder) u8() uint8 {
	v := d.u64()
	if v > 255 {
		d.fail("value %d overflows 8 bits", v)
	}
	return uint8(v)
}

func (d *decoder) bool() bool {
	if d.err != nil {
		return false
	}
	if len(d.b) < 1 {
		d.fail("truncated bool")
		return false
	}
	v := d.b[0]
	d.b = d.b[1:]
	if v > 1 {
		d.fail("bool byte %d", v)
	}
	return v == 1
}

// length reads a list length, each element taking at least minSize bytes.
func (d *decoder) length(limit int, minSize int) int {
	n := d.u64()
	if d.err != nil {
		return 0
	}
	if n > uint64(limit) || n*uint64(minSize) > uint64(len(d.b)) {
		d.fail("length %d exceeds limit or remaining %d bytes", n, len(d.b))
		return 0
	}
	return int(n)
}

func (d *decoder) bytes() []byte {
	n := d.length(MaxDataBytes, 1)
	if d.err != nil || n == 0 {
		return nil
	}
	v := make([]byte, n)
	copy(v, d.b[:n])
	d.b = d.b[n:]
	return v
}

// name reads a volume name: at most MaxVolumeName bytes, checked by CheckVolumeName.
func (d *decoder) name() string {
	n := d.length(MaxVolumeName, 1)
	if d.err != nil || n == 0 {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	if err := CheckVolumeName(s); err != nil {
		d.fail("%v", err)
		return ""
	}
	return s
}

// address reads a node's HOST:PORT (at most MaxAddressLen printable ASCII bytes).
func (d *decoder) address() string {
	n := d.length(MaxAddressLen, 1)
	if d.err != nil || n == 0 {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			d.fail("address %q: not printable ASCII", s)
			return ""
		}
	}
	return s
}

func (d *decoder) addrs() []Addr {
	n := d.length(maxList, 1)
	if n == 0 {
		return nil
	}
	v := make([]Addr, n)
	for i := range v {
		v[i] = Addr(d.u32())
	}
	return v
}

func (d *decoder) u64s() []uint64 {
	n := d.length(maxList, 1)
	if n == 0 {
		return nil
	}
	v := make([]uint64, n)
	for i := range v {
		v[i] = d.u64()
	}
	return v
}

func (e *encoder) config(c *Config) {
	e.u64(uint64(c.Volume))
	e.u64(c.Blocks)
	e.u64(uint64(c.RF))
	e.u64(uint64(c.Epoch))
	e.u64(uint64(c.Primary))
	e.addrs(c.InSync)
	e.addrs(c.Replicas)
	e.qos(&c.QoS)
	e.u64s(c.Disks)
}

func (e *encoder) qos(q *QoS) {
	e.i64(q.IOPS)
	e.i64(q.BurstIOPS)
	e.i64(q.BurstCredits)
	e.i64(q.MBps)
}

func (d *decoder) qos(q *QoS) {
	q.IOPS, q.BurstIOPS, q.BurstCredits, q.MBps = d.limit(), d.limit(), d.limit(), d.limit()
}

// limit decodes a QoS figure, at most 2^40 in magnitude (the authority refuses bad ones
// with a reason; the decoder only bounds them).
func (d *decoder) limit() int64 {
	v := d.i64()
	if v > 1<<40 || v < -(1<<40) {
		d.fail("QoS figure %d beyond ±2^40", v)
		return 0
	}
	return v
}

func (d *decoder) config(c *Config) {
	c.Volume = VolumeID(d.u32())
	c.Blocks = d.u64()
	c.RF = d.u8()
	c.Epoch = Epoch(d.u64())
	c.Primary = Addr(d.u32())
	c.InSync = d.addrs()
	c.Replicas = d.addrs()
	d.qos(&c.QoS)
	c.Disks = d.u64s()
}

func (e *encoder) entry(x *Entry) {
	e.u64(uint64(x.LSN))
	e.u64(uint64(x.Epoch))
	e.u64(x.Client)
	e.u64(x.Req)
	e.u64(x.Oldest)
	e.u64(x.Block)
	e.bytes(x.Data)
}

func (d *decoder) entry(x *Entry) {
	x.LSN = LSN(d.u64())
	x.Epoch = Epoch(d.u64())
	x.Client = d.u64()
	x.Req = d.u64()
	x.Oldest = d.u64()
	x.Block = d.u64()
	x.Data = d.bytes()
	if len(x.Data)%BlockSize != 0 {
		d.fail("entry data of %d bytes is not whole blocks", len(x.Data))
	}
}

func (m *ClientWrite) encode(e *encoder) {
	e.u64(uint64(m.Vol))
	e.u64(uint64(m.Epoch))
	e.u64(m.Client)
	e.u64(m.Req)
	e.u64(m.Oldest)
	e.u64(m.Block)
	e.bytes(m.Data)
	e.bool(m.FUA)
}

func (m *ClientWrite) decode(d *decoder) {
	m.Vol = VolumeID(d.u32())
	m.Epoch = Epoch(d.u64())
	m.Client = d.u64()
	m.Req = d.u64()
	m.Oldest = d.u64()
	m.Block = d.u64()
	m.Data = d.bytes()
	m.FUA = d.bool()
}

func (m *ClientRead) encode(e *encoder) {
	e.u64(uint64(m.Vol))
	e.u64(uint64(m.Epoch))
	e.u64(m.Client)
	e.u64(m.Req)
	e.u64(m.Block)
	e.u64(uint64(m.Count))
}

func (m *ClientRead) decode(d *decoder) {
	m.Vol = VolumeID(d.u32())
	m.Epoch = Epoch(d.u64())
	m.Client = d.u64()
	m.Req = d.u64()
	m.Block = d.u64()
	m.Count = d.u32()
}

func (m *ClientReply) encode(e *encoder) {
	e.u64(uint64(m.Vol))
	e.u64(m.Client)
	e.u64(m.Req)
	e.u64(uint64(m.Status))
	e.u64(uint64(m.Epoch))
	e.bytes(m.Data)
	e.bool(m.HasConfig)
	if m.HasConfig {
		e.config(&m.Config)
	}
}

func (m *ClientReply) decode(d *decoder) {
	m.Vol = VolumeID(d.u32())
	m.Client = d.u64()
	m.Req = d.u64()
	m.Status = Status(d.u8())
	m.Epoch = Epoch(d.u64())
	m.Data = d.bytes()
	m.HasConfig = d.bool()
	if m.HasConfig {
		d.config(&m.Config)
	}
}

func (m *Replicate) encode(e *encoder) {
	e.u64(uint64(m.Vol))
	e.config(&m.Config)
	e.u64(uint64(m.Commit))
	e.u64(uint64(m.PrevEpoch))
	e.entry(&m.Entry)
}

func (m *Replicate) decode(d *decoder) {
	m.Vol = VolumeID(d.u32())
	d.config(&m.Config)
	m.Commit = LSN(d.u64())
	m.PrevEpoch = Epoch(d.u64())
	d.entry(&m.Entry)
}

func (m *Heartbeat) encode(e *encoder) {
	e.u64(uint64(m.Vol))
	e.config(&m.Config)
	e.i64(m.SentAt)
	e.u64(uint64(m.Commit))
	e.bool(m.WantState)
	e.i64(m.Credits)
}

func (m *Heartbeat) decode(d *decoder) {
	m.Vol = VolumeID(d.u32())
	d.config(&m.Config)
	m.SentAt = d.i64()
	m.Commit = LSN(d.u64())
	m.WantState = d.bool()
	m.Credits = d.i64()
}

func (m *ReplicaAck) encode(e *encoder) {
	e.u64(uint64(m.Vol))
	e.u64(uint64(m.Epoch))
	e.u64(uint64(m.Last))
	e.u64(uint64(m.LastEpoch))
	e.i64(m.EchoSentAt)
	e.bool(m.NeedSync)
	e.u64(uint64(m.CommitKnown))
	e.u64s(m.Dirty)
	e.u64(m.DirtyUpto)
	e.bool(m.Syncing)
	e.u64(uint64(m.SyncBase))
	e.u64(m.SyncRound)
	e.u64(m.SyncCursor)
	e.u64(uint64(m.SyncStart))
	e.u64(m.Disk)
}

func (m *ReplicaAck) decode(d *decoder) {
	m.Vol = VolumeID(d.u32())
	m.Epoch = Epoch(d.u64())
	m.Last = LSN(d.u64())
	m.LastEpoch = Epoch(d.u64())
	m.EchoSentAt = d.i64()
	m.NeedSync = d.bool()
	m.CommitKnown = LSN(d.u64())
	m.Dirty = d.u64s()
	m.DirtyUpto = d.u64()
	m.Syncing = d.bool()
	m.SyncBase = LSN(d.u64())
	m.SyncRound = d.u64()
	m.SyncCursor = d.u64()
	m.SyncStart = LSN(d.u64())
	m.Disk = d.u64()
}

func (m *Sync) encode(e *encoder) {
	e.u64(uint64(m.Vol))
	e.u64(uint64(m.Epoch))
	e.u64(uint64(m.From))
	e.u64(uint64(m.Upto))
	e.u64(uint64(m.UptoEpoch))
	e.u64(uint64(m.Commit))
	e.blockImages(m.Blocks)
	e.dedup(m.Dedup)
	e.u64(uint64(m.ReqBase))
	e.u64(m.Round)
}

func (m *Sync) decode(d *decoder) {
	m.Vol = VolumeID(d.u32())
	m.Epoch = Epoch(d.u64())
	m.From = LSN(d.u64())
	m.Upto = LSN(d.u64())
	m.UptoEpoch = Epoch(d.u64())
	m.Commit = LSN(d.u64())
	m.Blocks = d.blockImages()
	m.Dedup = d.dedup()
	m.ReqBase = LSN(d.u64())
	m.Round = d.u64()
}

func (m *SyncPart) encode(e *encoder) {
	e.u64(uint64(m.Vol))
	e.u64(uint64(m.Epoch))
	e.u64(uint64(m.ReqBase))
	e.u64(m.Round)
	e.u64(m.Cursor)
	e.u64(uint64(m.Base))
	e.u64(uint64(m.Start))
	e.u64(uint64(m.Upto))
	e.u64(m.Next)
	e.bool(m.End)
	e.blockImages(m.Blocks)
}

func (m *SyncPart) decode(d *decoder) {
	m.Vol = VolumeID(d.u32())
	m.Epoch = Epoch(d.u64())
	m.ReqBase = LSN(d.u64())
	m.Round = d.u64()
	m.Cursor = d.u64()
	m.Base = LSN(d.u64())
	m.Start = LSN(d.u64())
	m.Upto = LSN(d.u64())
	m.Next = d.u64()
	m.End = d.bool()
	m.Blocks = d.blockImages()
}

func (e *encoder) blockImages(v []BlockImage) {
	e.u64(uint64(len(v)))
	for i := range v {
		b := &v[i]
		e.u64(b.Block)
		e.u64(uint64(b.LSN))
		e.bytes(b.Data)
	}
}

// blockImages reads a list of whole-block images (each exactly BlockSize bytes; at most
// MaxDataBytes of data in all, so a hostile frame cannot make the decoder allocate more).
func (d *decoder) blockImages() []BlockImage {
	n := d.length(min(maxList, MaxDataBytes/BlockSize), 3+BlockSize)
	if n == 0 {
		return nil
	}
	v := make([]BlockImage, n)
	for i := range v {
		b := &v[i]
		b.Block = d.u64()
		b.LSN = LSN(d.u64())
		b.Data = d.bytes()
		if len(b.Data) != BlockSize && d.err == nil {
			d.fail("block image of %d bytes", len(b.Data))
		}
	}
	return v
}

func (e *encoder) dedup(v []DedupRec) {
	e.u64(uint64(len(v)))
	for _, r := range v {
		e.u64(r.Client)
		e.u64(r.Req)
		e.u64(uint64(r.LSN))
		e.u64(r.Oldest)
	}
}

func (d *decoder) dedup() []DedupRec {
	n := d.length(maxList, 4)
	if n == 0 {
		return nil
	}
	v := make([]DedupRec, n)
	for i := range v {
		v[i] = DedupRec{Client: d.u64(), Req: d.u64(), LSN: LSN(d.u64()), Oldest: d.u64()}
	}
	return v
}

func (m *AuthRequest) encode(e *encoder) {
	e.u64(uint64(m.Op))
	e.u64(m.ReqID)
	e.u64(uint64(m.Vol))
	e.u64(uint64(m.FromEpoch))
	e.u64(uint64(m.Node))
	e.u64(m.Blocks)
	e.u64(uint64(m.RF))
	e.qos(&m.QoS)
	e.u64(m.Member)
	e.str(m.Name)
	e.u64(m.Disk)
	e.u64s(m.Disks)
	e.u64(uint64(m.Zone))
	e.str(m.Address)
	e.bool(m.Wiped)
}

func (m *AuthRequest) decode(d *decoder) {
	m.Op = AuthOp(d.u8())
	m.ReqID = d.u64()
	m.Vol = VolumeID(d.u32())
	m.FromEpoch = Epoch(d.u64())
	m.Node = Addr(d.u32())
	m.Blocks = d.u64()
	m.RF = d.u8()
	d.qos(&m.QoS)
	m.Member = d.u64()
	m.Name = d.name()
	m.Disk = d.u64()
	m.Disks = d.u64s()
	m.Zone = d.u32()
	m.Address = d.address()
	m.Wiped = d.bool()
}

func (m *ClientFlush) encode(e *encoder) {
	e.u64(uint64(m.Vol))
	e.u64(uint64(m.Epoch))
	e.u64(m.Client)
	e.u64(m.Req)
}

func (m *ClientFlush) decode(d *decoder) {
	m.Vol = VolumeID(d.u32())
	m.Epoch = Epoch(d.u64())
	m.Client = d.u64()
	m.Req = d.u64()
}

func (m *AuthReply) encode(e *encoder) {
	e.u64(uint64(m.Op))
	e.u64(m.ReqID)
	e.u64(uint64(m.Status))
	e.config(&m.Config)
	e.u64(uint64(m.Leader))
	e.str(m.Name)
	e.u64(uint64(len(m.List)))
	for i := range m.List {
		e.str(m.List[i].Name)
		e.config(&m.List[i].Config)
	}
	e.bool(m.More)
	e.u64(uint64(len(m.Nodes)))
	for _, x := range m.Nodes {
		e.u64(uint64(x.Node))
		e.u64(uint64(x.Zone))
		e.u64(uint64(x.State))
		e.u64(x.Disk)
		e.u64(x.SilentMs)
		e.u64(uint64(x.Replicas))
		e.str(x.Address)
	}
}

func (m *AuthReply) decode(d *decoder) {
	m.Op = AuthOp(d.u8())
	m.ReqID = d.u64()
	m.Status = Status(d.u8())
	d.config(&m.Config)
	m.Leader = Addr(d.u32())
	m.Name = d.name()
	// An entry is at least a name length and a config (8 bytes).
	if n := d.length(MaxListVolumes, 9); n > 0 {
		m.List = make([]VolumeEntry, n)
		for i := range m.List {
			m.List[i].Name = d.name()
			d.config(&m.List[i].Config)
		}
	}
	m.More = d.bool()
	if n := d.length(MaxNodes, 7); n > 0 {
		m.Nodes = make([]NodeEntry, n)
		for i := range m.Nodes {
			x := &m.Nodes[i]
			x.Node, x.Zone, x.State = Addr(d.u32()), d.u32(), d.u8()
			x.Disk, x.SilentMs, x.Replicas = d.u64(), d.u64(), d.u32()
			x.Address = d.address()
		}
	}
}

func (m *HealthCheck) encode(e *encoder) { e.u64(uint64(m.Vol)); e.u64(uint64(m.Epoch)) }
func (m *HealthCheck) decode(d *decoder) { m.Vol = VolumeID(d.u32()); m.Epoch = Epoch(d.u64()) }
func (m *Probe) encode(e *encoder)       { e.u64(uint64(m.Vol)); e.u64(m.Nonce) }
func (m *Probe) decode(d *decoder)       { m.Vol = VolumeID(d.u32()); m.Nonce = d.u64() }
func (m *ProbeAck) encode(e *encoder)    { e.u64(uint64(m.Vol)); e.u64(m.Nonce) }
func (m *ProbeAck) decode(d *decoder)    { m.Vol = VolumeID(d.u32()); m.Nonce = d.u64() }

func (m *HealthResult) encode(e *encoder) {
	e.u64(uint64(m.Vol))
	e.u64(uint64(m.Epoch))
	e.bool(m.Healthy)
	e.config(&m.Config)
}

func (m *HealthResult) decode(d *decoder) {
	m.Vol = VolumeID(d.u32())
	m.Epoch = Epoch(d.u64())
	m.Healthy = d.bool()
	d.config(&m.Config)
}

func (m *ConfigPush) encode(e *encoder)    { e.config(&m.Config); e.bool(m.Deleted) }
func (m *ConfigPush) decode(d *decoder)    { d.config(&m.Config); m.Deleted = d.bool() }
func (m *ConfigPushAck) encode(e *encoder) { e.u64(uint64(m.Vol)); e.u64(uint64(m.Epoch)) }
func (m *ConfigPushAck) decode(d *decoder) { m.Vol = VolumeID(d.u32()); m.Epoch = Epoch(d.u64()) }

func (m *RepairRequest) encode(e *encoder) {
	e.u64(uint64(m.Vol))
	e.u64(m.Block)
	e.u64(uint64(m.LSN))
}
func (m *RepairRequest) decode(d *decoder) {
	m.Vol = VolumeID(d.u32())
	m.Block = d.u64()
	m.LSN = LSN(d.u64())
}

func (m *RepairReply) encode(e *encoder) {
	e.u64(uint64(m.Vol))
	e.u64(m.Block)
	e.u64(uint64(m.LSN))
	e.bool(m.OK)
	e.bytes(m.Data)
}

func (m *RepairReply) decode(d *decoder) {
	m.Vol = VolumeID(d.u32())
	m.Block = d.u64()
	m.LSN = LSN(d.u64())
	m.OK = d.bool()
	m.Data = d.bytes()
	if len(m.Data) != 0 && len(m.Data) != BlockSize {
		d.fail("repair data of %d bytes", len(m.Data))
	}
}
