package nbd

import (
	"math/bits"
	"sync"
)

// Request buffers come from pools by power-of-two size class, from 4 KiB up
// to MaxRequestLen, so steady traffic allocates nothing per request.
const (
	minBufShift = 12 // 4 KiB
	maxBufShift = 25 // 32 MiB == MaxRequestLen
)

var bufPools [maxBufShift - minBufShift + 1]sync.Pool

// bufClass is the index of the smallest class that holds n bytes (1 ≤ n ≤
// MaxRequestLen).
func bufClass(n int) int {
	if n <= 1<<minBufShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minBufShift
}

// getBuf returns a buffer of length n (1 ≤ n ≤ MaxRequestLen). Its contents
// are stale: whoever reads from it must fill it first.
func getBuf(n int) *[]byte {
	c := bufClass(n)
	if p, ok := bufPools[c].Get().(*[]byte); ok {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n, 1<<(c+minBufShift))
	return &b
}

// putBuf gives a buffer from getBuf back to its pool.
func putBuf(p *[]byte) {
	c := bufClass(cap(*p))
	if cap(*p) != 1<<(c+minBufShift) {
		return
	}
	bufPools[c].Put(p)
}

// limiter bounds the requests in flight on one connection, by count and by
// the bytes of their buffers. Only the connection's reader acquires; the
// reply writer releases once a reply is on the wire.
type limiter struct {
	mu       sync.Mutex
	cond     sync.Cond
	n, bytes int
	maxN     int
	maxBytes int
}

func newLimiter(maxN, maxBytes int) *limiter {
	l := &limiter{maxN: maxN, maxBytes: maxBytes}
	l.cond.L = &l.mu
	return l
}

// acquire waits until one more request of cost bytes fits. A request alone
// always fits, whatever its cost.
func (l *limiter) acquire(cost int) {
	l.mu.Lock()
	for l.n >= l.maxN || (l.n > 0 && l.bytes+cost > l.maxBytes) {
		l.cond.Wait()
	}
	l.n++
	l.bytes += cost
	l.mu.Unlock()
}

func (l *limiter) release(cost int) {
	l.mu.Lock()
	l.n--
	l.bytes -= cost
	l.mu.Unlock()
	l.cond.Signal() // the reader is the only waiter
}
