package core

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/cairnstore/cairn/core/raft"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"pgregory.net/rapid"
)

// ---------------------------------------------------------------------------
// Comparison modulo nil/empty slices. The codec decodes an empty slice as nil (and
// some decoders allocate an empty slice for a zero length), so round-trip checks treat
// the two as equal. Unexported fields are compared too (records are unexported types).
// ---------------------------------------------------------------------------

// diffModuloEmpty returns "" if a and b are deeply equal once every empty slice is
// taken to equal nil, else the path of the first difference.
func diffModuloEmpty(a, b any) string {
	return codecDiffValues("", reflect.ValueOf(a), reflect.ValueOf(b))
}

func codecDiffValues(path string, a, b reflect.Value) string {
	if !a.IsValid() || !b.IsValid() {
		if a.IsValid() != b.IsValid() {
			return fmt.Sprintf("%s: one side is invalid", path)
		}
		return ""
	}
	if a.Type() != b.Type() {
		return fmt.Sprintf("%s: type %v vs %v", path, a.Type(), b.Type())
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				return fmt.Sprintf("%s: nil vs non-nil", path)
			}
			return ""
		}
		return codecDiffValues(path, a.Elem(), b.Elem())
	case reflect.Struct:
		for i := range a.NumField() {
			if d := codecDiffValues(path+"."+a.Type().Field(i).Name, a.Field(i), b.Field(i)); d != "" {
				return d
			}
		}
		return ""
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: length %d vs %d", path, a.Len(), b.Len())
		}
		if a.Kind() == reflect.Slice && a.Type().Elem().Kind() == reflect.Uint8 {
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				return fmt.Sprintf("%s: byte strings differ", path)
			}
			return ""
		}
		for i := range a.Len() {
			if d := codecDiffValues(fmt.Sprintf("%s[%d]", path, i), a.Index(i), b.Index(i)); d != "" {
				return d
			}
		}
		return ""
	case reflect.Map:
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: map size %d vs %d", path, a.Len(), b.Len())
		}
		it := a.MapRange()
		for it.Next() {
			bv := b.MapIndex(it.Key())
			if !bv.IsValid() {
				return fmt.Sprintf("%s: key %v missing", path, it.Key())
			}
			if d := codecDiffValues(fmt.Sprintf("%s[%v]", path, it.Key()), it.Value(), bv); d != "" {
				return d
			}
		}
		return ""
	case reflect.Bool:
		if a.Bool() != b.Bool() {
			return fmt.Sprintf("%s: %v vs %v", path, a.Bool(), b.Bool())
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if a.Int() != b.Int() {
			return fmt.Sprintf("%s: %d vs %d", path, a.Int(), b.Int())
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if a.Uint() != b.Uint() {
			return fmt.Sprintf("%s: %d vs %d", path, a.Uint(), b.Uint())
		}
	case reflect.String:
		if a.String() != b.String() {
			return fmt.Sprintf("%s: %q vs %q", path, a.String(), b.String())
		}
	case reflect.Float32, reflect.Float64:
		if a.Float() != b.Float() {
			return fmt.Sprintf("%s: %v vs %v", path, a.Float(), b.Float())
		}
	case reflect.Func, reflect.Chan:
		if !a.IsNil() || !b.IsNil() {
			return fmt.Sprintf("%s: non-nil %v cannot be compared", path, a.Kind())
		}
	default:
		return fmt.Sprintf("%s: unsupported kind %v", path, a.Kind())
	}
	return ""
}

func TestDiffModuloEmpty(t *testing.T) {
	if d := diffModuloEmpty(&Sync{Blocks: []BlockImage{}}, &Sync{}); d != "" {
		t.Errorf("empty vs nil slice: %s", d)
	}
	if d := diffModuloEmpty(&Sync{Blocks: []BlockImage{{Data: []byte{}}}}, &Sync{Blocks: []BlockImage{{}}}); d != "" {
		t.Errorf("nested empty vs nil: %s", d)
	}
	if d := diffModuloEmpty(&Sync{Upto: 1}, &Sync{Upto: 2}); !strings.Contains(d, "Upto") {
		t.Errorf("a differing field is not reported: %q", d)
	}
	if d := diffModuloEmpty(&Entry{Data: []byte{1}}, &Entry{Data: []byte{2}}); d == "" {
		t.Errorf("differing data not reported")
	}
	if d := diffModuloEmpty(volSnap{unapplied: []mutation{{durable: true}}}, volSnap{unapplied: []mutation{{}}}); d == "" {
		t.Errorf("unexported differing field not reported")
	}
}

// ---------------------------------------------------------------------------
// Generators.
// ---------------------------------------------------------------------------

// codecDrawBlocks returns n whole blocks filled with a drawn pattern (drawing 4 KiB
// byte by byte would be slow and pointless for a codec).
func codecDrawBlocks(t *rapid.T, n int, label string) []byte {
	if n == 0 {
		if rapid.Bool().Draw(t, label+"-nil") {
			return nil
		}
		return []byte{}
	}
	pat := rapid.SliceOfN(rapid.Byte(), 1, 16).Draw(t, label+"-pattern")
	out := make([]byte, n*BlockSize)
	for i := 0; i < len(out); i += copy(out[i:], pat) {
	}
	return out
}

func codecDrawAddrs(t *rapid.T, label string) []Addr {
	return rapid.SliceOfN(rapid.Custom(func(t *rapid.T) Addr { return Addr(rapid.Uint32().Draw(t, "a")) }), 0, 5).Draw(t, label)
}

func codecDrawConfig(t *rapid.T, label string) Config {
	return Config{
		Volume:   VolumeID(rapid.Uint32().Draw(t, label+"-vol")),
		Blocks:   rapid.Uint64().Draw(t, label+"-blocks"),
		RF:       rapid.Uint8().Draw(t, label+"-rf"),
		Epoch:    Epoch(rapid.Uint64().Draw(t, label+"-epoch")),
		Primary:  Addr(rapid.Uint32().Draw(t, label+"-primary")),
		InSync:   codecDrawAddrs(t, label+"-insync"),
		Replicas: codecDrawAddrs(t, label+"-replicas"),
		QoS:      codecDrawQoS(t, label+"-qos"),
		Disks:    codecDrawU64s(t, label+"-disks"),
	}
}

// codecDrawU64s draws nil or a short list (the decoder gives nil for an empty list).
func codecDrawU64s(t *rapid.T, label string) []uint64 {
	v := rapid.SliceOfN(rapid.Uint64(), 0, 5).Draw(t, label)
	if len(v) == 0 {
		return nil
	}
	return v
}

// codecDrawName draws a valid volume name (empty included), up to MaxVolumeName bytes.
func codecDrawName(t *rapid.T, label string) string {
	return rapid.StringMatching(`[A-Za-z0-9._-]{0,64}`).Draw(t, label)
}

func codecDrawQoS(t *rapid.T, label string) QoS {
	f := func(l string) int64 { return rapid.Int64Range(-(1<<40), 1<<40).Draw(t, label+l) }
	return QoS{IOPS: f("-iops"), BurstIOPS: f("-burst"), BurstCredits: f("-credits"), MBps: f("-mbps")}
}

func codecDrawEntry(t *rapid.T, label string) Entry {
	return Entry{
		LSN:    LSN(rapid.Uint64().Draw(t, label+"-lsn")),
		Epoch:  Epoch(rapid.Uint64().Draw(t, label+"-epoch")),
		Client: rapid.Uint64().Draw(t, label+"-client"),
		Req:    rapid.Uint64().Draw(t, label+"-req"),
		Block:  rapid.Uint64().Draw(t, label+"-block"),
		Data:   codecDrawBlocks(t, rapid.IntRange(0, 3).Draw(t, label+"-nblocks"), label+"-data"),
	}
}

func codecDrawDedup(t *rapid.T, label string) []DedupRec {
	n := rapid.IntRange(0, 5).Draw(t, label+"-n")
	var out []DedupRec
	if n == 0 && rapid.Bool().Draw(t, label+"-empty") {
		out = []DedupRec{}
	}
	for i := range n {
		out = append(out, DedupRec{
			Client: rapid.Uint64().Draw(t, fmt.Sprintf("%s-%d-client", label, i)),
			Req:    rapid.Uint64().Draw(t, fmt.Sprintf("%s-%d-req", label, i)),
			LSN:    LSN(rapid.Uint64().Draw(t, fmt.Sprintf("%s-%d-lsn", label, i))),
		})
	}
	return out
}

func codecDrawSync(t *rapid.T, label string) *Sync {
	m := &Sync{
		Vol:       VolumeID(rapid.Uint32().Draw(t, label+"-vol")),
		Epoch:     Epoch(rapid.Uint64().Draw(t, label+"-epoch")),
		From:      LSN(rapid.Uint64().Draw(t, label+"-from")),
		Upto:      LSN(rapid.Uint64().Draw(t, label+"-upto")),
		UptoEpoch: Epoch(rapid.Uint64().Draw(t, label+"-uptoepoch")),
		Commit:    LSN(rapid.Uint64().Draw(t, label+"-commit")),
		Dedup:     codecDrawDedup(t, label+"-dedup"),
		ReqBase:   LSN(rapid.Uint64().Draw(t, label+"-reqbase")),
		Round:     rapid.Uint64().Draw(t, label+"-round"),
	}
	m.Blocks = codecDrawImages(t, label)
	return m
}

func codecDrawImages(t *rapid.T, label string) []BlockImage {
	var out []BlockImage
	for i := range rapid.IntRange(0, 3).Draw(t, label+"-nblocks") {
		out = append(out, BlockImage{
			Block: rapid.Uint64().Draw(t, fmt.Sprintf("%s-b%d-block", label, i)),
			LSN:   LSN(rapid.Uint64().Draw(t, fmt.Sprintf("%s-b%d-lsn", label, i))),
			Data:  codecDrawBlocks(t, 1, fmt.Sprintf("%s-b%d", label, i)),
		})
	}
	return out
}

func codecDrawSyncPart(t *rapid.T, label string) *SyncPart {
	u64 := func(l string) uint64 { return rapid.Uint64().Draw(t, label+"-"+l) }
	return &SyncPart{Vol: VolumeID(rapid.Uint32().Draw(t, label+"-vol")), Epoch: Epoch(u64("epoch")), ReqBase: LSN(u64("reqbase")),
		Round: u64("round"), Cursor: u64("cursor"), Base: LSN(u64("base")), Start: LSN(u64("start")), Upto: LSN(u64("upto")),
		Next: u64("next"), End: rapid.Bool().Draw(t, label+"-end"), Blocks: codecDrawImages(t, label)}
}

// codecDrawMessage draws a message of kind k with arbitrary fields. It fails the test
// for a kind it does not know, so a new kind cannot be added without a generator.
func codecDrawMessage(t *rapid.T, k Kind) Message {
	u64 := func(l string) uint64 { return rapid.Uint64().Draw(t, l) }
	u32 := func(l string) uint32 { return rapid.Uint32().Draw(t, l) }
	u8 := func(l string) uint8 { return rapid.Uint8().Draw(t, l) }
	i64 := func(l string) int64 { return rapid.Int64().Draw(t, l) }
	bl := func(l string) bool { return rapid.Bool().Draw(t, l) }
	blocks := func(l string) []byte { return codecDrawBlocks(t, rapid.IntRange(0, 3).Draw(t, l+"-n"), l) }
	switch k {
	case KindClientWrite:
		return &ClientWrite{Vol: VolumeID(u32("vol")), Epoch: Epoch(u64("epoch")), Client: u64("client"), Req: u64("req"),
			Block: u64("block"), Data: blocks("data"), FUA: bl("fua")}
	case KindClientRead:
		return &ClientRead{Vol: VolumeID(u32("vol")), Epoch: Epoch(u64("epoch")), Client: u64("client"), Req: u64("req"),
			Block: u64("block"), Count: u32("count")}
	case KindClientReply:
		m := &ClientReply{Vol: VolumeID(u32("vol")), Client: u64("client"), Req: u64("req"), Status: Status(u8("status")),
			Epoch: Epoch(u64("epoch")), Data: blocks("data"), HasConfig: bl("hasconfig")}
		if m.HasConfig { // the config travels only with HasConfig
			m.Config = codecDrawConfig(t, "config")
		}
		return m
	case KindReplicate:
		return &Replicate{Vol: VolumeID(u32("vol")), Config: codecDrawConfig(t, "config"), Commit: LSN(u64("commit")),
			PrevEpoch: Epoch(u64("prevepoch")), Entry: codecDrawEntry(t, "entry")}
	case KindHeartbeat:
		return &Heartbeat{Vol: VolumeID(u32("vol")), Config: codecDrawConfig(t, "config"), SentAt: i64("sentat"),
			Commit: LSN(u64("commit")), WantState: bl("wantstate"), Credits: i64("credits")}
	case KindReplicaAck:
		return &ReplicaAck{Vol: VolumeID(u32("vol")), Epoch: Epoch(u64("epoch")), Last: LSN(u64("last")),
			LastEpoch: Epoch(u64("lastepoch")), EchoSentAt: i64("echo"), NeedSync: bl("needsync"),
			CommitKnown: LSN(u64("commitknown")), Dirty: rapid.SliceOfN(rapid.Uint64(), 0, 8).Draw(t, "dirty"),
			DirtyUpto: u64("dirtyupto"), Syncing: bl("syncing"), SyncBase: LSN(u64("syncbase")), SyncRound: u64("syncround"), SyncCursor: u64("synccursor"),
			SyncStart: LSN(u64("syncstart")), Disk: u64("disk")}
	case KindSync:
		return codecDrawSync(t, "sync")
	case KindSyncPart:
		return codecDrawSyncPart(t, "part")
	case KindAuthRequest:
		return &AuthRequest{Op: AuthOp(u8("op")), ReqID: u64("reqid"), Vol: VolumeID(u32("vol")), FromEpoch: Epoch(u64("fromepoch")),
			Node: Addr(u32("node")), Blocks: u64("blocks"), RF: u8("rf"), QoS: codecDrawQoS(t, "qos"), Member: u64("member"),
			Name: codecDrawName(t, "name"), Disk: u64("disk"), Disks: codecDrawU64s(t, "disks"), Zone: u32("zone"),
			Address: codecDrawAddress(t, "address"), Wiped: bl("wiped")}
	case KindAuthReply:
		m := &AuthReply{Op: AuthOp(u8("op")), ReqID: u64("reqid"), Status: Status(u8("status")), Config: codecDrawConfig(t, "config"),
			Leader: Addr(u32("leader")), Name: codecDrawName(t, "name"), More: bl("more")}
		for i := range rapid.IntRange(0, 4).Draw(t, "nlist") {
			m.List = append(m.List, VolumeEntry{Name: codecDrawName(t, fmt.Sprint("list-name-", i)), Config: codecDrawConfig(t, fmt.Sprint("list-", i))})
		}
		for i := range rapid.IntRange(0, 3).Draw(t, "nnodes") {
			k := fmt.Sprint("node-", i, "-")
			m.Nodes = append(m.Nodes, NodeEntry{Node: Addr(u32(k + "id")), Zone: u32(k + "zone"), State: u8(k + "state"), Disk: u64(k + "disk"),
				SilentMs: u64(k + "silent"), Replicas: u32(k + "replicas"), Address: codecDrawAddress(t, k+"address")})
		}
		return m
	case KindHealthCheck:
		return &HealthCheck{Vol: VolumeID(u32("vol")), Epoch: Epoch(u64("epoch"))}
	case KindProbe:
		return &Probe{Vol: VolumeID(u32("vol")), Nonce: u64("nonce")}
	case KindProbeAck:
		return &ProbeAck{Vol: VolumeID(u32("vol")), Nonce: u64("nonce")}
	case KindHealthResult:
		return &HealthResult{Vol: VolumeID(u32("vol")), Epoch: Epoch(u64("epoch")), Healthy: bl("healthy"),
			Config: codecDrawConfig(t, "config")}
	case KindConfigPush:
		return &ConfigPush{Config: codecDrawConfig(t, "config"), Deleted: bl("deleted")}
	case KindConfigPushAck:
		return &ConfigPushAck{Vol: VolumeID(u32("vol")), Epoch: Epoch(u64("epoch"))}
	case KindRepairRequest:
		return &RepairRequest{Vol: VolumeID(u32("vol")), Block: u64("block"), LSN: LSN(u64("lsn"))}
	case KindRepairReply:
		ok := bl("ok")
		var data []byte
		if ok {
			data = codecDrawBlocks(t, 1, "data")
		}
		return &RepairReply{Vol: VolumeID(u32("vol")), Block: u64("block"), LSN: LSN(u64("lsn")), OK: ok, Data: data}
	case KindClientFlush:
		return &ClientFlush{Vol: VolumeID(u32("vol")), Epoch: Epoch(u64("epoch")), Client: u64("client"), Req: u64("req")}
	case KindRaft:
		m := raft.Message{Type: raft.MsgType(u8("type")), From: u64("from"), To: u64("to"), Term: u64("term"),
			LogTerm: u64("logterm"), Index: u64("index"), Commit: u64("commit"), Reject: bl("reject"),
			RejectHint: u64("hint"), Context: u64("ctx")}
		if c := recDrawCell(t, "raft"); c != nil {
			m.Entries, m.Snapshot = c.entries, c.snap
		}
		return &RaftMsg{M: m}
	}
	t.Fatalf("codecDrawMessage: no generator for kind %d", k)
	return nil
}

// codecSampleMessages returns one realistic message of every kind (two ClientReplies:
// with and without a config).
func codecSampleMessages() []Message {
	cfg := Config{Volume: 7, Blocks: 1 << 18, RF: 3, Epoch: 4, Primary: 11, InSync: []Addr{11, 23}, Replicas: []Addr{11, 23, 37},
		QoS: QoS{IOPS: 300, BurstIOPS: 3000, BurstCredits: 5_400_000, MBps: 125}, Disks: []uint64{0xd15c, 1 << 63, 0}}
	block := bytes.Repeat([]byte{0xa5, 0x5a, 0x00, 0xff}, BlockSize/4)
	return []Message{
		&ClientWrite{Vol: 7, Epoch: 4, Client: 1001, Req: 42, Block: 1234, Data: block, FUA: true},
		&ClientRead{Vol: 7, Epoch: 4, Client: 1001, Req: 43, Block: 1234, Count: 8},
		&ClientReply{Vol: 7, Client: 1001, Req: 43, Status: StatusOK, Epoch: 4, Data: block},
		&ClientReply{Vol: 7, Client: 1001, Req: 44, Status: StatusStaleEpoch, Epoch: 4, HasConfig: true, Config: cfg},
		&Replicate{Vol: 7, Config: cfg, Commit: 99, PrevEpoch: 4,
			Entry: Entry{LSN: 100, Epoch: 4, Client: 1001, Req: 42, Block: 1234, Data: block}},
		&Heartbeat{Vol: 7, Config: cfg, SentAt: -5, Commit: 100, WantState: true, Credits: 5_399_000},
		&ReplicaAck{Vol: 7, Epoch: 4, Last: 100, LastEpoch: 4, EchoSentAt: 1 << 50, NeedSync: true, CommitKnown: 90,
			Dirty: []uint64{3, 1234, 1 << 40}, DirtyUpto: 1 << 41, SyncBase: 90, SyncCursor: 1235, SyncStart: 98, Disk: 0xd15c},
		&ReplicaAck{Vol: 7, Epoch: 4, Last: 100, LastEpoch: 4, EchoSentAt: 1 << 50, CommitKnown: 90, Syncing: true},
		&Sync{Vol: 7, Epoch: 4, From: 90, Upto: 100, UptoEpoch: 4, Commit: 100,
			Blocks: []BlockImage{{Block: 3, LSN: 95, Data: block}},
			Dedup:  []DedupRec{{Client: 1001, Req: 41, LSN: 97}, {Client: 1001, Req: 42, LSN: 100}}, ReqBase: 98, Round: 2},
		&SyncPart{Vol: 7, Epoch: 4, ReqBase: 90, Round: 0, Cursor: 3, Base: 90, Start: 98, Upto: 100, Next: 1235,
			Blocks: []BlockImage{{Block: 3, LSN: 95, Data: block}, {Block: 1234, LSN: 91, Data: block}}},
		&SyncPart{Vol: 7, Epoch: 4, ReqBase: 98, Round: 1, Base: 98, Start: 100, Upto: 100, Next: 1 << 18, End: true},
		&AuthRequest{Op: OpCreateVolume, ReqID: 5, Vol: 7, Node: 11, Blocks: 1 << 18, RF: 3, QoS: QoS{IOPS: 100, BurstIOPS: 100}},
		&ClientFlush{Vol: 7, Epoch: 4, Client: 1001, Req: 45},
		&AuthRequest{Op: OpRenew, ReqID: 9, Vol: 7, FromEpoch: 4, Node: 11, Disk: 0xd15c, Disks: []uint64{0xd15c, 1 << 63, 0}},
		&RaftMsg{M: raft.Message{Type: raft.MsgApp, From: 1, To: 2, Term: 3, LogTerm: 2, Index: 7, Commit: 7,
			Entries: []raft.Entry{{Index: 8, Term: 3, Type: raft.EntryNormal, Data: []byte("cmd")}}}},
		&RaftMsg{M: raft.Message{Type: raft.MsgSnap, From: 1, To: 3, Term: 3,
			Snapshot: &raft.Snapshot{Index: 7, Term: 2, Voters: []uint64{1, 2, 3}, Data: []byte("table")}}},
		&AuthReply{Op: OpPromote, ReqID: 6, Status: StatusConflict, Config: cfg},
		&AuthReply{Op: OpCreateVolume, ReqID: 5, Status: StatusConflict, Config: cfg, Name: "db-1.a_b"},
		&AuthReply{Op: OpListVolumes, ReqID: 8, Status: StatusOK, List: []VolumeEntry{{Name: "db", Config: cfg}, {Config: cfg}}, More: true},
		&AuthRequest{Op: OpCreateVolume, ReqID: 5, Vol: 7, Blocks: 1 << 18, RF: 3, Name: strings.Repeat("n", MaxVolumeName)},
		&AuthRequest{Op: OpListVolumes, ReqID: 8, Vol: 1 << 31},
		&AuthRequest{Op: OpJoinNode, ReqID: 10, Node: 6, Zone: 2, Disk: 0xd15c, Address: "10.0.0.6:7001"},
		&AuthReply{Op: OpNodeBeat, ReqID: 11, Status: StatusOK, List: []VolumeEntry{{Config: cfg}},
			Nodes: []NodeEntry{{Node: 6, Zone: 2, State: NodeDraining, Disk: 0xd15c, SilentMs: 1500, Replicas: 3, Address: "[::1]:7001"}}},
		&ConfigPush{Config: Config{Volume: 7, Epoch: 6, Replicas: []Addr{11, 23, 37}}, Deleted: true},
		&HealthCheck{Vol: 7, Epoch: 4},
		&Probe{Vol: 7, Nonce: 77},
		&ProbeAck{Vol: 7, Nonce: 77},
		&HealthResult{Vol: 7, Epoch: 4, Healthy: true, Config: cfg},
		&ConfigPush{Config: cfg},
		&ConfigPushAck{Vol: 7, Epoch: 5},
		&RepairRequest{Vol: 7, Block: 12, LSN: 99},
		&RepairReply{Vol: 7, Block: 12, LSN: 99, OK: true, Data: make([]byte, BlockSize)},
	}
}

// ---------------------------------------------------------------------------
// Round trips.
// ---------------------------------------------------------------------------

func TestCodecKindsAreComplete(t *testing.T) {
	samples := map[Kind]bool{}
	for _, m := range codecSampleMessages() {
		samples[m.Kind()] = true
	}
	if newMessage(0) != nil || newMessage(kindEnd) != nil {
		t.Errorf("newMessage accepts kind 0 or kindEnd")
	}
	for k := Kind(1); k < kindEnd; k++ {
		m := newMessage(k)
		if m == nil {
			t.Errorf("kind %d: newMessage returns nil", k)
			continue
		}
		if m.Kind() != k {
			t.Errorf("newMessage(%d).Kind() = %d", k, m.Kind())
		}
		if !samples[k] {
			t.Errorf("kind %d has no sample message", k)
		}
	}
}

func TestCodecSamplesRoundTrip(t *testing.T) {
	for _, m := range codecSampleMessages() {
		enc := Encode(nil, m)
		got, err := Decode(enc)
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if !reflect.DeepEqual(m, got) {
			t.Errorf("%T: round trip changed the message:\n%#v\n%#v", m, m, got)
		}
	}
}

func TestCodecRoundTripProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		k := Kind(rapid.IntRange(1, int(kindEnd)-1).Draw(t, "kind"))
		m := codecDrawMessage(t, k)
		prefix := rapid.SliceOfN(rapid.Byte(), 0, 4).Draw(t, "prefix")
		enc := Encode(bytes.Clone(prefix), m)
		if !bytes.Equal(enc[:len(prefix)], prefix) {
			t.Fatalf("Encode overwrote dst")
		}
		enc = enc[len(prefix):]
		if enc[0] != wireVersion || Kind(enc[1]) != k {
			t.Fatalf("header % x for kind %d", enc[:2], k)
		}
		got, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(%#v)): %v", m, err)
		}
		if d := diffModuloEmpty(m, got); d != "" {
			t.Fatalf("round trip of %T differs at %s", m, d)
		}
		if enc2 := Encode(nil, got); !bytes.Equal(enc, enc2) {
			t.Fatalf("re-encoding of %T differs", m)
		}
	})
}

// Decoded byte strings are copies: the caller may reuse the frame buffer.
func TestDecodeDoesNotAliasInput(t *testing.T) {
	for _, m := range codecSampleMessages() {
		enc := Encode(nil, m)
		got, err := Decode(enc)
		if err != nil {
			t.Fatal(err)
		}
		for i := range enc {
			enc[i] ^= 0xff
		}
		if !reflect.DeepEqual(m, got) {
			t.Errorf("%T: decoded message changed when the input buffer was overwritten", m)
		}
	}
}

// ---------------------------------------------------------------------------
// Rejections.
// ---------------------------------------------------------------------------

// codecFataler is what both *testing.T and *rapid.T provide.
type codecFataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// codecRequireDecodeError checks that Decode(b) fails cleanly: an error wrapping ErrDecode,
// no message, no panic.
func codecRequireDecodeError(t codecFataler, what string, b []byte) {
	t.Helper()
	var (
		m   Message
		err error
	)
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("%s: Decode panicked: %v", what, r)
			}
		}()
		m, err = Decode(b)
	}()
	if err == nil {
		t.Fatalf("%s: Decode accepted % x as %#v", what, b[:min(len(b), 64)], m)
	}
	if m != nil {
		t.Fatalf("%s: Decode returned a message with error %v", what, err)
	}
	if !errors.Is(err, ErrDecode) {
		t.Fatalf("%s: error %v does not wrap ErrDecode", what, err)
	}
}

// codecFrame builds a frame by hand: header then the body written by fn.
func codecFrame(k Kind, fn func(e *encoder)) []byte {
	e := encoder{b: []byte{wireVersion, byte(k)}}
	fn(&e)
	return e.b
}

func TestDecodeRejectsShortInput(t *testing.T) {
	codecRequireDecodeError(t, "nil", nil)
	codecRequireDecodeError(t, "empty", []byte{})
	codecRequireDecodeError(t, "version only", []byte{wireVersion})
}

func TestDecodeRejectsWrongVersion(t *testing.T) {
	for _, m := range codecSampleMessages() {
		enc := Encode(nil, m)
		for _, v := range []byte{0, wireVersion + 1, 0x7f, 0xff} {
			b := bytes.Clone(enc)
			b[0] = v
			codecRequireDecodeError(t, fmt.Sprintf("%T with version %d", m, v), b)
		}
	}
}

func TestDecodeRejectsUnknownKind(t *testing.T) {
	body := Encode(nil, &Probe{Vol: 1, Nonce: 2})[2:]
	for _, k := range []Kind{0, kindEnd, kindEnd + 1, 0x80, 0xff} {
		codecRequireDecodeError(t, fmt.Sprintf("kind %d", k), append([]byte{wireVersion, byte(k)}, body...))
		codecRequireDecodeError(t, fmt.Sprintf("kind %d without body", k), []byte{wireVersion, byte(k)})
	}
}

func TestDecodeRejectsTrailingBytes(t *testing.T) {
	for _, m := range codecSampleMessages() {
		enc := Encode(nil, m)
		for _, tail := range [][]byte{{0}, {1}, {0xff}, {0, 0, 0, 0}} {
			codecRequireDecodeError(t, fmt.Sprintf("%T + % x", m, tail), append(bytes.Clone(enc), tail...))
		}
		// Two messages back to back are not one message.
		codecRequireDecodeError(t, fmt.Sprintf("%T twice", m), append(bytes.Clone(enc), enc...))
	}
}

// Every strict prefix of a valid encoding is rejected (never accepted, never a panic).
func TestDecodeRejectsEveryTruncation(t *testing.T) {
	for _, m := range codecSampleMessages() {
		enc := Encode(nil, m)
		for n := range len(enc) {
			codecRequireDecodeError(t, fmt.Sprintf("%T truncated to %d of %d bytes", m, n, len(enc)), enc[:n])
		}
	}
}

func TestDecodeRejectsTruncationProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := codecDrawMessage(t, Kind(rapid.IntRange(1, int(kindEnd)-1).Draw(t, "kind")))
		enc := Encode(nil, m)
		n := rapid.IntRange(0, len(enc)-1).Draw(t, "cut")
		codecRequireDecodeError(t, fmt.Sprintf("%T truncated to %d of %d bytes", m, n, len(enc)), enc[:n])
	})
}

func TestDecodeRejectsOversizedLengths(t *testing.T) {
	head := func(e *encoder) { e.u64(7); e.u64(4); e.u64(1001); e.u64(42); e.u64(1234) } // ClientWrite before Data
	cases := map[string][]byte{
		"data length beyond the frame": codecFrame(KindClientWrite, func(e *encoder) {
			head(e)
			e.u64(100)
			e.b = append(e.b, make([]byte, 10)...)
		}),
		"data length one beyond the frame": codecFrame(KindClientWrite, func(e *encoder) {
			head(e)
			e.u64(BlockSize + 1)
			e.b = append(e.b, make([]byte, BlockSize)...) // FUA would be the last byte
		}),
		"data length 2^63": codecFrame(KindClientWrite, func(e *encoder) {
			head(e)
			e.u64(1 << 63)
			e.b = append(e.b, 0)
		}),
		"data length 2^64-1": codecFrame(KindClientWrite, func(e *encoder) {
			head(e)
			e.u64(^uint64(0))
			e.b = append(e.b, 0)
		}),
		"data above MaxDataBytes": codecFrame(KindClientWrite, func(e *encoder) {
			head(e)
			e.u64(MaxDataBytes + 1)
			e.b = append(e.b, make([]byte, MaxDataBytes+2)...)
		}),
		"dirty list beyond the frame": codecFrame(KindReplicaAck, func(e *encoder) {
			e.u64(7)
			e.u64(4)
			e.u64(100)
			e.u64(4)
			e.i64(0)
			e.bool(true)
			e.u64(90)
			e.u64(1000)
			e.b = append(e.b, 1, 2, 3)
		}),
		"dirty list above maxList": codecFrame(KindReplicaAck, func(e *encoder) {
			e.u64(7)
			e.u64(4)
			e.u64(100)
			e.u64(4)
			e.i64(0)
			e.bool(true)
			e.u64(90)
			e.u64(maxList + 1)
			e.b = append(e.b, make([]byte, maxList+1)...)
		}),
		"in-sync list beyond the frame": codecFrame(KindConfigPush, func(e *encoder) {
			e.u64(7)
			e.u64(1)
			e.u64(3)
			e.u64(4)
			e.u64(11)
			e.u64(1 << 40)
			e.b = append(e.b, 11, 0)
		}),
		"sync block count beyond the frame": codecFrame(KindSync, func(e *encoder) {
			for range 6 {
				e.u64(1)
			}
			e.u64(5)
			e.b = append(e.b, make([]byte, 14)...)
		}),
		"sync part block count above the data limit": codecFrame(KindSyncPart, func(e *encoder) {
			for range 9 {
				e.u64(1)
			}
			e.bool(false)
			e.u64(MaxDataBytes/BlockSize + 1)
			e.b = append(e.b, make([]byte, (MaxDataBytes/BlockSize+1)*(BlockSize+3))...)
		}),
		"dedup count beyond the frame": codecFrame(KindSync, func(e *encoder) {
			for range 6 {
				e.u64(1)
			}
			e.u64(0)
			e.u64(3)
			e.b = append(e.b, make([]byte, 8)...)
		}),
	}
	for name, b := range cases {
		codecRequireDecodeError(t, name, b)
	}
}

func TestDecodeRejectsPartialBlocks(t *testing.T) {
	entry := Entry{LSN: 100, Epoch: 4, Client: 1, Req: 2, Block: 3}
	for _, n := range []int{1, 100, BlockSize - 1, BlockSize + 1, 2*BlockSize + 17} {
		e := entry
		e.Data = make([]byte, n)
		b := Encode(nil, &Replicate{Vol: 7, Config: Config{Volume: 7}, Commit: 1, Entry: e})
		codecRequireDecodeError(t, fmt.Sprintf("replicate entry of %d bytes", n), b)
	}
	for _, n := range []int{0, 1, BlockSize - 1, BlockSize + 1, 2 * BlockSize} {
		s := &Sync{Vol: 7, Blocks: []BlockImage{{Block: 1, LSN: 2, Data: make([]byte, n)}}}
		codecRequireDecodeError(t, fmt.Sprintf("sync block image of %d bytes", n), Encode(nil, s))
		// The bad image may also follow a good one.
		s.Blocks = append([]BlockImage{{Block: 0, LSN: 1, Data: make([]byte, BlockSize)}}, s.Blocks...)
		codecRequireDecodeError(t, fmt.Sprintf("second sync block image of %d bytes", n), Encode(nil, s))
	}
}

func TestDecodeRejectsBadScalars(t *testing.T) {
	overlong := bytes.Repeat([]byte{0xff}, 11) // more than 64 bits
	cases := map[string][]byte{
		"overlong varint": append([]byte{wireVersion, byte(KindProbe)}, append(overlong, 0)...),
		"uvarint overflowing 64 bits": append([]byte{wireVersion, byte(KindProbe), 1},
			0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02),
		"volume id over 32 bits": codecFrame(KindProbe, func(e *encoder) { e.u64(1 << 32); e.u64(1) }),
		"status over 8 bits":     codecFrame(KindAuthReply, func(e *encoder) { e.u64(1); e.u64(1); e.u64(256); e.config(&Config{}) }),
		"auth op over 8 bits":    codecFrame(KindAuthReply, func(e *encoder) { e.u64(256); e.u64(1); e.u64(0); e.config(&Config{}) }),
		"rf over 8 bits": codecFrame(KindConfigPush, func(e *encoder) {
			e.u64(7)
			e.u64(1)
			e.u64(300)
			e.u64(1)
			e.u64(1)
			e.u64(0)
			e.u64(0)
		}),
		"addr over 32 bits": codecFrame(KindConfigPush, func(e *encoder) {
			e.u64(7)
			e.u64(1)
			e.u64(3)
			e.u64(1)
			e.u64(1 << 33)
			e.u64(0)
			e.u64(0)
		}),
		"in-sync addr over 32 bits": codecFrame(KindConfigPush, func(e *encoder) {
			e.u64(7)
			e.u64(1)
			e.u64(3)
			e.u64(1)
			e.u64(1)
			e.u64(1)
			e.u64(1 << 32)
			e.u64(0)
		}),
		"count over 32 bits": codecFrame(KindClientRead, func(e *encoder) {
			e.u64(1)
			e.u64(1)
			e.u64(1)
			e.u64(1)
			e.u64(1)
			e.u64(1 << 32)
		}),
		"bool byte 2": codecFrame(KindHealthResult, func(e *encoder) {
			e.u64(1)
			e.u64(1)
			e.b = append(e.b, 2)
			e.config(&Config{})
		}),
		"bool byte 0xff": codecFrame(KindClientWrite, func(e *encoder) {
			e.u64(1)
			e.u64(1)
			e.u64(1)
			e.u64(1)
			e.u64(1)
			e.bytes(nil)
			e.b = append(e.b, 0xff)
		}),
		"missing bool": codecFrame(KindHeartbeat, func(e *encoder) {
			e.u64(1)
			e.config(&Config{})
			e.i64(1)
			e.u64(1)
		}),
	}
	for name, b := range cases {
		codecRequireDecodeError(t, name, b)
	}
}

// Arbitrary corruptions of valid frames never panic; anything accepted re-encodes
// canonically (the fuzz package explores this far more deeply).
func TestDecodeCorruptionProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := codecDrawMessage(t, Kind(rapid.IntRange(1, int(kindEnd)-1).Draw(t, "kind")))
		b := Encode(nil, m)
		for i := range rapid.IntRange(1, 4).Draw(t, "edits") {
			pos := rapid.IntRange(0, len(b)).Draw(t, fmt.Sprintf("pos%d", i))
			switch rapid.IntRange(0, 2).Draw(t, fmt.Sprintf("op%d", i)) {
			case 0: // overwrite
				if pos < len(b) {
					b[pos] = rapid.Byte().Draw(t, fmt.Sprintf("byte%d", i))
				}
			case 1: // insert
				b = append(b[:pos], append([]byte{rapid.Byte().Draw(t, fmt.Sprintf("ins%d", i))}, b[pos:]...)...)
			case 2: // delete
				if pos < len(b) {
					b = append(b[:pos], b[pos+1:]...)
				}
			}
		}
		got, err := Decode(b)
		if err != nil {
			if got != nil || !errors.Is(err, ErrDecode) {
				t.Fatalf("bad error result: %v, %v", got, err)
			}
			return
		}
		enc := Encode(nil, got)
		again, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-encoding of an accepted frame does not decode: %v", err)
		}
		if !reflect.DeepEqual(got, again) || !bytes.Equal(enc, Encode(nil, again)) {
			t.Fatalf("accepted frame is not canonical after one round trip")
		}
	})
}

// Names travel only when valid: too long, or with a character outside [A-Za-z0-9._-], the
// decoder refuses them; a list answer holds at most MaxListVolumes entries.
func TestCodecVolumeNames(t *testing.T) {
	for _, bad := range []string{strings.Repeat("x", MaxVolumeName+1), "bad name", "a/b", "caf\u00e9", "x\x00"} {
		if CheckVolumeName(bad) == nil {
			t.Errorf("CheckVolumeName(%q) accepted", bad)
		}
		for _, m := range []Message{&AuthRequest{Op: OpCreateVolume, Name: bad}, &AuthReply{Name: bad},
			&AuthReply{List: []VolumeEntry{{Name: bad}}}} {
			if _, err := Decode(Encode(nil, m)); !errors.Is(err, ErrDecode) {
				t.Errorf("%T with name %q decoded: %v", m, bad, err)
			}
		}
	}
	for _, good := range []string{"", "db", "A-b_c.9", strings.Repeat("z", MaxVolumeName)} {
		if err := CheckVolumeName(good); err != nil {
			t.Errorf("CheckVolumeName(%q): %v", good, err)
		}
	}
	long := &AuthReply{List: make([]VolumeEntry, MaxListVolumes+1)}
	if _, err := Decode(Encode(nil, long)); !errors.Is(err, ErrDecode) {
		t.Errorf("a list of %d entries decoded: %v", MaxListVolumes+1, err)
	}
	long.List = long.List[:MaxListVolumes]
	for i := range long.List {
		long.List[i] = VolumeEntry{Name: strings.Repeat("n", MaxVolumeName), Config: Config{Volume: VolumeID(i + 1<<31), Blocks: 1 << 40,
			RF: 5, Epoch: 1 << 40, Primary: 1 << 30, InSync: []Addr{1 << 30, 1<<30 + 1}, Replicas: []Addr{1, 2, 3, 4, 5},
			QoS: QoS{IOPS: 1 << 40, BurstIOPS: 1 << 40, BurstCredits: 1 << 40, MBps: 1 << 40}}}
	}
	enc := Encode(nil, long)
	if _, err := Decode(enc); err != nil {
		t.Fatalf("a full list page: %v", err)
	}
	if len(enc) > 128<<10 {
		t.Errorf("a full list page of the largest entries is %d bytes, want it far below a frame", len(enc))
	}
}

// codecDrawAddress draws a node address: empty, or printable ASCII up to MaxAddressLen.
func codecDrawAddress(t *rapid.T, label string) string {
	return rapid.StringOfN(rapid.RuneFrom(nil, &unicode.RangeTable{R16: []unicode.Range16{{Lo: '!', Hi: '~', Stride: 1}}}), 0, MaxAddressLen, -1).Draw(t, label)
}
