package netio

import (
	"bytes"
	"sync"
	"sync/atomic"

	"github.com/cairnstore/cairn/core"
)

// The local route joins a Client to the Runner of the same process (ClientConfig.Node):
// messages between them are handed over in memory instead of through two sockets.
//
// Neither side calls the other while it holds its own lock: each collects what it has
// for the other under its lock and hands it over after. A message is copied on the way
// (encoded and decoded, like a message the node sends itself), so neither side keeps a
// reference into the other's buffers.
//
// Who carries a message:
//   - client to node: the goroutine that stepped the client (the caller of Read or
//     Write, the client's ticker or a transport reader) steps the node itself, waiting
//     for storage room like a transport reader would. A read is then answered on the
//     caller's own goroutine, with no wake-up at all.
//   - node to client: the goroutine that stepped the node steps the client, which never
//     waits.
//   - client to node, in answer to the node: what the client sends while the node is
//     stepping it (an operation that was waiting for room in the library, a resend) goes
//     through the pipe's goroutine, because the node's goroutine may be its storage
//     worker, which must never wait for storage room.

// localMsg is a message from the node to a client in this process.
type localMsg struct {
	cl *Client
	m  core.Message
}

// copyMsg returns a copy of m that shares no memory with it; ok false if it does not
// survive the codec (a bug, logged by the caller). The client's requests and the node's
// replies are copied field by field (TestCopyMsg keeps that in step with the codec),
// everything else through the codec. A ClientReply's Data is moved, not copied: the node
// allocates it for that reply alone (core.ClientReply).
func copyMsg(m core.Message) (core.Message, bool) {
	switch m := m.(type) {
	case *core.ClientRead:
		c := *m
		return &c, true
	case *core.ClientFlush:
		c := *m
		return &c, true
	case *core.ClientWrite:
		c := *m
		c.Data = bytes.Clone(m.Data)
		return &c, true
	case *core.ClientReply:
		c := *m
		c.Config = m.Config.Clone()
		return &c, true
	}
	c, err := core.Decode(core.Encode(nil, m))
	return c, err == nil
}

// pipeLimit bounds the messages waiting in a pipe; more are dropped (and counted), like
// a full send queue's: the protocol resends.
const pipeLimit = 1 << 12

// pipe carries a client's messages to the node from a goroutine of its own.
type pipe struct {
	r       *Runner
	from    core.Addr
	mu      sync.Mutex
	items   []core.Message
	wake    chan struct{} // holds a token when items may be waiting
	dropped atomic.Uint64 // messages refused at pipeLimit
	carried atomic.Uint64 // messages delivered
}

func newPipe(r *Runner, from core.Addr) *pipe {
	return &pipe{r: r, from: from, wake: make(chan struct{}, 1)}
}

// push queues copies of msgs for the pipe's goroutine.
func (p *pipe) push(msgs []core.Message) {
	p.mu.Lock()
	for _, m := range msgs {
		if len(p.items) >= pipeLimit {
			p.dropped.Add(1)
			continue
		}
		p.items = append(p.items, m)
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run delivers what is pushed until stop closes.
func (p *pipe) run(stop <-chan struct{}) {
	var batch []core.Message
	for {
		select {
		case <-stop:
			return
		case <-p.wake:
		}
		p.mu.Lock()
		batch = append(batch[:0], p.items...)
		clear(p.items)
		p.items = p.items[:0]
		p.mu.Unlock()
		for i, m := range batch {
			p.r.deliver(p.from, m, i < len(batch)-1)
		}
		p.carried.Add(uint64(len(batch)))
		clear(batch)
	}
}

// attach makes the runner hand messages for cl's address to cl.
func (r *Runner) attach(cl *Client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.locals == nil {
		r.locals = map[core.Addr]*Client{}
	}
	r.locals[cl.id] = cl
	for _, e := range r.learned {
		if err := cl.tr.AddPeer(e.Node, e.Address); err != nil {
			r.log.Warn("cannot add a joined node to a local client's address book", "peer", e.Node, "err", err)
		}
	}
}

// detach undoes attach.
func (r *Runner) detach(cl *Client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.locals, cl.id)
}

// handOver delivers, after the runner's lock, what the node sent to clients in this
// process.
func (r *Runner) handOver(msgs []localMsg) {
	for _, lm := range msgs {
		c, ok := copyMsg(lm.m)
		if !ok {
			r.log.Error("a message to a local client does not decode", "to", lm.cl.id)
			continue
		}
		lm.cl.deliverLocal(r.cfg.Params.Self, c)
	}
}

// toNode delivers, after the client's lock, what the client sent its node: on the
// calling goroutine, or through the pipe when the node is stepping the client (viaPipe).
func (cl *Client) toNode(msgs []core.Message, viaPipe bool) {
	if len(msgs) == 0 {
		return
	}
	copies := make([]core.Message, 0, len(msgs))
	for _, m := range msgs {
		c, ok := copyMsg(m)
		if !ok {
			cl.log.Error("a message to the local node does not decode")
			continue
		}
		copies = append(copies, c)
	}
	if viaPipe {
		cl.pipe.push(copies)
		return
	}
	for i, m := range copies {
		cl.node.deliver(cl.id, m, i < len(copies)-1)
	}
}
