package netio

import (
	"sync"
)

// sendQueue is a bounded FIFO of encoded messages with one consumer (a writer goroutine).
// It is bounded by count and by bytes; the consumer takes everything at once, so at most
// about twice the bounds are in memory (one batch being written, one filling).
type sendQueue struct {
	maxItems int
	maxBytes int64
	ready    chan struct{} // holds a token when items may be waiting

	mu     sync.Mutex
	items  [][]byte
	bytes  int64
	closed bool
}

func newSendQueue(maxItems int, maxBytes int64) *sendQueue {
	return &sendQueue{maxItems: maxItems, maxBytes: maxBytes, ready: make(chan struct{}, 1)}
}

// push appends p, or reports false if the queue is full or closed.
func (q *sendQueue) push(p []byte) bool {
	q.mu.Lock()
	if q.closed || len(q.items) >= q.maxItems || q.bytes+int64(len(p)) > q.maxBytes {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, p)
	q.bytes += int64(len(p))
	q.mu.Unlock()
	q.signal()
	return true
}

// signal wakes the consumer (idempotent).
func (q *sendQueue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take removes and returns every queued item; spare (emptied) becomes the new backing
// store, so a consumer alternating two slices does not allocate.
func (q *sendQueue) take(spare [][]byte) [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.items
	q.items = spare[:0]
	q.bytes = 0
	return out
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
	q.items, q.bytes = nil, 0
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
