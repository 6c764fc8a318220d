package netio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cairnstore/cairn/core"
)

// Client runs the deterministic client library (core.Client) over a Transport with the
// real clock. Every call into the library holds the client's lock, and the goroutine
// that made it sends what the library produced (queued under the lock, written after it,
// see Transport.Enqueue): an operation leaves on its caller's goroutine and completes on the transport reader that
// received its answer, with no loop goroutine in between. A ticker goroutine ticks the
// library. Read, Write, Flush and Admin block until their operation completes or ctx
// ends. Safe for concurrent use.
type Client struct {
	id core.Addr
	tr *Transport
	// opTimeout: the library gives up on an operation after this long.
	opTimeout time.Duration
	node      *Runner // the node in this process, if any (the local route, local.go)
	pipe      *pipe   // with node: carries what the client sends it while the node steps it
	log       *slog.Logger
	start     time.Time
	base      int64
	stop      chan struct{}
	wg        sync.WaitGroup

	mu      sync.Mutex // held for every call into c and for the fields below
	closed  bool
	c       *core.Client
	waiting map[uint64]chan core.Completion
	admin   map[uint64]chan *core.AuthReply
	nextID  uint64
	guess   core.LeaderGuess // where admin requests go
	backlog []func()         // operations waiting for the library's in-flight bound (FIFO, bounded by callers)
	forNode []core.Message   // messages for node, handed over after the lock
}

// ClientConfig configures a Client.
type ClientConfig struct {
	ID          core.Addr            // this endpoint (unique in the cluster; e.g. 1000+)
	Session     uint64               // unique per client incarnation (e.g. random)
	Authorities []core.Addr          // the authority cell's members
	Peers       map[core.Addr]string // every node's address
	OpTimeout   time.Duration        // give up on an operation after this (outcome unknown)
	// MaxInFlight bounds the operations in flight (0: the library's default, 32; at most
	// 64, the primary's deduplication window per client); more wait in order.
	MaxInFlight int
	Log         *slog.Logger
	// Node, if set, is the storage node running in this process: messages between the
	// client and it are handed over in memory, not through sockets (local.go). Its
	// address must be in Peers all the same.
	Node *Runner
}

// ErrUnknown is returned when an operation timed out: a write may or may not have taken effect.
var ErrUnknown = errors.New("outcome unknown (timed out)")

// NewClient connects a client to the cluster.
func NewClient(ctx context.Context, cc ClientConfig) (*Client, error) {
	if cc.Log == nil {
		cc.Log = slog.Default()
	}
	if len(cc.Authorities) == 0 {
		return nil, errors.New("client: no authority members")
	}
	p := core.DefaultClientParams(cc.ID, cc.Session, cc.Authorities)
	if cc.OpTimeout > 0 {
		p.OpTimeout = int64(cc.OpTimeout)
	}
	if cc.MaxInFlight > 0 {
		p.MaxInFlight = cc.MaxInFlight // the library caps it at its deduplication window
	}
	cl := &Client{id: cc.ID, node: cc.Node, opTimeout: time.Duration(p.OpTimeout), log: cc.Log, start: time.Now(), base: time.Now().UnixNano(), stop: make(chan struct{}),
		c: core.NewClient(p), waiting: map[uint64]chan core.Completion{}, admin: map[uint64]chan *core.AuthReply{},
		nextID: uint64(time.Now().UnixNano()), guess: core.NewLeaderGuess(cc.Authorities)}
	tr, err := NewTransport(TransportConfig{Self: cc.ID, Peers: cc.Peers, Log: cc.Log}, cl.deliver)
	if err != nil {
		return nil, err
	}
	cl.tr = tr // before Start: deliver and flush use it
	if err := tr.Start(ctx); err != nil {
		return nil, err
	}
	if cl.node != nil {
		cl.pipe = newPipe(cl.node, cl.id)
		cl.wg.Go(func() { cl.pipe.run(cl.stop) })
		cl.node.attach(cl)
	}
	cl.wg.Add(1)
	go cl.tick()
	return cl, nil
}

func (cl *Client) now() int64 { return cl.base + int64(time.Since(cl.start)) }

// Close stops the client; operations in flight end with their context.
func (cl *Client) Close() error {
	cl.mu.Lock()
	if !cl.closed {
		cl.closed = true
		close(cl.stop)
	}
	cl.mu.Unlock()
	if cl.node != nil {
		cl.node.detach(cl)
	}
	cl.wg.Wait()
	return cl.tr.Close()
}

// tick ticks the library every 10 ms until Close.
func (cl *Client) tick() {
	defer cl.wg.Done()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-cl.stop:
			return
		case <-t.C:
			cl.locked(func() { cl.c.Tick(cl.now()) })
		}
	}
}

// deliver runs on transport reader goroutines: an admin answer goes to its caller, any
// other message steps the library (see Runner.deliver for more).
func (cl *Client) deliver(from core.Addr, m core.Message, more bool) {
	cl.receive(from, m, more, false)
}

// deliverLocal runs on the local node's goroutines, after its lock (local.go).
func (cl *Client) deliverLocal(from core.Addr, m core.Message) { cl.receive(from, m, false, true) }

func (cl *Client) receive(from core.Addr, m core.Message, more, fromNode bool) {
	var buf [4]Queue
	qs, forNode, _ := cl.lockedQueue(func() {
		if r, ok := m.(*core.AuthReply); ok {
			if ch := cl.admin[r.ReqID]; ch != nil {
				if r.Status == core.StatusNotLeader {
					cl.guess.Redirected(r.Leader)
					return // the admin call resends
				}
				delete(cl.admin, r.ReqID)
				cl.guess.Heard(from)
				ch <- r
				return
			}
		}
		cl.c.Step(cl.now(), from, m)
	}, buf[:0])
	for _, q := range qs {
		if more {
			cl.tr.Kick(q)
		} else {
			cl.tr.Flush(q)
		}
	}
	cl.toNode(forNode, fromNode)
}

// locked runs f under the lock, then queues what the library produced and completes
// what it finished, and after the lock writes the queued messages out; false (f not run)
// after Close.
func (cl *Client) locked(f func()) bool {
	var buf [4]Queue
	qs, forNode, ok := cl.lockedQueue(f, buf[:0])
	for _, q := range qs {
		cl.tr.Flush(q)
	}
	cl.toNode(forNode, false)
	return ok
}

// lockedQueue is locked's part under the lock: it returns the queues to flush and the
// messages for the local node.
func (cl *Client) lockedQueue(f func(), qs []Queue) ([]Queue, []core.Message, bool) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.closed {
		return qs, nil, false
	}
	f()
	qs = cl.flush(qs)
	forNode := cl.forNode
	cl.forNode = nil
	return qs, forNode, true
}

// enqueue queues m for to: for the local node (handed over after the lock) or on the
// transport (qs gains its queue). cl.mu is held.
func (cl *Client) enqueue(to core.Addr, m core.Message, qs []Queue) []Queue {
	if cl.node != nil && to == cl.node.cfg.Params.Self {
		cl.forNode = append(cl.forNode, m)
		return qs
	}
	if q := cl.tr.Enqueue(to, m); q != nil && !slices.Contains(qs, q) {
		qs = append(qs, q)
	}
	return qs
}

// flush queues the library's messages (adding their queues to qs), hands completions to
// their callers (each channel has room for its one completion) and submits backlogged
// operations the library has room for. cl.mu is held.
func (cl *Client) flush(qs []Queue) []Queue {
	for {
		msgs, done := cl.c.Drain()
		for _, e := range msgs {
			qs = cl.enqueue(e.To, e.Msg, qs)
		}
		for _, d := range done {
			if ch := cl.waiting[d.Req]; ch != nil {
				delete(cl.waiting, d.Req)
				ch <- d
			}
		}
		if len(cl.backlog) == 0 || !cl.c.CanSubmit() {
			return qs
		}
		for len(cl.backlog) > 0 && cl.c.CanSubmit() {
			f := cl.backlog[0]
			cl.backlog = cl.backlog[1:]
			f()
		}
	}
}

// do submits an operation and waits for its completion, at most limit (if positive)
// from now: then it returns context.DeadlineExceeded, as if ctx had that deadline. The
// library's own operation timeout bounds an operation it took at once, so limit costs
// no timer then unless it is shorter.
func (cl *Client) do(ctx context.Context, limit time.Duration, submit func(now int64) uint64) (core.Completion, error) {
	ch := make(chan core.Completion, 1)
	if err := ctx.Err(); err != nil {
		return core.Completion{}, err
	}
	now := false
	queued := cl.locked(func() {
		// Submitted at once if the library has room (flush), else when an operation completes.
		now = len(cl.backlog) == 0 && cl.c.CanSubmit()
		cl.backlog = append(cl.backlog, func() { cl.waiting[submit(cl.now())] = ch })
	})
	if !queued {
		return core.Completion{}, errors.New("client closed")
	}
	var expired <-chan time.Time
	if limit > 0 && (!now || cl.opTimeout > limit) {
		t := time.NewTimer(limit)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-expired:
		return core.Completion{}, context.DeadlineExceeded
	case d := <-ch:
		switch {
		case d.Unknown:
			return d, ErrUnknown
		case d.Status != core.StatusOK:
			return d, fmt.Errorf("%v", d.Status)
		}
		return d, nil
	case <-ctx.Done():
		return core.Completion{}, ctx.Err()
	}
}

// Write writes whole blocks at block.
func (cl *Client) Write(ctx context.Context, vol core.VolumeID, block uint64, data []byte) error {
	return cl.write(ctx, 0, vol, block, data)
}

func (cl *Client) write(ctx context.Context, limit time.Duration, vol core.VolumeID, block uint64, data []byte) error {
	_, err := cl.do(ctx, limit, func(now int64) uint64 { return cl.c.Write(now, vol, block, data) })
	return err
}

// Read reads count blocks at block.
func (cl *Client) Read(ctx context.Context, vol core.VolumeID, block uint64, count uint32) ([]byte, error) {
	return cl.read(ctx, 0, vol, block, count)
}

func (cl *Client) read(ctx context.Context, limit time.Duration, vol core.VolumeID, block uint64, count uint32) ([]byte, error) {
	d, err := cl.do(ctx, limit, func(now int64) uint64 { return cl.c.Read(now, vol, block, count) })
	return d.Data, err
}

// Flush returns once every write logged before it is committed.
func (cl *Client) Flush(ctx context.Context, vol core.VolumeID) error {
	return cl.flushVol(ctx, 0, vol)
}

func (cl *Client) flushVol(ctx context.Context, limit time.Duration, vol core.VolumeID) error {
	_, err := cl.do(ctx, limit, func(now int64) uint64 { return cl.c.Flush(now, vol) })
	return err
}

// Admin sends an authority request to the cell's leader (following redirects, resending
// every 300 ms with the same id) and returns its answer.
func (cl *Client) Admin(ctx context.Context, r core.AuthRequest) (*core.AuthReply, error) {
	ch := make(chan *core.AuthReply, 1)
	if !cl.locked(func() {
		cl.nextID++
		r.ReqID = cl.nextID
		cl.admin[r.ReqID] = ch
	}) {
		return nil, errors.New("client closed")
	}
	t := time.NewTicker(300 * time.Millisecond)
	defer t.Stop()
	for {
		// To moves on to the next member after three sends without any answer (a NotLeader
		// answer names the leader, or moves on at once when it knows none).
		var qs []Queue
		cl.locked(func() { qs = cl.enqueue(cl.guess.To(), &r, nil) })
		for _, q := range qs {
			cl.tr.Flush(q)
		}
		select {
		case rep := <-ch:
			return rep, nil
		case <-ctx.Done():
			cl.locked(func() { delete(cl.admin, r.ReqID) })
			return nil, ctx.Err()
		case <-cl.stop:
			return nil, errors.New("client closed")
		case <-t.C:
		}
	}
}
