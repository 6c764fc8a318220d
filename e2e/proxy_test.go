package e2e

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/internal/testutil"
	"github.com/cairnstore/cairn/netio"
)

// faultNet is a fault-injecting network of TCP proxies, one in front of each node: the
// node listens on a private port (cairn node --listen) and the address book (--peers),
// which every node and client dials, names the proxy's port instead. A proxy reads the
// first frame of every inbound connection, the hello that names the sender (netio's
// transport sends one first on every connection), forwards it to the node and then
// splices bytes both ways.
//
// Node-to-node traffic is directed: a node sends to a peer only on its own outbound
// connection, so node A's messages to B all flow through B's proxy on connections whose
// hello names A, and cutting the link A→B closes exactly those. Clients (ids >= 1000)
// are answered on their own connection; cutting a node's clients closes both directions.
// While a link is cut, new connections over it are refused (closed right after the hello)
// or blackholed (held without an answer until the link heals, when they are forwarded as
// if nothing happened, or until the proxy closes), as the cut's mode says.
//
// Bounded: each proxy serves at most maxConns connections at once (more are closed at
// once), and Close ends every goroutine and waits for them.
type faultNet struct {
	maxConns int

	mu      sync.Mutex
	cuts    map[link]cutMode      // directed node links that are cut
	clients map[core.Addr]cutMode // nodes cut off from every client (both directions)
	proxies map[core.Addr]*proxy
	healed  chan struct{} // closed (and replaced) whenever a cut is removed: held connections look again
	closed  bool
	done    chan struct{}
	wg      sync.WaitGroup

	stats struct {
		accepted, spliced, refused, held, severed, overCap, dialFailed atomic.Int64
	}

	// trace, if set before the first connection, gets one line per message on every
	// client connection (decoded; the connections are then relayed frame by frame).
	trace func(line string)
}

// link is a directed link between two nodes: from's messages to to.
type link struct{ from, to core.Addr }

// cutMode is how a cut link treats new connections.
type cutMode uint8

const (
	refuse    cutMode = iota + 1 // closed right after the hello (like a connection reset)
	blackhole                    // held open, unanswered, until the link heals (like lost packets)
)

func (m cutMode) String() string {
	if m == blackhole {
		return "blackhole"
	}
	return "refuse"
}

// adminClientBase: `cairn node` runs its admin API's client as endpoint 0x7000_0000 + id
// (cmd/cairn/node.go). The proxy counts that client as part of its node: a cut node's
// admin API is cut with it, as on a real host.
const adminClientBase core.Addr = 0x7000_0000

// clientBase: endpoints at or above it (and not a node's admin client) are clients.
const clientBase core.Addr = 1000

// owner returns the node a sender belongs to, or 0 for a client.
func owner(a core.Addr) core.Addr {
	switch {
	case a >= adminClientBase && a < adminClientBase+clientBase:
		return a - adminClientBase
	case a >= clientBase:
		return 0
	default:
		return a
	}
}

func newFaultNet(maxConns int) *faultNet {
	return &faultNet{maxConns: maxConns, cuts: map[link]cutMode{}, clients: map[core.Addr]cutMode{},
		proxies: map[core.Addr]*proxy{}, healed: make(chan struct{}), done: make(chan struct{})}
}

// proxy is the listener in front of one node.
type proxy struct {
	n      *faultNet
	id     core.Addr
	target string // the node's private address
	ln     net.Listener
	active atomic.Int64        // connections being served (hello, held or spliced)
	conns  map[*pconn]struct{} // spliced connections; guarded by n.mu
}

// pconn is one spliced connection: down from the sender, up to the node.
type pconn struct {
	from     core.Addr
	down, up net.Conn
}

func (pc *pconn) close() {
	pc.down.Close()
	pc.up.Close()
}

// add starts a proxy for node id in front of target and returns its address.
func (n *faultNet) add(id core.Addr, target string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	p := &proxy{n: n, id: id, target: target, ln: ln, conns: map[*pconn]struct{}{}}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		ln.Close()
		return "", net.ErrClosed
	}
	n.proxies[id] = p
	n.spawn(p.acceptLoop)
	return ln.Addr().String(), nil
}

func (n *faultNet) spawn(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// Close closes every listener and connection and waits for every goroutine.
func (n *faultNet) Close() {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	close(n.done)
	for _, p := range n.proxies {
		p.ln.Close()
		for pc := range p.conns {
			pc.close()
		}
	}
	n.mu.Unlock()
	n.wg.Wait()
}

// blocked reports how the link from sender to node `to` is cut (0: it is not). n.mu held.
func (n *faultNet) blocked(from, to core.Addr) cutMode {
	if o := owner(from); o != 0 {
		return n.cuts[link{o, to}]
	}
	return n.clients[to]
}

// sever closes the spliced connections into `to` that the link from `from` (a node, or 0
// for every client) carries. n.mu held.
func (n *faultNet) sever(from, to core.Addr) {
	p := n.proxies[to]
	if p == nil {
		return
	}
	for pc := range p.conns {
		if owner(pc.from) == from {
			pc.close()
			delete(p.conns, pc)
			n.stats.severed.Add(1)
		}
	}
}

// cut cuts the directed link from → to.
func (n *faultNet) cut(from, to core.Addr, mode cutMode) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cuts[link{from, to}] = mode
	n.sever(from, to)
}

// cutBoth cuts a and b apart, both directions.
func (n *faultNet) cutBoth(a, b core.Addr, mode cutMode) {
	n.cut(a, b, mode)
	n.cut(b, a, mode)
}

// cutClients cuts node off from every client, both directions.
func (n *faultNet) cutClients(node core.Addr, mode cutMode) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.clients[node] = mode
	n.sever(0, node)
}

// isolate cuts node off from every other node (and, with clients, from every client).
func (n *faultNet) isolate(node core.Addr, all []core.Addr, clients bool, mode cutMode) {
	for _, m := range all {
		if m != node {
			n.cutBoth(node, m, mode)
		}
	}
	if clients {
		n.cutClients(node, mode)
	}
}

// heal removes the cut of from → to.
func (n *faultNet) heal(from, to core.Addr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.cuts, link{from, to})
	n.wake()
}

// healClients lets clients reach node again.
func (n *faultNet) healClients(node core.Addr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.clients, node)
	n.wake()
}

// healAll removes every cut.
func (n *faultNet) healAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.cuts)
	clear(n.clients)
	n.wake()
}

// wake lets held connections look at the cuts again. n.mu held.
func (n *faultNet) wake() {
	close(n.healed)
	n.healed = make(chan struct{})
}

// cutLinks lists the cut links, for logs.
func (n *faultNet) cutLinks() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var b bytes.Buffer
	for l, m := range n.cuts {
		fmt.Fprintf(&b, "%d→%d(%v) ", l.from, l.to, m)
	}
	for a, m := range n.clients {
		fmt.Fprintf(&b, "clients↔%d(%v) ", a, m)
	}
	return b.String()
}

func (n *faultNet) statsString() string {
	s := &n.stats
	return fmt.Sprintf("connections accepted %d, spliced %d, refused %d, blackholed %d, severed by cuts %d, over the cap %d, node unreachable %d",
		s.accepted.Load(), s.spliced.Load(), s.refused.Load(), s.held.Load(), s.severed.Load(), s.overCap.Load(), s.dialFailed.Load())
}

func (p *proxy) acceptLoop() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			select {
			case <-p.n.done:
				return
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			select {
			case <-p.n.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		if p.active.Add(1) > int64(p.n.maxConns) {
			p.active.Add(-1)
			p.n.stats.overCap.Add(1)
			c.Close()
			continue
		}
		p.n.stats.accepted.Add(1)
		p.n.spawn(func() {
			defer p.active.Add(-1)
			p.serve(c)
		})
	}
}

// helloTimeout bounds the wait for an inbound connection's first frame, and the dial
// to the node behind the proxy.
const helloTimeout = 5 * time.Second

// readHello reads the first frame of a connection and returns the sender it names and
// the frame's bytes, to forward unchanged.
func readHello(c net.Conn) (core.Addr, []byte, error) {
	c.SetReadDeadline(time.Now().Add(helloTimeout))
	defer c.SetReadDeadline(time.Time{})
	payload, err := netio.ReadFrame(c, nil)
	if err != nil {
		return 0, nil, err
	}
	// The hello: "HELO" | sender uint32 BE | nonce uint64 BE (netio/transport_hello.go).
	if len(payload) != 16 || string(payload[:4]) != "HELO" {
		return 0, nil, fmt.Errorf("first frame is not a hello (%d bytes)", len(payload))
	}
	var frame bytes.Buffer
	if err := netio.WriteFrame(&frame, payload); err != nil {
		return 0, nil, err
	}
	return core.Addr(binary.BigEndian.Uint32(payload[4:])), frame.Bytes(), nil
}

// serve handles one inbound connection: hello, then refuse, hold or splice.
func (p *proxy) serve(down net.Conn) {
	n := p.n
	from, hello, err := readHello(down)
	if err != nil {
		down.Close()
		return
	}
	// With a trace, a client connection's fate is traced too.
	event := func(string) {}
	if tr := n.trace; tr != nil && owner(from) == 0 {
		event = func(what string) { tr(fmt.Sprintf("%d → node %d: connection %p %s", from, p.id, down, what)) }
	}
	heldOnce := false
	for {
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			down.Close()
			return
		}
		mode, wake := n.blocked(from, p.id), n.healed
		n.mu.Unlock()
		switch mode {
		case refuse:
			n.stats.refused.Add(1)
			event("refused")
			down.Close()
			return
		case blackhole:
			if !heldOnce {
				n.stats.held.Add(1)
				event("held (blackhole)")
				heldOnce = true
			}
			select {
			case <-wake:
				continue
			case <-n.done:
				down.Close()
				return
			}
		}
		up, err := net.DialTimeout("tcp", p.target, helloTimeout)
		if err != nil {
			n.stats.dialFailed.Add(1)
			down.Close() // the node is down: its proxy refuses, as the node's port would
			return
		}
		pc := &pconn{from: from, down: down, up: up}
		n.mu.Lock()
		if n.closed || n.blocked(from, p.id) != 0 {
			n.mu.Unlock()
			up.Close()
			continue // cut meanwhile: look again
		}
		p.conns[pc] = struct{}{}
		n.mu.Unlock()
		n.stats.spliced.Add(1)
		event("spliced")
		p.splice(pc, hello)
		event("closed")
		n.mu.Lock()
		delete(p.conns, pc)
		n.mu.Unlock()
		return
	}
}

// splice forwards hello and then bytes both ways until either side ends or the
// connection is severed; it returns once both directions have stopped.
func (p *proxy) splice(pc *pconn, hello []byte) {
	pc.up.SetWriteDeadline(time.Now().Add(helloTimeout))
	if _, err := pc.up.Write(hello); err != nil {
		pc.close()
		return
	}
	pc.up.SetWriteDeadline(time.Time{})
	copyUp := func() { _, _ = io.Copy(pc.up, pc.down) }
	copyDown := func() { _, _ = io.Copy(pc.down, pc.up) }
	if tr := p.n.trace; tr != nil && owner(pc.from) == 0 {
		copyUp = func() {
			relayFrames(pc.up, pc.down, func(m string) { tr(fmt.Sprintf("%d → node %d: %s", pc.from, p.id, m)) })
		}
		copyDown = func() {
			relayFrames(pc.down, pc.up, func(m string) { tr(fmt.Sprintf("%d ← node %d: %s", pc.from, p.id, m)) })
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		copyUp()
		pc.close()
	}()
	copyDown()
	pc.close()
	wg.Wait()
}

// relayFrames copies frames from src to dst, describing each message to log; the first
// frame from a node is its hello, which is not a message.
func relayFrames(dst io.Writer, src io.Reader, log func(string)) {
	w := bufio.NewWriter(dst)
	for {
		p, err := netio.ReadFrame(src, nil)
		if err != nil {
			return
		}
		if len(p) > 0 {
			if m, err := core.Decode(p); err == nil {
				log(describe(m))
			}
		}
		if netio.WriteFrame(w, p) != nil || w.Flush() != nil {
			return
		}
	}
}

// describe summarises a client-facing message without its data.
func describe(m core.Message) string {
	switch m := m.(type) {
	case *core.ClientWrite:
		return fmt.Sprintf("write vol %d epoch %d req %d oldest %d block %d count %d", m.Vol, m.Epoch, m.Req, m.Oldest, m.Block, len(m.Data)/core.BlockSize)
	case *core.ClientRead:
		return fmt.Sprintf("read vol %d epoch %d req %d block %d count %d", m.Vol, m.Epoch, m.Req, m.Block, m.Count)
	case *core.ClientFlush:
		return fmt.Sprintf("flush vol %d epoch %d req %d", m.Vol, m.Epoch, m.Req)
	case *core.ClientReply:
		s := fmt.Sprintf("reply vol %d req %d %v epoch %d", m.Vol, m.Req, m.Status, m.Epoch)
		if m.HasConfig {
			s += fmt.Sprintf(" config epoch %d primary %d in-sync %v", m.Config.Epoch, m.Config.Primary, m.Config.InSync)
		}
		return s
	case *core.AuthRequest:
		return fmt.Sprintf("authority request op %d req %d vol %d", m.Op, m.ReqID, m.Vol)
	case *core.AuthReply:
		return fmt.Sprintf("authority reply op %d req %d %v leader %d config epoch %d primary %d in-sync %v", m.Op, m.ReqID, m.Status,
			m.Leader, m.Config.Epoch, m.Config.Primary, m.Config.InSync)
	default:
		return fmt.Sprintf("%T", m)
	}
}

// TestFaultNetCutsAndHeals drives two real transports through the proxies: a directed
// cut stops one direction only, healing restores it, a client cut stops a client, and
// Close ends every goroutine.
func TestFaultNetCutsAndHeals(t *testing.T) {
	base := goroutines()
	fn := newFaultNet(64)
	priv := testutil.FreePorts(t, 2)
	pub := map[core.Addr]string{}
	for i, id := range []core.Addr{1, 2} {
		a, err := fn.add(id, priv[i])
		if err != nil {
			t.Fatal(err)
		}
		pub[id] = a
	}
	got := make(chan [2]core.Addr, 1024) // (from, to)
	start := func(self core.Addr, listen string, peers map[core.Addr]string) *netio.Transport {
		tr, err := netio.NewTransport(netio.TransportConfig{Self: self, Listen: listen, Peers: peers,
			DialTimeout: 500 * time.Millisecond, BackoffMax: 200 * time.Millisecond},
			func(from core.Addr, m core.Message, _ bool) { got <- [2]core.Addr{from, self} })
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		return tr
	}
	n1 := start(1, priv[0], pub)
	n2 := start(2, priv[1], pub)
	cl := start(1000, "", pub)
	msg := &core.ClientRead{Vol: 1, Client: 7, Req: 1, Count: 1}
	// expect sends from → to until one arrives (or, with want false, checks none does).
	expect := func(what string, from *netio.Transport, fromID, to core.Addr, want bool) {
		t.Helper()
		if !want {
			// Messages the previous expectation sent before the cut may still be on their
			// way through the proxy: let them land before checking that none gets through.
			time.Sleep(200 * time.Millisecond)
		}
		for len(got) > 0 {
			<-got
		}
		deadline := time.Now().Add(3 * time.Second)
		if !want {
			deadline = time.Now().Add(700 * time.Millisecond)
		}
		for time.Now().Before(deadline) {
			from.Send(to, msg)
			select {
			case d := <-got:
				if d == [2]core.Addr{fromID, to} {
					if !want {
						t.Fatalf("%s: %d→%d delivered while cut (%s)", what, fromID, to, fn.cutLinks())
					}
					return
				}
			case <-time.After(50 * time.Millisecond):
			}
		}
		if want {
			t.Fatalf("%s: %d→%d not delivered within 3 s (%s)", what, fromID, to, fn.statsString())
		}
	}
	expect("healthy", n1, 1, 2, true)
	expect("healthy", n2, 2, 1, true)
	expect("client", cl, 1000, 1, true)
	for _, mode := range []cutMode{refuse, blackhole} {
		fn.cut(1, 2, mode)
		expect("cut 1→2 ("+mode.String()+")", n1, 1, 2, false)
		expect("reverse of a one-way cut ("+mode.String()+")", n2, 2, 1, true)
		fn.heal(1, 2)
		expect("healed 1→2 ("+mode.String()+")", n1, 1, 2, true)
	}
	fn.isolate(2, []core.Addr{1, 2}, true, blackhole)
	expect("isolated 2, from 1", n1, 1, 2, false)
	expect("isolated 2, to 1", n2, 2, 1, false)
	expect("isolated 2, from a client", cl, 1000, 2, false)
	expect("not isolated 1, from a client", cl, 1000, 1, true)
	fn.healAll()
	expect("healed all, 1→2", n1, 1, 2, true)
	expect("healed all, 2→1", n2, 2, 1, true)
	expect("healed all, client→2", cl, 1000, 2, true)
	t.Log(fn.statsString())

	for _, tr := range []*netio.Transport{n1, n2, cl} {
		tr.Close()
	}
	fn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for goroutines() > base && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if g := goroutines(); g > base {
		t.Fatalf("%d goroutines after Close, %d before the proxies started", g, base)
	}
}

func goroutines() int { return runtime.NumGoroutine() }
