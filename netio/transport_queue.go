package netio

import (
	"sync"
)

// sendQueue is a bounded FIFO of whole frames for one connection at a time, with one
// consumer (the connection's writer goroutine, pump). It is bounded by count and by
// bytes; the consumer takes everything at once, so at most about twice the bounds are in
// memory (one batch being written, one filling).
//
// A sender that finds the queue empty and nobody writing writes its frame to the
// connection itself, without blocking (see tryWrite): on an idle connection a message
// then leaves without waking the writer goroutine, which is most of a round trip's cost
// on a busy machine. Whatever the socket does not take at once (its buffer is full: the
// remote is slow or stopped) is left as the partial frame, which the writer sends first,
// under its write timeout. Frames therefore leave in push order, and only one goroutine
// writes to the connection at a time (writing).
type sendQueue struct {
	maxItems int
	maxBytes int64
	ready    chan struct{} // holds a token when items may be waiting

	mu      sync.Mutex
	items   [][]byte
	bytes   int64
	closed  bool
	out     *conn  // the connection the writer serves now; nil between connections
	writing bool   // a sender or the writer is writing to out
	partial []byte // the tail of a frame a sender began on out: the writer sends it first
}

func newSendQueue(maxItems int, maxBytes int64) *sendQueue {
	return &sendQueue{maxItems: maxItems, maxBytes: maxBytes, ready: make(chan struct{}, 1)}
}

// push sends the frame f directly when the connection is idle, or queues it. It reports
// false if the queue is full or closed. sent reports whether f was written whole (f may
// then be reused); a frame the socket took only part of is the writer's to finish.
func (q *sendQueue) push(f []byte) (ok, sent bool) {
	q.mu.Lock()
	if q.closed || len(q.items) >= q.maxItems || q.bytes+int64(len(f)) > q.maxBytes {
		q.mu.Unlock()
		return false, false
	}
	if c := q.out; c != nil && !q.writing && len(q.items) == 0 && q.partial == nil {
		q.writing = true
		q.mu.Unlock()
		n, err := c.tryWrite(f)
		if err != nil {
			c.fail(err) // the writer notices, and the message is lost like any unflushed one
		}
		q.mu.Lock()
		q.writing = false
		if n < len(f) && err == nil && q.out == c {
			q.partial = f[n:]
		}
		wake := len(q.items) > 0 || q.partial != nil
		q.mu.Unlock()
		if wake {
			q.signal()
		}
		return true, n == len(f)
	}
	q.items = append(q.items, f)
	q.bytes += int64(len(f))
	writing := q.writing
	q.mu.Unlock()
	if !writing { // a writing sender wakes the writer when it is done
		q.signal()
	}
	return true, false
}

// signal wakes the consumer (idempotent).
func (q *sendQueue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// attach makes c the connection senders may write to directly; detach ends that. A
// partial frame belongs to the connection it was begun on, so both drop it.
func (q *sendQueue) attach(c *conn) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.out, q.partial = c, nil
}

func (q *sendQueue) detach() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.out, q.partial = nil, nil
}

// claim makes the caller (the writer) the one writing: it returns the partial frame to
// send first and every queued frame, spare (emptied) becoming the new backing store so a
// writer alternating two slices does not allocate. ok is false while a sender writes
// (it signals when done). Every successful claim must be followed by release.
func (q *sendQueue) claim(spare [][]byte) (partial []byte, items [][]byte, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.writing {
		return nil, spare[:0], false
	}
	q.writing = true
	partial, q.partial = q.partial, nil
	items = q.items
	q.items = spare[:0]
	q.bytes = 0
	return partial, items, true
}

// release ends the writer's claim, waking it again if frames arrived meanwhile.
func (q *sendQueue) release() {
	q.mu.Lock()
	q.writing = false
	more := len(q.items) > 0
	q.mu.Unlock()
	if more {
		q.signal()
	}
}

// len returns the number of queued items.
func (q *sendQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// isClosed reports whether close was called.
func (q *sendQueue) isClosed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// close refuses further pushes and returns what was still queued.
func (q *sendQueue) close() [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	out := q.items
	q.items, q.bytes, q.partial = nil, 0, nil
	return out
}

// Encoding buffers are recycled once written; large ones are left to the GC.
const pooledBufMax = 64 << 10

var bufPool sync.Pool // of *[]byte

func getBuf() []byte {
	if p, ok := bufPool.Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return make([]byte, 0, 512)
}

func putBufs(bufs [][]byte) {
	for _, b := range bufs {
		if b != nil && cap(b) <= pooledBufMax {
			bufPool.Put(&b)
		}
	}
}
