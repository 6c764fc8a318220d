package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/histories"
	"github.com/cairnstore/cairn/netio"
)

// The workload of the real-process fault test: in-process netio.Clients issuing random
// reads and writes on a small block range of each volume, every operation recorded into
// a histories.History the way the simulator records it (sim/client.go): times are
// monotonic nanoseconds since the test started, taken just before the call and just
// after its return; a read's values are the values its blocks decode to (Corrupt when the
// bytes match no value's pattern); a write's values are unique per client, write and
// block; anything but OK is recorded as of unknown outcome (a timed-out write may have
// taken effect; a definite error means it did not, which unknown allows too).

// outcome is how an operation ended, for the summary. The history only knows ok and
// unknown: failed and unknown are both recorded as Unknown, as the simulator does.
type outcome int

const (
	opOK      outcome = iota
	opFailed          // a definite error from the cluster (it did not take effect)
	opUnknown         // timed out: a write may or may not have taken effect
)

func classify(err error) outcome {
	switch {
	case err == nil:
		return opOK
	case errors.Is(err, netio.ErrUnknown), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return opUnknown
	default:
		return opFailed // netio.Client reports a definite status as its text
	}
}

// volCounts are one volume's operation counts.
type volCounts struct {
	n              [3][3]int // [kind: 1 read, 2 write][outcome]
	maxOK          int64     // the longest OK operation, ns
	slowOK         int       // OK operations that took over a second
	okAfterHeal    int
	firstOKAfter   int64 // ns from healing to the first OK write that started after it; -1: none
	firstFailedErr string
}

func (v *volCounts) ok(k histories.Kind) int { return v.n[k][opOK] }

// recorder owns the history; safe for concurrent use.
type recorder struct {
	start  time.Time
	healAt atomic.Int64 // ns since start when every fault was healed; 0 before

	mu   sync.Mutex
	h    histories.History
	vols map[uint32]*volCounts
}

func newRecorder(start time.Time) *recorder {
	return &recorder{start: start, vols: map[uint32]*volCounts{}}
}

// now is monotonic nanoseconds since the test started.
func (r *recorder) now() int64 { return int64(time.Since(r.start)) }

func (r *recorder) add(op histories.Op, o outcome, err error) {
	op.Unknown = o != opOK
	if op.Unknown && op.Kind == histories.Read {
		op.Values = nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.h.Add(op)
	v := r.vols[op.Volume]
	if v == nil {
		v = &volCounts{firstOKAfter: -1}
		r.vols[op.Volume] = v
	}
	v.n[op.Kind][o]++
	if o == opOK {
		v.maxOK = max(v.maxOK, op.Return-op.Call)
		if op.Return-op.Call > int64(time.Second) {
			v.slowOK++
		}
	}
	if o == opFailed && v.firstFailedErr == "" {
		v.firstFailedErr = err.Error()
	}
	if heal := r.healAt.Load(); o == opOK && heal > 0 && op.Call >= heal {
		v.okAfterHeal++
		if op.Kind == histories.Write && (v.firstOKAfter < 0 || op.Return-heal < v.firstOKAfter) {
			v.firstOKAfter = op.Return - heal
		}
	}
}

// snapshot returns a copy of the history and the counts.
func (r *recorder) snapshot() (*histories.History, map[uint32]volCounts) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := &histories.History{}
	for _, op := range r.h.Ops() {
		h.Add(op)
	}
	counts := map[uint32]volCounts{}
	for k, v := range r.vols {
		counts[k] = *v
	}
	return h, counts
}

// wclient is one netio.Client on one volume.
type wclient struct {
	idx       int // 1-based, distinct across the test: the high bits of its values
	id        core.Addr
	session   uint64
	vol       core.VolumeID
	hot       uint64 // blocks [0, hot) are used
	readPct   int    // share of reads, percent
	opTimeout time.Duration
	cl        *netio.Client
	seq       atomic.Uint64

	mu      sync.Mutex
	lastOK  int64 // return of the last OK operation (ns since start)
	gap     int64 // the longest time between two OK returns
	gapFrom int64 // where that gap started
}

// okAt notes an OK return, for the client's longest gap without one.
func (c *wclient) okAt(ret int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastOK > 0 && ret-c.lastOK > c.gap {
		c.gap, c.gapFrom = ret-c.lastOK, c.lastOK
	}
	c.lastOK = max(c.lastOK, ret)
}

// value is unique per client, write and block (as the simulator's): never 0, never Corrupt.
func (c *wclient) value(seq uint64, i uint32) uint64 {
	return uint64(c.idx)<<48 | seq<<8 | uint64(i)
}

// pattern fills a block from its value (the simulator's pattern).
func pattern(dst []byte, v uint64) {
	binary.LittleEndian.PutUint64(dst, v)
	for i := 8; i < len(dst); i++ {
		dst[i] = byte(v>>((i%8)*8)) ^ byte(i)
	}
}

// decodeBlock returns the value a block holds: 0 for all zeros, histories.Corrupt when
// the bytes match no value's pattern.
func decodeBlock(b []byte) uint64 {
	if len(b) != core.BlockSize {
		return histories.Corrupt
	}
	v := binary.LittleEndian.Uint64(b)
	var want [core.BlockSize]byte
	if v != 0 {
		pattern(want[:], v)
	}
	if string(want[:]) != string(b) {
		return histories.Corrupt
	}
	return v
}

// op runs one operation and records it; final (the final reads) leaves the client's gap
// figures alone. A context bounds it beyond the client's own timeout.
func (c *wclient) op(rec *recorder, write bool, block uint64, count uint32, final bool) outcome {
	op := histories.Op{Client: c.session, Volume: uint32(c.vol), Block: block, Count: count}
	ctx, cancel := context.WithTimeout(context.Background(), c.opTimeout+5*time.Second)
	defer cancel()
	var err error
	if write {
		op.Kind = histories.Write
		seq := c.seq.Add(1)
		data := make([]byte, int(count)*core.BlockSize)
		op.Values = make([]uint64, count)
		for i := range count {
			op.Values[i] = c.value(seq, i)
			pattern(data[int(i)*core.BlockSize:int(i+1)*core.BlockSize], op.Values[i])
		}
		op.Call = rec.now()
		err = c.cl.Write(ctx, c.vol, block, data)
		op.Return = rec.now()
	} else {
		op.Kind = histories.Read
		op.Call = rec.now()
		var data []byte
		data, err = c.cl.Read(ctx, c.vol, block, count)
		op.Return = rec.now()
		if err == nil {
			op.Values = make([]uint64, count)
			for i := range op.Values {
				lo := i * core.BlockSize
				if lo+core.BlockSize > len(data) {
					op.Values[i] = histories.Corrupt // short answer
					continue
				}
				op.Values[i] = decodeBlock(data[lo : lo+core.BlockSize])
			}
		}
	}
	o := classify(err)
	rec.add(op, o, err)
	if o == opOK && !final {
		c.okAt(op.Return)
	}
	return o
}

// work issues random operations until stop is set: reads with probability c.readPct/100,
// 1 to maxCount blocks, with a think time up to thinkMax between operations.
func (c *wclient) work(rec *recorder, rng *rand.Rand, stop *atomic.Bool, maxCount uint32, thinkMax time.Duration) {
	for !stop.Load() {
		if thinkMax > 0 {
			time.Sleep(time.Duration(rng.Int64N(int64(thinkMax))))
		}
		count := min(1+uint32(rng.IntN(int(maxCount))), uint32(c.hot))
		block := rng.Uint64N(c.hot - uint64(count) + 1)
		c.op(rec, rng.IntN(100) >= c.readPct, block, count, false)
	}
}

// readAll reads every block of [0, hot) once more (into the history: the final reads
// check that every acknowledged write survived), retrying each chunk until it succeeds
// or the deadline passes.
func (c *wclient) readAll(rec *recorder, deadline time.Time) error {
	const chunk = 8
	for b := uint64(0); b < c.hot; b += chunk {
		n := uint32(min(chunk, c.hot-b))
		for c.op(rec, false, b, n, true) != opOK {
			if time.Now().After(deadline) {
				return fmt.Errorf("volume %d: final read of blocks [%d,+%d) not served before the deadline", c.vol, b, n)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}
