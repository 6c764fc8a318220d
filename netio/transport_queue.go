package netio

import (
	"sync"
)

// sendQueue is a bounded FIFO of whole frames for one connection at a time, with one
// consumer (the connection's writer goroutine, pump). It is bounded by count and by
// bytes; the consumer takes everything at once, so at most about twice the bounds are in
// memory (one batch being written, one filling).
//
// A sender may also write the queue out itself (writeOut) when nobody else is writing:
// it takes every queued frame and writes them with one non-blocking write (tryWrite). A
// message then leaves without waking the writer goroutine, which on a busy machine costs
// as much as a round trip on loopback, and frames that queued up while a lock was held
// leave together. Whatever the socket does not take at once (its buffer is full: the
// remote is slow or stopped) is left as the partial batch, which the writer sends first,
// under its write timeout. Frames therefore leave in queue order, and only one goroutine
// writes to the connection at a time (writing).
type sendQueue struct {
	maxItems int
	maxBytes int64
	ready    chan struct{} // holds a token when items may be waiting

	mu          sync.Mutex
	items       [][]byte
	bytes       int64
	closed      bool
	out         *conn  // the connection the writer serves now; nil between connections
	writing     bool   // a sender or the writer is writing to out
	partial     []byte // the tail of frames a sender began on out: the writer sends it first
	partialMsgs int    // messages that tail finishes
	scratch     []byte // a sender's write buffer, reused (only the one writing uses it)
}

// directMax bounds what a sender writes out itself; more is left to the writer.
const directMax = 256 << 10

func newSendQueue(maxItems int, maxBytes int64) *sendQueue {
	return &sendQueue{maxItems: maxItems, maxBytes: maxBytes, ready: make(chan struct{}, 1)}
}

// push queues the frame f, or reports false if the queue is full or closed. With wake,
// the writer is signalled; without, the caller must call writeOut soon.
func (q *sendQueue) push(f []byte, wake bool) bool {
	q.mu.Lock()
	if q.closed || len(q.items) >= q.maxItems || q.bytes+int64(len(f)) > q.maxBytes {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, f)
	q.bytes += int64(len(f))
	q.mu.Unlock()
	if wake {
		q.signal()
	}
	return true
}

// writeOut writes the queued frames to the connection from the calling goroutine when
// nobody else is writing, without blocking; otherwise (or for what the socket did not
// take) it wakes the writer. It returns the number of messages written whole, and
// whether the socket took only part of what it was given.
func (q *sendQueue) writeOut() (whole int, short bool) {
	q.mu.Lock()
	c := q.out
	if q.writing {
		q.mu.Unlock() // the one writing looks at the queue again when it is done
		return 0, false
	}
	if c == nil || q.partial != nil || q.bytes > directMax || len(q.items) == 0 {
		more := len(q.items) > 0 || q.partial != nil
		q.mu.Unlock()
		if more {
			q.signal()
		}
		return 0, false
	}
	q.writing = true
	items := q.items
	q.items, q.bytes = nil, 0
	buf := q.scratch[:0]
	q.mu.Unlock()

	ends := make([]int, len(items)) // where each frame ends in buf
	for i, f := range items {
		buf = append(buf, f...)
		ends[i] = len(buf)
	}
	putBufs(items)
	n, err := c.tryWrite(buf)
	if err != nil {
		c.fail(err) // the writer notices; the messages are lost like any unflushed ones
	}
	for whole < len(ends) && ends[whole] <= n {
		whole++
	}
	q.mu.Lock()
	q.writing = false
	if n < len(buf) && err == nil && q.out == c {
		q.partial = append([]byte(nil), buf[n:]...)
		q.partialMsgs = len(items) - whole
	}
	if cap(buf) <= directMax {
		q.scratch = buf[:0]
	}
	more := len(q.items) > 0 || q.partial != nil
	q.mu.Unlock()
	if more {
		q.signal()
	}
	return whole, n < len(buf) && err == nil
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
	q.out, q.partial, q.partialMsgs = c, nil, 0
}

func (q *sendQueue) detach() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.out, q.partial, q.partialMsgs = nil, nil, 0
}

// claim makes the caller (the writer) the one writing: it returns the partial batch to
// send first (and how many messages it finishes) and every queued frame, spare (emptied)
// becoming the new backing store so a writer alternating two slices does not allocate.
// ok is false while a sender writes (it signals when done). Every successful claim must
// be followed by release.
func (q *sendQueue) claim(spare [][]byte) (partial []byte, partialMsgs int, items [][]byte, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.writing {
		return nil, 0, spare[:0], false
	}
	q.writing = true
	partial, partialMsgs = q.partial, q.partialMsgs
	q.partial, q.partialMsgs = nil, 0
	items = q.items
	q.items = spare[:0]
	q.bytes = 0
	return partial, partialMsgs, items, true
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
	q.items, q.bytes, q.partial, q.partialMsgs = nil, 0, nil, 0
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
