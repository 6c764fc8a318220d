package netio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cairnstore/cairn/core"
)

// Client runs the deterministic client library (core.Client) over a Transport with the
// real clock: one goroutine owns the library; Read, Write, Flush and Admin block until
// their operation completes or ctx ends. Safe for concurrent use.
type Client struct {
	tr    *Transport
	log   *slog.Logger
	start time.Time
	base  int64

	reqs  chan func()
	inbox chan inMsg
	stop  chan struct{}
	wg    sync.WaitGroup

	// owned by the loop goroutine
	c       *core.Client
	waiting map[uint64]chan core.Completion
	admin   map[uint64]chan *core.AuthReply
	nextID  uint64
	guess   core.LeaderGuess // where admin requests go
	backlog []func()         // operations waiting for the library's in-flight bound (FIFO, bounded by callers)
}

// ClientConfig configures a Client.
type ClientConfig struct {
	ID          core.Addr            // this endpoint (unique in the cluster; e.g. 1000+)
	Session     uint64               // unique per client incarnation (e.g. random)
	Authorities []core.Addr          // the authority cell's members
	Peers       map[core.Addr]string // every node's address
	OpTimeout   time.Duration        // give up on an operation after this (outcome unknown)
	Log         *slog.Logger
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
	cl := &Client{log: cc.Log, start: time.Now(), base: time.Now().UnixNano(),
		reqs: make(chan func(), 256), inbox: make(chan inMsg, inboxLimit), stop: make(chan struct{}),
		c: core.NewClient(p), waiting: map[uint64]chan core.Completion{}, admin: map[uint64]chan *core.AuthReply{},
		nextID: uint64(time.Now().UnixNano()), guess: core.NewLeaderGuess(cc.Authorities)}
	tr, err := NewTransport(TransportConfig{Self: cc.ID, Peers: cc.Peers, Log: cc.Log}, func(from core.Addr, m core.Message) {
		select {
		case cl.inbox <- inMsg{from, m}:
		default:
		}
	})
	if err != nil {
		return nil, err
	}
	if err := tr.Start(ctx); err != nil {
		return nil, err
	}
	cl.tr = tr
	cl.wg.Add(1)
	go cl.loop()
	return cl, nil
}

func (cl *Client) now() int64 { return cl.base + int64(time.Since(cl.start)) }

// Close stops the client.
func (cl *Client) Close() error {
	select {
	case <-cl.stop:
	default:
		close(cl.stop)
	}
	cl.wg.Wait()
	return cl.tr.Close()
}

func (cl *Client) loop() {
	defer cl.wg.Done()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-cl.stop:
			return
		case f := <-cl.reqs:
			f()
		case m := <-cl.inbox:
			if r, ok := m.m.(*core.AuthReply); ok {
				if ch := cl.admin[r.ReqID]; ch != nil {
					if r.Status == core.StatusNotLeader {
						cl.guess.Redirected(r.Leader)
						continue // the admin call resends
					}
					delete(cl.admin, r.ReqID)
					cl.guess.Heard(m.from)
					ch <- r
					continue
				}
			}
			cl.c.Step(cl.now(), m.from, m.m)
		case <-t.C:
			cl.c.Tick(cl.now())
		}
		cl.flush()
	}
}

func (cl *Client) flush() {
	msgs, done := cl.c.Drain()
	for _, e := range msgs {
		cl.tr.Send(e.To, e.Msg)
	}
	for _, d := range done {
		if ch := cl.waiting[d.Req]; ch != nil {
			delete(cl.waiting, d.Req)
			ch <- d
		}
	}
	// Operations beyond the library's in-flight bound wait here, in order.
	for len(cl.backlog) > 0 && cl.c.CanSubmit() {
		f := cl.backlog[0]
		cl.backlog = cl.backlog[1:]
		f()
	}
}

// do submits an operation on the loop and waits for its completion.
func (cl *Client) do(ctx context.Context, submit func(now int64) uint64) (core.Completion, error) {
	ch := make(chan core.Completion, 1)
	var req uint64
	f := func() {
		cl.backlog = append(cl.backlog, func() { req = submit(cl.now()); cl.waiting[req] = ch })
		cl.flush() // submits it now if the library has room, else when an operation completes
	}
	select {
	case cl.reqs <- f:
	case <-ctx.Done():
		return core.Completion{}, ctx.Err()
	case <-cl.stop:
		return core.Completion{}, errors.New("client closed")
	}
	select {
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
	_, err := cl.do(ctx, func(now int64) uint64 { return cl.c.Write(now, vol, block, data) })
	return err
}

// Read reads count blocks at block.
func (cl *Client) Read(ctx context.Context, vol core.VolumeID, block uint64, count uint32) ([]byte, error) {
	d, err := cl.do(ctx, func(now int64) uint64 { return cl.c.Read(now, vol, block, count) })
	return d.Data, err
}

// Flush returns once every write logged before it is committed.
func (cl *Client) Flush(ctx context.Context, vol core.VolumeID) error {
	_, err := cl.do(ctx, func(now int64) uint64 { return cl.c.Flush(now, vol) })
	return err
}

// Admin sends an authority request to the cell's leader (following redirects, resending
// every 300 ms with the same id) and returns its answer.
func (cl *Client) Admin(ctx context.Context, r core.AuthRequest) (*core.AuthReply, error) {
	ch := make(chan *core.AuthReply, 1)
	registered := make(chan struct{})
	cl.reqs <- func() {
		cl.nextID++
		r.ReqID = cl.nextID
		cl.admin[r.ReqID] = ch
		close(registered)
	}
	<-registered
	t := time.NewTicker(300 * time.Millisecond)
	defer t.Stop()
	for {
		send := make(chan struct{})
		// To moves on to the next member after three sends without any answer (a NotLeader
		// answer names the leader, or moves on at once when it knows none).
		cl.reqs <- func() { cl.tr.Send(cl.guess.To(), &r); close(send) }
		<-send
		select {
		case rep := <-ch:
			return rep, nil
		case <-ctx.Done():
			cl.reqs <- func() { delete(cl.admin, r.ReqID) }
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}
