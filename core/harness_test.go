package core

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// A tiny deterministic driver for the scenario tests: N nodes (addr 1..N, node 1 is the
// authority, node i in zone i-1), one in-memory crashable Storage per node, a manual
// router (every message is encoded and decoded), one global test clock with a per-node
// skew, and one core.Client. Nothing happens unless the test says so.

const (
	hBase   int64    = 10 * Second // every clock starts here (zero times stay special)
	hStep   int64    = 10 * Millisecond
	hAuth   Addr     = 1
	hAdmin  Addr     = 99  // sends raw authority requests
	hClient Addr     = 100 // the core.Client
	hRaw    Addr     = 101 // sends raw client requests (no retries)
	hVol    VolumeID = 1
	hBlocks uint64   = 16
)

// memStore is a crashable in-memory Storage: appends and checkpoints become durable when
// the harness completes them; block writes (and volume deletions) are volatile until a
// checkpoint completes.
type memStore struct {
	snapshot []byte
	journal  [][]byte
	durable  map[blockKey][]byte // block data as of the last checkpoint
	volatile map[blockKey][]byte // block writes since (nil: the block was deleted)
	inflight []StorageOp
}

type blockKey struct {
	vol   VolumeID
	block uint64
}

func newMemStore() *memStore {
	return &memStore{durable: map[blockKey][]byte{}, volatile: map[blockKey][]byte{}}
}

func (s *memStore) Load() ([]byte, [][]byte, error) { return s.snapshot, s.journal, nil }

func (s *memStore) ReadBlocks(vol VolumeID, block uint64, buf []byte) error {
	for i := 0; i*BlockSize < len(buf); i++ {
		dst := buf[i*BlockSize : (i+1)*BlockSize]
		k := blockKey{vol, block + uint64(i)}
		if b, ok := s.volatile[k]; ok {
			copy(dst, b)
			if b == nil {
				clear(dst)
			}
		} else if b, ok := s.durable[k]; ok {
			copy(dst, b)
		} else {
			clear(dst)
		}
	}
	return nil
}

func (s *memStore) WriteBlocks(vol VolumeID, block uint64, data []byte) error {
	for i := 0; i*BlockSize < len(data); i++ {
		s.volatile[blockKey{vol, block + uint64(i)}] = bytes.Clone(data[i*BlockSize : (i+1)*BlockSize])
	}
	return nil
}

func (s *memStore) DeleteVolume(vol VolumeID) error {
	for _, m := range []map[blockKey][]byte{s.durable, s.volatile} {
		for k := range m { // order-independent
			if k.vol == vol {
				s.volatile[k] = nil
			}
		}
	}
	return nil
}

// blocksOf counts the blocks of vol the store holds (what a reader of its disk would find).
func (s *memStore) blocksOf(vol VolumeID) int {
	n := 0
	for k, b := range s.durable { // order-independent
		if v, ok := s.volatile[k]; k.vol == vol && (!ok || v != nil) && b != nil {
			n++
		}
	}
	for k, b := range s.volatile { // order-independent
		if _, ok := s.durable[k]; k.vol == vol && !ok && b != nil {
			n++
		}
	}
	return n
}

func (s *memStore) apply(op StorageOp) {
	if op.Kind == OpAppend {
		s.journal = append(s.journal, op.Data)
		return
	}
	for k, b := range s.volatile { // order-independent
		if b == nil {
			delete(s.durable, k)
		} else {
			s.durable[k] = b
		}
	}
	clear(s.volatile)
	s.snapshot, s.journal = op.Data, nil
}

// crash loses every op not completed and every block write since the last checkpoint.
func (s *memStore) crash() {
	s.inflight = nil
	clear(s.volatile)
}

type hnode struct {
	addr   Addr
	p      Params
	st     *memStore
	n      *Node
	up     bool
	manual bool  // storage ops wait for completeOps
	skew   int64 // this node's clock offset
	// expectFatal: a fatal output stops the node (fatal keeps it) instead of failing the test.
	expectFatal bool
	fatal       error
}

type hmsg struct {
	from, to Addr
	data     []byte
}

// traced is one delivery attempt, recorded for assertions.
type traced struct {
	at       int64 // test time
	from, to Addr
	msg      Message
	dropped  bool
}

type cluster struct {
	t      *testing.T
	now    int64 // test time; node clocks are hBase + now + skew
	nodes  []*hnode
	cl     *Client
	queue  []hmsg
	cut    map[[2]Addr]bool // directed links that drop everything
	held   map[Addr]bool    // messages to these stay queued
	drop   func(from, to Addr, m Message) bool
	trace  []traced
	inbox  []Message // delivered to hAdmin / hRaw
	done   map[uint64]Completion
	issued []Config
}

func newCluster(t *testing.T, n int, tweak func(*Params)) *cluster {
	t.Helper()
	c := &cluster{t: t, cut: map[[2]Addr]bool{}, held: map[Addr]bool{}, done: map[uint64]Completion{}}
	var infos []NodeInfo
	for i := 1; i <= n; i++ {
		infos = append(infos, NodeInfo{Addr: Addr(i), Zone: uint32(i - 1)})
	}
	for _, ni := range infos {
		p := DefaultParams(ni.Addr, ni.Zone, []Addr{hAuth}, infos)
		p.Disk = hDisk(ni.Addr, 0)
		if tweak != nil {
			tweak(&p)
		}
		h := &hnode{addr: ni.Addr, p: p, st: newMemStore()}
		c.nodes = append(c.nodes, h)
		c.start(h)
	}
	c.cl = NewClient(DefaultClientParams(hClient, 7, c.nodes[0].p.Authorities))
	t.Cleanup(func() {
		if t.Failed() { // the last deliveries, heartbeats aside
			var lines []string
			for _, tr := range c.trace {
				if _, hb := tr.msg.(*Heartbeat); !hb {
					lines = append(lines, fmt.Sprintf("%5dms %d->%d drop=%v %T%+v", tr.at/Millisecond, tr.from, tr.to, tr.dropped, tr.msg, tr.msg))
				}
			}
			t.Log("trace tail:\n" + strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	// The authority cell elects a leader before anyone asks it anything.
	c.runUntil(5*Second, "an authority leader", func() bool { return c.authLeader() != 0 })
	return c
}

// authLeader is the up member that leads the cell at the highest term (0: none).
func (c *cluster) authLeader() Addr {
	best, bestTerm := Addr(0), uint64(0)
	for _, h := range c.nodes {
		if !h.up {
			continue
		}
		if l, term, _, ok := h.n.AuthorityStatus(); ok && l && term >= bestTerm {
			best, bestTerm = h.addr, term
		}
	}
	return best
}

func (c *cluster) node(a Addr) *hnode   { return c.nodes[a-1] }
func (c *cluster) clock(h *hnode) int64 { return hBase + c.now + h.skew }
func (c *cluster) vol(a Addr) *volume   { return c.node(a).n.vols[hVol] }

func (c *cluster) authCfg() Config {
	a := c.authLeader()
	if a == 0 {
		a = hAuth
	}
	cfg, ok := c.node(a).n.AuthorityConfig(hVol)
	if !ok {
		c.t.Fatalf("authority has no config for volume %d", hVol)
	}
	return cfg
}

// start builds a fresh Node on h's storage and recovers it (a restart after crash).
func (c *cluster) start(h *hnode) {
	n, err := NewNode(h.p, h.st, NewRand(uint64(h.addr)))
	if err != nil {
		c.t.Fatal(err)
	}
	if err := n.Start(c.clock(h)); err != nil {
		c.t.Fatalf("node %d start: %v", h.addr, err)
	}
	h.n, h.up = n, true
	c.flush(h)
}

// crash stops a node: no more ticks, messages to or from it are dropped, and its storage
// loses what it had not made durable.
func (c *cluster) crash(a Addr) {
	h := c.node(a)
	h.up = false
	h.st.crash()
}

// flush collects a node's output; storage ops complete at once unless h.manual.
func (c *cluster) flush(h *hnode) {
	for {
		out := h.n.Drain()
		if out.Fatal != nil && h.expectFatal {
			h.fatal, h.up = out.Fatal, false // the node stops, as its driver would stop it
			return
		}
		if out.Fatal != nil {
			c.t.Fatalf("node %d fatal: %v", h.addr, out.Fatal)
		}
		for _, ic := range out.Issued {
			c.issued = append(c.issued, ic.Config)
		}
		for _, e := range out.Msgs {
			c.post(h.addr, e.To, e.Msg)
		}
		h.st.inflight = append(h.st.inflight, out.Ops...)
		if h.manual || len(h.st.inflight) == 0 {
			return
		}
		c.completeOne(h)
	}
}

func (c *cluster) completeOne(h *hnode) {
	op := h.st.inflight[0]
	h.st.inflight = h.st.inflight[1:]
	h.st.apply(op)
	h.n.StorageDone(c.clock(h), op.Seq, nil)
}

func (c *cluster) flushClient() {
	envs, comps := c.cl.Drain()
	for _, e := range envs {
		c.post(hClient, e.To, e.Msg)
	}
	for _, d := range comps {
		c.done[d.Req] = d
	}
}

func (c *cluster) post(from, to Addr, m Message) {
	c.queue = append(c.queue, hmsg{from: from, to: to, data: Encode(nil, m)})
}

// inject sends a hand-made message (it goes through the codec like any other).
func (c *cluster) inject(from, to Addr, m Message) {
	c.post(from, to, m)
	c.deliverAll()
}

func (c *cluster) isDown(a Addr) bool {
	return a >= 1 && int(a) <= len(c.nodes) && !c.node(a).up
}

// deliverAll delivers queued messages (and whatever they cause) until only held ones remain.
func (c *cluster) deliverAll() {
	for range 10000 {
		var keep []hmsg
		q := c.queue
		c.queue = nil
		progressed := false
		for _, m := range q {
			if c.held[m.to] {
				keep = append(keep, m)
				continue
			}
			progressed = true
			c.deliver(m)
		}
		c.queue = append(keep, c.queue...)
		if !progressed {
			return
		}
	}
	c.t.Fatal("messages still flowing after 10000 rounds")
}

func (c *cluster) deliver(hm hmsg) {
	m, err := Decode(hm.data)
	if err != nil {
		c.t.Fatalf("%d->%d: %v", hm.from, hm.to, err)
	}
	dropped := c.cut[[2]Addr{hm.from, hm.to}] || c.isDown(hm.from) || c.isDown(hm.to) ||
		(c.drop != nil && c.drop(hm.from, hm.to, m))
	c.trace = append(c.trace, traced{at: c.now, from: hm.from, to: hm.to, msg: m, dropped: dropped})
	switch {
	case dropped:
	case hm.to == hClient:
		c.cl.Step(hBase+c.now, hm.from, m)
		c.flushClient()
	case hm.to >= 1 && int(hm.to) <= len(c.nodes):
		h := c.node(hm.to)
		h.n.Step(c.clock(h), hm.from, m)
		c.flush(h)
	default:
		c.inbox = append(c.inbox, m)
	}
}

// cutLink drops everything between a and b (both directions); heal restores it.
func (c *cluster) cutLink(a, b Addr) { c.cut[[2]Addr{a, b}], c.cut[[2]Addr{b, a}] = true, true }
func (c *cluster) healLink(a, b Addr) {
	delete(c.cut, [2]Addr{a, b})
	delete(c.cut, [2]Addr{b, a})
}

// isolate cuts a from every node and the client.
func (c *cluster) isolate(a Addr) {
	for _, h := range c.nodes {
		if h.addr != a {
			c.cutLink(a, h.addr)
		}
	}
	c.cutLink(a, hClient)
}

// run advances time by d in hStep ticks, delivering everything after each tick.
func (c *cluster) run(d int64) {
	for end := c.now + d; c.now < end; {
		c.step()
	}
}

func (c *cluster) step() {
	c.now += hStep
	for _, h := range c.nodes {
		if h.up {
			h.n.Tick(c.clock(h))
			c.flush(h)
		}
	}
	c.cl.Tick(hBase + c.now)
	c.flushClient()
	c.deliverAll()
}

// runUntil ticks until cond holds, failing the test after limit.
func (c *cluster) runUntil(limit int64, what string, cond func() bool) {
	c.t.Helper()
	for end := c.now + limit; !cond(); {
		if c.now >= end {
			c.t.Fatalf("after %dms: %s did not happen", limit/Millisecond, what)
		}
		c.step()
	}
}

// createVolume asks the authority (as an admin) for an RF=3 volume.
func (c *cluster) createVolume() Config {
	c.t.Helper()
	c.inject(hAdmin, c.authLeader(), &AuthRequest{Op: OpCreateVolume, ReqID: 1, Vol: hVol, Blocks: hBlocks, RF: 3})
	for _, m := range c.inbox {
		if r, ok := m.(*AuthReply); ok && r.ReqID == 1 {
			if r.Status != StatusOK {
				c.t.Fatalf("create volume: %v", r.Status)
			}
			// The primary renews the volume's first epoch before it serves (DESIGN 2.4):
			// the volume is ready once every replica holds the renewed configuration.
			want := r.Config.Epoch + 1
			c.runUntil(5*Second, "primary renews the created volume", func() bool {
				for _, a := range r.Config.Replicas {
					if v := c.vol(a); v == nil || v.cfg.Epoch < want || (v.prim != nil && v.prim.renewing) {
						return false
					}
				}
				return true
			})
			return c.authCfg()
		}
	}
	c.t.Fatal("create volume: no reply")
	return Config{}
}

func (c *cluster) write(block uint64, data []byte) uint64 {
	req := c.cl.Write(hBase+c.now, hVol, block, data)
	c.flushClient()
	c.deliverAll()
	return req
}

func (c *cluster) read(block uint64, count uint32) uint64 {
	req := c.cl.Read(hBase+c.now, hVol, block, count)
	c.flushClient()
	c.deliverAll()
	return req
}

// waitOK waits for the client to complete req with StatusOK.
func (c *cluster) waitOK(req uint64, limit int64) Completion {
	c.t.Helper()
	c.runUntil(limit, "completion of client request", func() bool { _, ok := c.done[req]; return ok })
	d := c.done[req]
	if d.Status != StatusOK || d.Unknown {
		c.t.Fatalf("request %d: status %v unknown=%v", req, d.Status, d.Unknown)
	}
	return d
}

// writeOK writes and waits for the acknowledgement.
func (c *cluster) writeOK(block uint64, data []byte) Completion {
	c.t.Helper()
	return c.waitOK(c.write(block, data), 2*Second)
}

// readOK reads through the client and checks the data.
func (c *cluster) readOK(block uint64, want []byte) Completion {
	c.t.Helper()
	d := c.waitOK(c.read(block, uint32(len(want)/BlockSize)), 2*Second)
	if !bytes.Equal(d.Data, want) {
		c.t.Fatalf("read block %d: got %x..., want %x...", block, head(d.Data), head(want))
	}
	return d
}

// stored is what node a's block store holds (what a reader of its disk would see).
func (c *cluster) stored(a Addr, block uint64, count int) []byte {
	buf := make([]byte, count*BlockSize)
	_ = c.node(a).st.ReadBlocks(hVol, block, buf)
	return buf
}

// traceOf lists the deliveries (or drops) of messages of type M matching pred.
func traceOf[M Message](c *cluster, pred func(tr traced, m M) bool) []traced {
	var out []traced
	for _, tr := range c.trace {
		if m, ok := tr.msg.(M); ok && (pred == nil || pred(tr, m)) {
			out = append(out, tr)
		}
	}
	return out
}

// fill returns count blocks filled with b.
func fill(b byte, count int) []byte { return bytes.Repeat([]byte{b}, count*BlockSize) }

func head(b []byte) []byte { return b[:min(len(b), 8)] }

func others(cfg Config, a Addr) []Addr {
	var out []Addr
	for _, r := range cfg.Replicas {
		if r != a {
			out = append(out, r)
		}
	}
	return out
}

// hDisk is node a's disk identity after `wipes` wipes.
func hDisk(a Addr, wipes int) uint64 { return uint64(a)<<32 | uint64(wipes)<<8 | 0xd1 }

// wipe loses node a's disk: it crashes and its storage is replaced by an empty one under a
// new disk identity (the wipes-th); start it again with c.start.
func (c *cluster) wipe(a Addr, wipes int) {
	c.crash(a)
	h := c.node(a)
	h.st = newMemStore()
	h.p.Disk = hDisk(a, wipes)
}
