package netio

import (
	"sync"

	"github.com/cairnstore/cairn/core"
)

// opQueue carries the node's storage ops, in the order the node issued them, to the
// storage worker. Ops are pushed while the node's lock is held, so a push never waits;
// the bound is kept by the readers of the network instead, which wait for room before
// they step the node (waitRoom). The queue holds at most opsLimit ops plus what the
// steps already admitted produce (a handful each).
type opQueue struct {
	mu     sync.Mutex
	cond   sync.Cond // signalled when ops arrive, when room appears, and on close
	items  []core.StorageOp
	closed bool
}

func newOpQueue() *opQueue {
	q := &opQueue{}
	q.cond.L = &q.mu
	return q
}

func (q *opQueue) push(ops []core.StorageOp) {
	if len(ops) == 0 {
		return
	}
	q.mu.Lock()
	q.items = append(q.items, ops...)
	q.mu.Unlock()
	q.cond.Broadcast()
}

// waitRoom returns once the queue is below opsLimit, or closed (false).
func (q *opQueue) waitRoom() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) >= opsLimit && !q.closed {
		q.cond.Wait()
	}
	return !q.closed
}

// take waits for ops and moves up to max of them into dst: appends in a row (so one
// fsync covers them), or one other op. It returns false once the queue is closed and
// empty.
func (q *opQueue) take(dst []core.StorageOp, max int) ([]core.StorageOp, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed {
		q.cond.Wait()
	}
	if len(q.items) == 0 {
		return dst, false
	}
	n := 1
	if q.items[0].Kind == core.OpAppend {
		for n < len(q.items) && n < max && q.items[n].Kind == core.OpAppend {
			n++
		}
	}
	dst = append(dst, q.items[:n]...)
	rest := copy(q.items, q.items[n:])
	clear(q.items[rest:])
	q.items = q.items[:rest]
	q.cond.Broadcast() // room
	return dst, true
}

// len returns the number of ops waiting.
func (q *opQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// close ends the queue: take drains what is left, waitRoom returns false.
func (q *opQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}
