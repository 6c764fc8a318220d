package netio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/cairnstore/cairn/core"
)

// Transport carries messages between this endpoint and others over TCP; see the package
// documentation. All methods are safe for concurrent use.
type Transport struct {
	cfg     TransportConfig
	log     *slog.Logger
	deliver func(from core.Addr, m core.Message, more bool)
	// peers: the address book, copy-on-write (AddPeer stores a new map; readers load it
	// without a lock).
	peers   atomic.Pointer[map[core.Addr]*peer]
	stats   transportCounters
	inbound atomic.Int64 // inbound connections open (including in their hello)

	mu      sync.Mutex
	started bool
	closed  bool
	ln      net.Listener
	conns   map[*conn]struct{}     // every open connection, closed on shutdown
	clients map[core.Addr]*inbound // latest inbound connection per non-peer endpoint

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// NewTransport builds a transport for c.Self. deliver is called for every message
// received, from the connections' reader goroutines, concurrently and in order per
// connection: it must handle the message promptly (step a state machine under a lock,
// or hand it over); while it blocks, that connection reads nothing, and Close waits for
// it. more reports that the connection's next message has already arrived: a receiver
// may then leave what it sends in reply to the connections' writers (which batch it)
// rather than write it itself (see Enqueue, Flush and Kick).
func NewTransport(c TransportConfig, deliver func(from core.Addr, m core.Message, more bool)) (*Transport, error) {
	if deliver == nil {
		return nil, errors.New("netio: nil deliver")
	}
	if err := c.setDefaults(); err != nil {
		return nil, err
	}
	t := &Transport{cfg: c, log: c.Log.With("self", c.Self), deliver: deliver,
		conns: make(map[*conn]struct{}), clients: make(map[core.Addr]*inbound)}
	peers := make(map[core.Addr]*peer, len(c.Peers))
	for a, hp := range c.Peers {
		if a != c.Self {
			peers[a] = t.newPeer(a, hp)
		}
	}
	t.peers.Store(&peers)
	return t, nil
}

func (t *Transport) newPeer(a core.Addr, hostport string) *peer {
	return &peer{addr: a, hostport: hostport, q: newSendQueue(t.cfg.QueueLimit, t.cfg.QueueBytes), back: make(chan struct{}, 1)}
}

// peer returns the address book's entry for a (nil: not a peer).
func (t *Transport) peer(a core.Addr) *peer { return (*t.peers.Load())[a] }

// AddPeer adds a node to the address book (a node that joined the running cluster); an
// address already known is kept. At most MaxNodes peers.
func (t *Transport) AddPeer(a core.Addr, hostport string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.peers.Load()
	if a == t.cfg.Self || old[a] != nil {
		return nil
	}
	if len(old) >= core.MaxNodes {
		return fmt.Errorf("netio: address book full (%d peers)", len(old))
	}
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		return fmt.Errorf("netio: peer %d address %q: %w", a, hostport, err)
	}
	peers := make(map[core.Addr]*peer, len(old)+1)
	for k, v := range old {
		peers[k] = v
	}
	p := t.newPeer(a, hostport)
	peers[a] = p
	t.peers.Store(&peers)
	if t.closed {
		putBufs(p.q.close())
	} else if t.started {
		t.spawn(func() { t.runPeer(p) })
	}
	t.log.Info("peer added", "peer", a, "address", hostport)
	return nil
}

// Start listens (if Listen is set) and starts the per-peer writers, which dial lazily on
// the first message. Everything stops when ctx is done or Close is called.
func (t *Transport) Start(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.started || t.closed {
		return errors.New("netio: transport already started or closed")
	}
	if t.cfg.Listen != "" {
		ln, err := net.Listen("tcp", t.cfg.Listen)
		if err != nil {
			return fmt.Errorf("netio: listen: %w", err)
		}
		t.ln = ln
	}
	t.started = true
	t.ctx, t.cancel = context.WithCancel(ctx)
	t.spawn(func() { <-t.ctx.Done(); t.shutdown() })
	if t.ln != nil {
		t.spawn(t.acceptLoop)
	}
	for _, p := range *t.peers.Load() {
		t.spawn(func() { t.runPeer(p) })
	}
	return nil
}

func (t *Transport) spawn(f func()) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f()
	}()
}

// Addr returns the listener's address, or nil without one (or before Start).
func (t *Transport) Addr() net.Addr {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ln == nil {
		return nil
	}
	return t.ln.Addr()
}

// Send encodes m and sends it to to without blocking: written straight to an idle
// connection, or queued for its writer. It drops the message (and counts it) if the queue
// is full, and counts it unroutable if to is neither a peer nor an endpoint with an
// inbound connection. Self-addressed messages are unroutable: the caller loops them back
// itself.
func (t *Transport) Send(to core.Addr, m core.Message) {
	if q := t.Enqueue(to, m); q != nil {
		t.Flush(q)
	}
}

// Enqueue encodes m and queues it for to, like Send, but does not write it: the caller
// calls Flush with the queue it returns (nil if the message was not queued) soon, for
// example after letting go of a lock, so that what it queued under the lock leaves in
// one write and no write is made under the lock.
func (t *Transport) Enqueue(to core.Addr, m core.Message) Queue {
	var q *sendQueue
	if p := t.peer(to); p != nil {
		q = p.q
	} else {
		t.mu.Lock()
		if in := t.clients[to]; in != nil {
			q = in.q
		}
		t.mu.Unlock()
	}
	if q == nil {
		t.stats.unroutable.Add(1)
		return nil
	}
	f := core.Encode(getBuf()[:frameHeader], m) // the frame, header filled in below
	if len(f)-frameHeader > MaxFrame || !q.push(putHeader(f), false) {
		t.stats.dropped.Add(1)
		putBufs([][]byte{f})
		return nil
	}
	return q
}

// Queue is a connection's send queue, as Enqueue returns it.
type Queue = *sendQueue

// Kick leaves what is queued for q's connection to its writer goroutine, which writes
// it in batches: under load, that costs fewer writes than a Flush per message.
func (t *Transport) Kick(q Queue) {
	if q != nil {
		q.signal()
	}
}

// Flush writes what is queued for q's connection, from the calling goroutine if nobody
// is writing to it and without blocking; the rest is left to its writer.
func (t *Transport) Flush(q Queue) {
	if q == nil {
		return
	}
	n, short := q.writeOut()
	t.stats.sent.Add(uint64(n))
	if short {
		t.stats.shortWrites.Add(1)
	}
}

// Close stops the listener, the writers and every connection, and waits for the
// transport's goroutines (including deliver calls in progress). It is idempotent.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		started := t.started
		if !started {
			t.closed = true
		}
		t.mu.Unlock()
		if started {
			t.cancel()
		}
		t.wg.Wait()
		t.mu.Lock()
		peers := *t.peers.Load()
		t.mu.Unlock()
		for _, p := range peers {
			putBufs(p.q.close())
		}
	})
	return nil
}

// shutdown closes the listener and every connection; it runs once, when t.ctx is done.
func (t *Transport) shutdown() {
	t.mu.Lock()
	t.closed = true
	ln := t.ln
	conns := make([]*conn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, c := range conns {
		c.fail(net.ErrClosed)
	}
}

// track registers c for shutdown, or closes it and reports false if shutting down.
func (t *Transport) track(c *conn) bool {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		c.fail(net.ErrClosed)
		return false
	}
	t.conns[c] = struct{}{}
	t.mu.Unlock()
	return true
}

func (t *Transport) untrack(c *conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}
