// Package bench is Cairn's load generator: a closed loop of QD workers issuing random
// block-sized reads and writes against a Target for a fixed time, with latencies in a
// log-linear histogram. `cairn bench` drives it against a Cairn volume (the client
// library) or, for comparison, a peer such as etcd.
package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnstore/cairn/core/hist"
)

// Target is what a benchmark drives. ReadAt and WriteAt move exactly len(p) bytes at
// byte offset off (a multiple of the block size); they are called from QD goroutines at
// once.
type Target interface {
	ReadAt(ctx context.Context, p []byte, off uint64) error
	WriteAt(ctx context.Context, p []byte, off uint64) error
}

// Workload names.
const (
	RandWrite = "randwrite"
	RandRead  = "randread"
	Mixed     = "mixed"
)

// Config is one run.
type Config struct {
	Workload string        // randwrite, randread or mixed
	BS       int           // bytes per operation: a multiple of 4096, at most 1 MiB
	QD       int           // operations in flight (workers), 1..1024
	Duration time.Duration // measured time, > 0
	Span     uint64        // bytes of the target used, from offset 0 (a multiple of BS, >= BS)
	ReadPct  int           // mixed: percentage of reads (0..100)
	Seed     uint64        // offsets and payloads
	// OpTimeout bounds one operation (0: 30 s); an operation that times out is an error.
	OpTimeout time.Duration
}

// Validate reports what is wrong with c.
func (c Config) Validate() error {
	switch c.Workload {
	case RandWrite, RandRead, Mixed:
	default:
		return fmt.Errorf("workload %q: want randwrite, randread or mixed", c.Workload)
	}
	if c.BS <= 0 || c.BS%4096 != 0 || c.BS > 1<<20 {
		return fmt.Errorf("block size %d: want a multiple of 4096 up to 1 MiB", c.BS)
	}
	if c.QD < 1 || c.QD > 1024 {
		return fmt.Errorf("queue depth %d: want 1 to 1024", c.QD)
	}
	if c.Duration <= 0 {
		return fmt.Errorf("duration %v: want more than 0", c.Duration)
	}
	if c.Span < uint64(c.BS) {
		return fmt.Errorf("span of %d bytes is smaller than one %d-byte operation", c.Span, c.BS)
	}
	if c.ReadPct < 0 || c.ReadPct > 100 {
		return fmt.Errorf("read percentage %d: want 0 to 100", c.ReadPct)
	}
	return nil
}

// Result is what a run measured. Latencies are in microseconds.
type Result struct {
	Workload     string  `json:"workload"`
	BS           int     `json:"bs"`
	QD           int     `json:"qd"`
	Seconds      float64 `json:"seconds"`
	Ops          uint64  `json:"ops"`
	Reads        uint64  `json:"reads"`
	Writes       uint64  `json:"writes"`
	Errors       uint64  `json:"errors"`
	OpsPerSecond float64 `json:"ops_per_second"`
	MiBPerSecond float64 `json:"mib_per_second"`
	P50          float64 `json:"p50_us"`
	P90          float64 `json:"p90_us"`
	P99          float64 `json:"p99_us"`
	P999         float64 `json:"p999_us"`
	Max          float64 `json:"max_us"`
	FirstError   string  `json:"first_error,omitempty"`
}

// Progress is a snapshot during a run (every second).
type Progress struct {
	Elapsed time.Duration
	Ops     uint64
	Errors  uint64
}

// worker state, merged at the end.
type worker struct {
	h             *hist.Histogram
	reads, writes uint64
	errors        uint64
	firstErr      error
}

// Run drives t for c.Duration and returns what it measured. progress (may be nil) is
// called about once a second from Run's goroutine. Errors of single operations are
// counted, not returned; Run fails only on a bad Config or a cancelled ctx.
func Run(ctx context.Context, c Config, t Target, progress func(Progress)) (Result, error) {
	if err := c.Validate(); err != nil {
		return Result{}, err
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = 30 * time.Second
	}
	slots := c.Span / uint64(c.BS)
	ws := make([]*worker, c.QD)
	var done sync.WaitGroup
	var ops, errs atomic.Uint64
	start := time.Now()
	deadline := start.Add(c.Duration)
	for i := range ws {
		h, err := hist.New(hist.DefaultConfig())
		if err != nil {
			return Result{}, err
		}
		w := &worker{h: h}
		ws[i] = w
		rng := rand.New(rand.NewPCG(c.Seed, uint64(i)+1))
		done.Add(1)
		go func() {
			defer done.Done()
			buf := make([]byte, c.BS)
			fill(buf, rng)
			for seq := uint64(0); ctx.Err() == nil && time.Now().Before(deadline); seq++ {
				off := rng.Uint64N(slots) * uint64(c.BS)
				read := c.Workload == RandRead || c.Workload == Mixed && rng.IntN(100) < c.ReadPct
				if !read {
					binary.LittleEndian.PutUint64(buf, seq) // every write differs
				}
				octx, cancel := context.WithTimeout(ctx, c.OpTimeout)
				t0 := time.Now()
				var err error
				if read {
					err = t.ReadAt(octx, buf, off)
					w.reads++
				} else {
					err = t.WriteAt(octx, buf, off)
					w.writes++
				}
				lat := time.Since(t0)
				cancel()
				if err != nil {
					w.errors++
					errs.Add(1)
					if w.firstErr == nil {
						w.firstErr = err
					}
					continue
				}
				w.h.Record(lat.Nanoseconds())
				ops.Add(1)
			}
		}()
	}
	finished := make(chan struct{})
	go func() { done.Wait(); close(finished) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
wait:
	for {
		select {
		case <-finished:
			break wait
		case <-tick.C:
			if progress != nil {
				progress(Progress{Elapsed: time.Since(start), Ops: ops.Load(), Errors: errs.Load()})
			}
		}
	}
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("benchmark interrupted: %w", err)
	}
	return summarize(c, ws, elapsed)
}

func summarize(c Config, ws []*worker, elapsed time.Duration) (Result, error) {
	all, err := hist.New(hist.DefaultConfig())
	if err != nil {
		return Result{}, err
	}
	r := Result{Workload: c.Workload, BS: c.BS, QD: c.QD, Seconds: elapsed.Seconds()}
	var first error
	for _, w := range ws {
		if err := all.Merge(w.h); err != nil {
			return Result{}, err
		}
		r.Reads += w.reads
		r.Writes += w.writes
		r.Errors += w.errors
		if first == nil {
			first = w.firstErr
		}
	}
	r.Ops = all.Count()
	if first != nil {
		r.FirstError = first.Error()
	}
	r.OpsPerSecond = float64(r.Ops) / r.Seconds
	r.MiBPerSecond = r.OpsPerSecond * float64(c.BS) / (1 << 20)
	if r.Ops > 0 {
		us := func(q float64) float64 { return float64(all.Quantile(q)) / 1e3 }
		r.P50, r.P90, r.P99, r.P999 = us(0.5), us(0.9), us(0.99), us(0.999)
		r.Max = float64(all.Max()) / 1e3
	}
	return r, nil
}

// fill puts random bytes in b (payloads that do not compress).
func fill(b []byte, rng *rand.Rand) {
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], rng.Uint64())
	}
}

// Prefill writes every c.BS slot of c.Span once, QD at a time, reporting progress every
// 64 MiB or so.
func Prefill(ctx context.Context, t Target, c Config, progress func(done, total uint64)) error {
	if err := c.Validate(); err != nil {
		return err
	}
	slots := c.Span / uint64(c.BS)
	var next, written atomic.Uint64
	var wg sync.WaitGroup
	errc := make(chan error, c.QD)
	for range c.QD {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, c.BS)
			fill(buf, rand.New(rand.NewPCG(c.Seed, 0)))
			for {
				i := next.Add(1) - 1
				if i >= slots || ctx.Err() != nil {
					return
				}
				binary.LittleEndian.PutUint64(buf, i)
				octx, cancel := context.WithTimeout(ctx, max(c.OpTimeout, time.Second))
				err := t.WriteAt(octx, buf, i*uint64(c.BS))
				cancel()
				if err != nil {
					errc <- fmt.Errorf("offset %d: %w", i*uint64(c.BS), err)
					return
				}
				if n := written.Add(1); progress != nil && n%(64<<20/uint64(c.BS)) == 0 {
					progress(n*uint64(c.BS), c.Span)
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	return ctx.Err()
}
