package netio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/storage"
)

// RunnerConfig configures one storage node process.
type RunnerConfig struct {
	Params    core.Params
	DataDir   string        // the node's directory (created if missing)
	Tick      time.Duration // how often the core is ticked (default 5 ms)
	Transport TransportConfig
	Log       *slog.Logger
}

// Runner drives one core.Node with the real clock, disk and network, the way the
// simulator drives it with virtual ones: one goroutine (Run) owns the node and is the only
// one that calls it; a storage worker carries out the journal appends and checkpoints the
// node asks for, in order, and reports each completion back to the loop; the transport's
// reader goroutines hand messages to the loop through a bounded inbox.
type Runner struct {
	cfg   RunnerConfig
	log   *slog.Logger
	n     *core.Node
	st    *storage.Shared
	tr    *Transport
	inbox chan inMsg
	ops   chan core.StorageOp
	done  chan opDone
	calls chan func(*core.Node)
	base  int64
	start time.Time

	dropped atomic.Uint64 // messages refused because the inbox was full (the protocol retransmits)
}

type inMsg struct {
	from core.Addr
	m    core.Message
}

type opDone struct {
	seq uint64
	err error
}

// Bounds of the runner's queues.
const (
	inboxLimit = 1 << 14
	opsLimit   = 1 << 12
	doneLimit  = 1 << 14
	batchLimit = 256 // appends made durable by one fsync
)

// identityFile marks a data directory as one node's.
const identityFile = "cairn-node.json"

type identity struct {
	Node uint32 `json:"node"`
	Zone uint32 `json:"zone"`
}

// claimDataDir refuses a data directory that belongs to another node, and marks a new one.
func claimDataDir(dir string, self core.Addr, zone uint32) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("data directory %s: %w", dir, err)
	}
	p := filepath.Join(dir, identityFile)
	b, err := os.ReadFile(p)
	switch {
	case err == nil:
		var id identity
		if err := json.Unmarshal(b, &id); err != nil {
			return fmt.Errorf("data directory %s: unreadable %s: %w", dir, identityFile, err)
		}
		if id.Node != uint32(self) {
			return fmt.Errorf("data directory %s belongs to node %d, not node %d: give each node its own --data-dir", dir, id.Node, self)
		}
		return nil
	case errors.Is(err, os.ErrNotExist):
		b, _ := json.Marshal(identity{Node: uint32(self), Zone: zone})
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return fmt.Errorf("data directory %s: %w", dir, err)
		}
		return os.Rename(tmp, p)
	default:
		return fmt.Errorf("data directory %s: %w", dir, err)
	}
}

// NewRunner opens the node's storage (recovering it) and builds its core and transport.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	if cfg.Tick <= 0 {
		cfg.Tick = 5 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if err := claimDataDir(cfg.DataDir, cfg.Params.Self, cfg.Params.Zone); err != nil {
		return nil, err
	}
	e, err := storage.Open(storage.NewOSFS(cfg.DataDir), "node")
	if err != nil {
		return nil, fmt.Errorf("open storage in %s: %w", cfg.DataDir, err)
	}
	r := &Runner{cfg: cfg, log: cfg.Log, st: storage.NewShared(e),
		inbox: make(chan inMsg, inboxLimit), ops: make(chan core.StorageOp, opsLimit),
		done: make(chan opDone, doneLimit), calls: make(chan func(*core.Node), 64),
		base: time.Now().UnixNano(), start: time.Now()}
	seed := uint64(time.Now().UnixNano()) ^ uint64(cfg.Params.Self)<<40
	n, err := core.NewNode(cfg.Params, r.st, core.NewRand(seed))
	if err != nil {
		r.st.Close()
		return nil, err
	}
	r.n = n
	tc := cfg.Transport
	tc.Self = cfg.Params.Self
	if tc.Log == nil {
		tc.Log = cfg.Log
	}
	r.tr, err = NewTransport(tc, r.deliver)
	if err != nil {
		r.st.Close()
		return nil, err
	}
	return r, nil
}

// now is the node's clock: wall time at start plus monotonic time since, so it never
// goes backwards while the process runs and moves forward across restarts.
func (r *Runner) now() int64 { return r.base + int64(time.Since(r.start)) }

// deliver runs on transport reader goroutines: it only hands the message to the loop.
func (r *Runner) deliver(from core.Addr, m core.Message) {
	select {
	case r.inbox <- inMsg{from, m}:
	default:
		r.dropped.Add(1)
	}
}

// loopback delivers a message the node sent to itself (an authority member asking the
// cell's leader, when it is the leader) through the codec, like any other message.
func (r *Runner) loopback(m core.Message) {
	c, err := core.Decode(core.Encode(nil, m))
	if err != nil {
		r.log.Error("a message to self does not decode", "err", err)
		return
	}
	r.deliver(r.cfg.Params.Self, c)
}

// Transport returns the runner's transport (its listen address, for tests and logs).
func (r *Runner) Transport() *Transport { return r.tr }

// Do runs f on the event loop (the only goroutine that may touch the node) and waits.
func (r *Runner) Do(ctx context.Context, f func(*core.Node)) error {
	ch := make(chan struct{})
	select {
	case r.calls <- func(n *core.Node) { f(n); close(ch) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run recovers the node and serves until ctx is done (a graceful stop: storage work in
// flight completes, then everything closes) or the node cannot go on.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.n.Start(r.now()); err != nil {
		r.st.Close()
		return fmt.Errorf("recover node %d: %w", r.cfg.Params.Self, err)
	}
	if err := r.tr.Start(ctx); err != nil {
		r.st.Close()
		return err
	}
	workerDone := make(chan struct{})
	go r.storageWorker(workerDone)
	r.log.Info("node started", "node", r.cfg.Params.Self, "zone", r.cfg.Params.Zone, "dir", r.cfg.DataDir)
	err := r.loop(ctx)
	close(r.ops)
	<-workerDone // every append the node issued is durable (or failed) before we close
	r.tr.Close()
	if cerr := r.st.Close(); err == nil && cerr != nil {
		err = cerr
	}
	r.log.Info("node stopped", "node", r.cfg.Params.Self, "err", err)
	return err
}

func (r *Runner) loop(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Tick)
	defer t.Stop()
	if err := r.flush(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-r.inbox:
			r.n.Step(r.now(), m.from, m.m)
		case d := <-r.done:
			r.n.StorageDone(r.now(), d.seq, d.err)
		case <-t.C:
			r.n.Tick(r.now())
		case f := <-r.calls:
			f(r.n)
		}
		if err := r.flush(); err != nil {
			return err
		}
	}
}

// flush carries out the node's output: messages to the transport, storage ops to the worker.
func (r *Runner) flush() error {
	out := r.n.Drain()
	for _, e := range out.Msgs {
		if e.To == r.cfg.Params.Self {
			r.loopback(e.Msg)
			continue
		}
		r.tr.Send(e.To, e.Msg)
	}
	for _, op := range out.Ops {
		r.ops <- op // bounded: a slow disk slows the loop (backpressure)
	}
	if out.Fatal != nil {
		return fmt.Errorf("node %d stopped: %w", r.cfg.Params.Self, out.Fatal)
	}
	return nil
}

// storageWorker carries out storage ops in order: consecutive appends become durable
// together (one write, one fsync); a checkpoint waits for the appends before it.
func (r *Runner) storageWorker(finished chan<- struct{}) {
	defer close(finished)
	var batch []core.StorageOp
	for op := range r.ops {
		batch = append(batch[:0], op)
	collect:
		for len(batch) < batchLimit && batch[len(batch)-1].Kind == core.OpAppend {
			select {
			case next, ok := <-r.ops:
				if !ok {
					break collect
				}
				batch = append(batch, next)
			default:
				break collect
			}
		}
		r.execute(batch)
	}
}

func (r *Runner) execute(batch []core.StorageOp) {
	i := 0
	for i < len(batch) {
		if batch[i].Kind == core.OpCheckpoint {
			r.done <- opDone{batch[i].Seq, r.st.Checkpoint(batch[i].Data)}
			i++
			continue
		}
		j := i
		var recs [][]byte
		for j < len(batch) && batch[j].Kind == core.OpAppend {
			recs = append(recs, batch[j].Data)
			j++
		}
		err := r.st.AppendSync(recs)
		for k := i; k < j; k++ {
			r.done <- opDone{batch[k].Seq, err}
		}
		i = j
	}
}
