package netio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
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
// simulator drives it with virtual ones. The node is single-threaded: every call into it
// holds the runner's lock (step), and the goroutine that made the call carries out what
// the node produced: messages are queued for the transport under the lock and written
// after it by the same goroutine, storage ops go to the worker's queue. So a message is
// handled on the transport reader goroutine that received it, and an append's
// completion on the storage worker that made it durable, with no hand-off to a loop in
// between (each hand-off is a wake-up, which costs up to 50 µs on an idle VM CPU). A
// ticker goroutine ticks the node; the storage worker carries out the journal appends
// and checkpoints in order, one fsync for appends in a row (DESIGN 2.11).
type Runner struct {
	cfg   RunnerConfig
	log   *slog.Logger
	n     *core.Node
	st    *storage.Shared
	tr    *Transport
	ops   *opQueue
	base  int64
	start time.Time

	completing atomic.Int64  // batches handed to the completer and not yet reported
	failed     chan struct{} // closed when fatal is set

	mu      sync.Mutex            // held for every call into n, and for the fields below
	self    []core.Message        // messages the node sent itself, handled before the lock is let go
	touched []Queue               // send queues written to under the lock, flushed after it
	locals  map[core.Addr]*Client // clients in this process (the local route, local.go)
	toLocal []localMsg            // messages for them, handed over after the lock
	started bool                  // the node has recovered: it may be stepped
	stopped bool                  // Run is stopping: the node takes no more input
	fatal   error                 // why the node cannot go on (it stops the runner)
	learned []core.NodeEntry      // nodes that joined the running cluster (their addresses)
}

// Bounds of the runner's queues.
const (
	opsLimit   = 1 << 12 // storage ops waiting for the worker before readers wait
	batchLimit = 256     // appends made durable by one fsync
	selfLimit  = 1 << 10 // messages to self handled in one step
)

// NewRunner opens the node's storage (recovering it) and builds its core and transport.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	if cfg.Tick <= 0 {
		cfg.Tick = 5 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	disk, err := claimDataDir(cfg.DataDir, cfg.Params.Self, cfg.Params.Zone)
	if err != nil {
		return nil, err
	}
	if cfg.Params.Disk == 0 {
		cfg.Params.Disk = disk
	}
	e, err := storage.Open(storage.NewOSFS(cfg.DataDir), "node")
	if err != nil {
		return nil, fmt.Errorf("open storage in %s: %w", cfg.DataDir, err)
	}
	r := &Runner{cfg: cfg, log: cfg.Log, st: storage.NewShared(e), ops: newOpQueue(),
		base: time.Now().UnixNano(), start: time.Now(), failed: make(chan struct{})}
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

// deliver runs on transport reader goroutines: it steps the node with the message, once
// the storage queue has room (a slow disk slows down the reading of the network). When
// the connection's next message has already arrived (more), the replies are left to the
// connections' writers, which batch them, and the reader goes on to the next message.
func (r *Runner) deliver(from core.Addr, m core.Message, more bool) {
	if !r.ops.waitRoom() {
		return
	}
	var buf [8]Queue
	qs, local := r.stepLocked(func(now int64) { r.n.Step(now, from, m) }, buf[:0])
	for _, q := range qs {
		if more {
			r.tr.Kick(q)
		} else {
			r.tr.Flush(q)
		}
	}
	r.handOver(local)
	r.applyBlocks()
}

// step calls f on the node under the lock and carries out the node's output, handling
// any messages the node sent itself (an authority member asking the cell's leader, when
// it is the leader) through the codec, like any other message. The messages are queued
// under the lock and written out after it (so no socket write holds the node).
func (r *Runner) step(f func(now int64)) {
	var buf [8]Queue
	qs, local := r.stepLocked(f, buf[:0])
	for _, q := range qs {
		r.tr.Flush(q)
	}
	r.handOver(local)
	r.applyBlocks()
}

// applyBlocks writes the blocks the last step wrote (write-behind: storage.Shared), after
// its messages left: a block write that fails stops the node, as it would have in the step.
func (r *Runner) applyBlocks() {
	if err := r.st.ApplyPending(); err != nil {
		r.mu.Lock()
		r.halt(fmt.Errorf("node %d: block write: %w", r.cfg.Params.Self, err))
		r.mu.Unlock()
	}
}

// stepLocked is step's part under the lock; it returns the queues to flush and the
// messages for local clients.
func (r *Runner) stepLocked(f func(now int64), qs []Queue) ([]Queue, []localMsg) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped || !r.started {
		return qs, nil
	}
	f(r.now())
	r.flush()
	for i := 0; len(r.self) > 0 && !r.stopped; i++ {
		if i == selfLimit {
			r.halt(fmt.Errorf("node %d: more than %d messages to itself in one step", r.cfg.Params.Self, selfLimit))
			break
		}
		m := r.self[0]
		r.self = r.self[1:]
		c, err := core.Decode(core.Encode(nil, m))
		if err != nil {
			r.log.Error("a message to self does not decode", "err", err)
			continue
		}
		r.n.Step(r.now(), r.cfg.Params.Self, c)
		r.flush()
	}
	qs = append(qs, r.touched...)
	clear(r.touched)
	r.touched = r.touched[:0]
	local := r.toLocal
	r.toLocal = nil
	return qs, local
}

// halt stops the runner because the node cannot go on. r.mu is held.
func (r *Runner) halt(err error) {
	if r.fatal == nil {
		r.fatal = err
		close(r.failed)
	}
	r.stopped = true
}

// Transport returns the runner's transport (its listen address, for tests and logs).
func (r *Runner) Transport() *Transport { return r.tr }

// Do runs f on the node (under its lock, like every other call into it) and waits. If
// ctx ends first (the node is stuck in a long step), Do returns ctx's error and f may
// still run later: f must only write what the caller reads after a nil error.
func (r *Runner) Do(ctx context.Context, f func(*core.Node)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ran := make(chan bool, 1)
	go func() {
		ok := false
		r.step(func(int64) { f(r.n); ok = true })
		ran <- ok
	}()
	select {
	case ok := <-ran:
		if !ok {
			return errors.New("netio: node stopped")
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run recovers the node and serves until ctx is done (a graceful stop: storage work in
// flight completes, then everything closes) or the node cannot go on.
func (r *Runner) Run(ctx context.Context) error {
	r.mu.Lock()
	err := r.n.Start(r.now())
	r.started = err == nil
	r.mu.Unlock()
	if err != nil {
		r.st.Close()
		return fmt.Errorf("recover node %d: %w", r.cfg.Params.Self, err)
	}
	if err := r.tr.Start(ctx); err != nil {
		r.st.Close()
		return err
	}
	// Recovery wrote its blocks directly; from here on block writes wait until the step's
	// messages have left (see storage.Shared).
	if err := r.st.SetWriteBehind(true); err != nil {
		r.tr.Close()
		r.st.Close()
		return fmt.Errorf("recover node %d: %w", r.cfg.Params.Self, err)
	}
	workerDone := make(chan struct{})
	go r.storageWorker(workerDone)
	// Block writes reach the device a little at a time, in the background, instead of all
	// at once in a checkpoint's sync, which the journal's appends wait behind (a checkpoint
	// syncs the blocks of thousands of writes).
	wb := time.NewTicker(writebackEvery)
	defer wb.Stop()
	wbDone := r.repeat(ctx, wb.C, r.st.StartWriteback)
	r.log.Info("node started", "node", r.cfg.Params.Self, "zone", r.cfg.Params.Zone, "dir", r.cfg.DataDir)
	r.step(func(int64) {}) // carry out what recovery produced
	t := time.NewTicker(r.cfg.Tick)
	select {
	case <-ctx.Done():
	case <-r.failed:
	case <-r.repeat(ctx, t.C, func() { r.step(func(now int64) { r.n.Tick(now) }) }):
	}
	t.Stop()
	r.mu.Lock()
	r.stopped = true // nothing steps the node from here on
	err = r.fatal
	r.mu.Unlock()
	r.ops.close()
	<-workerDone // every append the node issued is durable (or failed) before we close
	<-wbDone
	r.tr.Close()
	if cerr := r.st.Close(); err == nil && cerr != nil {
		err = cerr
	}
	r.log.Info("node stopped", "node", r.cfg.Params.Self, "err", err)
	return err
}

// writebackEvery is how often block writes are pushed towards the device
// (storage.Shared.StartWriteback).
const writebackEvery = 10 * time.Millisecond

// repeat calls f on every tick of c, from a goroutine of its own, until ctx is done or
// the node fails; the returned channel closes then.
func (r *Runner) repeat(ctx context.Context, c <-chan time.Time, f func()) <-chan struct{} {
	out := make(chan struct{})
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case <-r.failed:
				return
			case <-c:
				f()
			}
		}
	}()
	return out
}

// flush carries out the node's output: messages to the transport's queues (r.touched
// lists them for step to flush) or, to itself, to r.self; storage ops to the worker.
// r.mu is held.
func (r *Runner) flush() {
	out := r.n.Drain()
	for _, e := range out.Msgs {
		if e.To == r.cfg.Params.Self {
			r.self = append(r.self, e.Msg)
			continue
		}
		if cl := r.locals[e.To]; cl != nil {
			r.toLocal = append(r.toLocal, localMsg{cl, e.Msg})
			continue
		}
		if q := r.tr.Enqueue(e.To, e.Msg); q != nil && !slices.Contains(r.touched, q) {
			r.touched = append(r.touched, q)
		}
	}
	r.ops.push(out.Ops)
	for _, e := range out.Peers {
		r.addPeer(e)
	}
	if out.Fatal != nil {
		r.halt(fmt.Errorf("node %d stopped: %w", r.cfg.Params.Self, out.Fatal))
	}
}

// storageWorker carries out storage ops in order: consecutive appends become durable
// together (one write, one fsync); a checkpoint waits for the appends before it. It
// reports each batch's completions to the node in one step: itself when nothing else is
// waiting (no hand-off), else through the completer goroutine, so that under load the
// next fsync starts while the node handles the last one's completions (which write the
// committed blocks and answer the clients). Completions reach the node in order.
func (r *Runner) storageWorker(finished chan<- struct{}) {
	defer close(finished)
	completions := make(chan completion, completionLimit)
	completerDone := make(chan struct{})
	go r.completer(completions, completerDone)
	defer func() { close(completions); <-completerDone }()
	var batch []core.StorageOp
	for {
		var ok bool
		batch, ok = r.ops.take(batch[:0], batchLimit)
		if !ok {
			return
		}
		c := completion{err: r.execute(batch)}
		if r.completing.Load() == 0 && r.ops.len() == 0 {
			r.complete(batch, c.err) // idle: no hand-off
			clear(batch)
			continue
		}
		c.seqs = make([]uint64, len(batch))
		for i, op := range batch {
			c.seqs[i] = op.Seq
		}
		clear(batch)
		r.completing.Add(1)
		completions <- c
	}
}

// completion is a batch of storage ops carried out, for the completer.
type completion struct {
	seqs []uint64
	err  error
}

// completionLimit bounds the batches waiting for the completer (the worker then waits).
const completionLimit = 16

func (r *Runner) completer(in <-chan completion, done chan<- struct{}) {
	defer close(done)
	for c := range in {
		r.step(func(now int64) {
			for _, seq := range c.seqs {
				r.n.StorageDone(now, seq, c.err)
			}
		})
		r.completing.Add(-1)
	}
}

// complete reports a batch's completions from the worker itself.
func (r *Runner) complete(batch []core.StorageOp, err error) {
	r.step(func(now int64) {
		for _, op := range batch {
			r.n.StorageDone(now, op.Seq, err)
		}
	})
}

// execute carries out one take's ops: a run of appends (one fsync) or a checkpoint.
func (r *Runner) execute(batch []core.StorageOp) error {
	if batch[0].Kind == core.OpCheckpoint {
		return r.st.Checkpoint(batch[0].Data)
	}
	recs := make([][]byte, len(batch))
	for i, op := range batch {
		recs[i] = op.Data
	}
	return r.st.AppendSync(recs)
}
