package storage

import (
	"errors"
	"fmt"
	"sync"
)

// Errors from GroupCommit.
var (
	// ErrCommitClosed is returned by Append after Close.
	ErrCommitClosed = errors.New("storage: group commit closed")
	// ErrJournalBroken is wrapped by every Append error after a write or sync of the
	// journal failed: what reached the disk is then unknown, so the journal takes no more
	// records until it is reopened (and recovered).
	ErrJournalBroken = errors.New("storage: journal broken by an earlier write or sync failure")
)

// GroupCommit lets many goroutines append durable records to one Journal, sharing fsyncs.
//
// Writers queue their records. One of them becomes the leader: it takes up to maxBatch
// queued records, appends them to the journal, makes them durable with one Sync, and wakes
// their writers. Records that arrive during that fsync queue up and form the next batch,
// so under load each fsync covers many records. The leader leads until its own record is
// durable, then hands leadership to the writer at the head of the queue, so no writer
// waits behind an unbounded stream of others.
//
// The queue holds at most 16*maxBatch records; further writers block until there is room,
// so memory stays bounded however many goroutines call Append.
//
// An error writing or syncing the journal fails every record of the batch (their Appends
// return that error) and is sticky: every later Append, including those already queued,
// fails at once with an error wrapping ErrJournalBroken and the original error. The journal must then be closed and reopened (recovery decides which of
// the failed batch's records survived).
//
// While a GroupCommit is in use, nothing else may use its Journal.
type GroupCommit struct {
	j        *Journal
	maxBatch int
	maxQueue int

	mu      sync.Mutex
	room    sync.Cond // signalled when the queue shrinks, on Close and on failure
	idle    sync.Cond // signalled when a leader steps down with nothing queued
	queue   []*commitReq
	leading bool  // some writer is the leader
	closed  bool  // Close was called
	err     error // sticky: wraps ErrJournalBroken
	stats   GroupCommitStats
}

// GroupCommitStats counts what a GroupCommit did.
type GroupCommitStats struct {
	Records  uint64 // records made durable
	Syncs    uint64 // journal syncs (one per batch, failed ones included)
	Failed   uint64 // Appends that failed because the journal broke (in or after the failed batch)
	MaxBatch int    // largest batch synced at once
}

// commitReq is one queued record. The leader fills err and done under the mutex, then
// signals wake; a waiter woken with lead set (and done not) becomes the next leader.
type commitReq struct {
	rec  []byte
	err  error
	done bool
	lead bool
	wake chan struct{} // capacity 1
}

// NewGroupCommit returns a GroupCommit over j that syncs at most maxBatch records at once
// (maxBatch < 1 means 1). j must not be used by anything else while it is in use.
func NewGroupCommit(j *Journal, maxBatch int) *GroupCommit {
	if maxBatch < 1 {
		maxBatch = 1
	}
	g := &GroupCommit{j: j, maxBatch: maxBatch, maxQueue: 16 * maxBatch}
	g.room.L = &g.mu
	g.idle.L = &g.mu
	return g
}

// Append adds rec to the journal and returns once it is durable (nil), or once it is known
// to have failed. rec must not be modified until Append returns. Records of concurrent
// Appends are journaled in queue order; records of one goroutine keep its order.
//
// It fails with ErrCommitClosed after Close, with the journal's error if the write or
// sync of its own batch failed, and with an error wrapping ErrJournalBroken (and that
// error) after an earlier batch failed. A record larger than MaxRecord is refused
// without harming the journal.
func (g *GroupCommit) Append(rec []byte) error {
	if len(rec) > MaxRecord {
		return fmt.Errorf("storage: record of %d bytes exceeds %d", len(rec), MaxRecord)
	}
	g.mu.Lock()
	for len(g.queue) >= g.maxQueue && g.err == nil && !g.closed {
		g.room.Wait()
	}
	if err := g.refuse(); err != nil {
		g.mu.Unlock()
		return err
	}
	r := &commitReq{rec: rec, wake: make(chan struct{}, 1)}
	g.queue = append(g.queue, r)
	if g.leading {
		g.mu.Unlock()
		<-r.wake
		g.mu.Lock()
		if r.done {
			g.mu.Unlock()
			return r.err
		}
		// Handed leadership (r.lead): g.leading is still set on our behalf.
	}
	g.leading = true
	g.lead(r)
	err := r.err
	g.mu.Unlock()
	return err
}

// refuse returns the error a new Append gets, if any. g.mu is held.
func (g *GroupCommit) refuse() error {
	if g.err != nil {
		g.stats.Failed++
		return g.err
	}
	if g.closed {
		return ErrCommitClosed
	}
	return nil
}

// lead commits batches from the head of the queue until me is done, then hands
// leadership to the next queued writer or steps down. g.mu is held on entry and exit.
func (g *GroupCommit) lead(me *commitReq) {
	for !me.done {
		n := min(len(g.queue), g.maxBatch)
		batch := make([]*commitReq, n)
		copy(batch, g.queue)
		g.queue = g.queue[:copy(g.queue, g.queue[n:])]
		clear(g.queue[len(g.queue) : len(g.queue)+n]) // drop references for the GC
		g.room.Broadcast()

		var err error // what this batch's writers get
		if g.err != nil {
			err = g.err
		} else {
			g.mu.Unlock()
			err = g.commit(batch)
			g.mu.Lock()
			g.stats.Syncs++
			if err != nil {
				g.err = fmt.Errorf("%w: %w", ErrJournalBroken, err)
				g.room.Broadcast() // blocked writers fail fast now
			}
		}
		if err != nil {
			g.stats.Failed += uint64(n)
		} else {
			g.stats.Records += uint64(n)
			g.stats.MaxBatch = max(g.stats.MaxBatch, n)
		}
		for _, r := range batch {
			r.err, r.done = err, true
			if r != me {
				r.wake <- struct{}{}
			}
		}
	}
	if len(g.queue) > 0 {
		next := g.queue[0]
		next.lead = true
		next.wake <- struct{}{}
		return
	}
	g.leading = false
	g.idle.Broadcast()
}

// commit appends a batch and syncs it. Only the leader calls it, without g.mu.
func (g *GroupCommit) commit(batch []*commitReq) error {
	for _, r := range batch {
		if err := g.j.Append(r.rec); err != nil {
			return err
		}
	}
	return g.j.Sync()
}

// Close makes later Appends fail with ErrCommitClosed, waits until every record already
// queued has been committed (or failed), and returns the sticky journal error, if any.
// It does not close the Journal. Close may be called more than once.
func (g *GroupCommit) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	g.room.Broadcast()
	for g.leading || len(g.queue) > 0 {
		g.idle.Wait()
	}
	return g.err
}

// Stats returns counts of what g has done so far.
func (g *GroupCommit) Stats() GroupCommitStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stats
}
