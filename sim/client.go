package sim

import (
	"encoding/binary"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/histories"
)

// simClient is one attached client: the real client library plus a workload that
// records every operation in the history.
type simClient struct {
	w       *world
	idx     int
	addr    core.Addr
	session uint64
	c       *core.Client
	vols    []core.VolumeID
	pending map[uint64]*histories.Op
	waiters map[uint64]func(*histories.Op)
	seq     uint64
	stopped bool
}

func (w *world) newClient(i int, vols []core.VolumeID) *simClient {
	p := core.DefaultClientParams(core.Addr(clientAddr0+i), uint64(i+1), w.authorities())
	p.OpTimeout = w.s.opTimeout
	sc := &simClient{w: w, idx: i, addr: p.ID, session: p.Session, c: core.NewClient(p), vols: vols,
		pending: map[uint64]*histories.Op{}, waiters: map[uint64]func(*histories.Op){}}
	return sc
}

func (sc *simClient) start(at int64) {
	w := sc.w
	var tick func()
	tick = func() {
		if w.phase >= 3 {
			return
		}
		if sc.c.InFlight() > 0 {
			sc.c.Tick(w.q.now)
			sc.flush()
		}
		w.q.after(tickInterval, tick)
	}
	w.q.at(at, tick)
	var think func()
	think = func() {
		if sc.stopped || w.phase >= 2 {
			return
		}
		if len(sc.pending) < w.s.inFlight && sc.c.CanSubmit() {
			sc.issue()
		}
		w.q.after(500_000+w.wrkR.Int63n(w.s.thinkMax+1), think)
	}
	w.q.at(at, think)
}

// value is unique per client, write and block; pattern fills a block from it.
func (sc *simClient) value(i uint32) uint64 {
	return uint64(sc.idx+1)<<48 | sc.seq<<8 | uint64(i)
}

func pattern(dst []byte, v uint64) {
	binary.LittleEndian.PutUint64(dst, v)
	for i := 8; i < len(dst); i++ {
		dst[i] = byte(v>>((i%8)*8)) ^ byte(i)
	}
}

// decodeBlock returns the value a block holds: 0 for all zeros, histories.Corrupt when
// the bytes match no value's pattern.
func decodeBlock(b []byte) uint64 {
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

func (sc *simClient) issue() {
	w := sc.w
	vol := sc.vols[w.wrkR.Intn(len(sc.vols))]
	if w.s.flushPct > 0 && w.wrkR.Intn(100) < w.s.flushPct {
		sc.c.Flush(w.q.now, vol) // no effect on the registers: not in the history
		sc.flush()
		return
	}
	hot := w.s.hotBlocks[vol-1]
	count := uint32(1 + w.wrkR.Intn(int(w.s.maxCount)))
	count = min(count, uint32(hot))
	block := uint64(w.wrkR.Int63n(int64(hot - uint64(count) + 1)))
	op := &histories.Op{Client: sc.session, Volume: uint32(vol), Block: block, Count: count, Call: w.q.now}
	var req uint64
	if w.wrkR.Intn(100) < w.s.readPct {
		op.Kind = histories.Read
		req = sc.c.Read(w.q.now, vol, block, count)
	} else {
		op.Kind = histories.Write
		sc.seq++
		data := make([]byte, int(count)*core.BlockSize)
		op.Values = make([]uint64, count)
		for i := uint32(0); i < count; i++ {
			op.Values[i] = sc.value(i)
			pattern(data[int(i)*core.BlockSize:int(i+1)*core.BlockSize], op.Values[i])
		}
		req = sc.c.Write(w.q.now, vol, block, data)
	}
	sc.pending[req] = op
	sc.flush()
}

// read issues a read outside the random workload (final reads); done gets its op.
func (sc *simClient) read(vol core.VolumeID, block uint64, count uint32, done func(*histories.Op)) {
	w := sc.w
	op := &histories.Op{Client: sc.session, Volume: uint32(vol), Kind: histories.Read, Block: block, Count: count, Call: w.q.now}
	req := sc.c.Read(w.q.now, vol, block, count)
	sc.pending[req] = op
	sc.waiters[req] = done
	sc.flush()
}

func (sc *simClient) step(from core.Addr, m core.Message) {
	sc.c.Step(sc.w.q.now, from, m)
	sc.flush()
}

func (sc *simClient) flush() {
	w := sc.w
	msgs, done := sc.c.Drain()
	for _, env := range msgs {
		w.send(sc.addr, env.To, env.Msg)
	}
	for _, d := range done {
		op := sc.pending[d.Req]
		if op == nil {
			continue
		}
		delete(sc.pending, d.Req)
		op.Return = w.q.now
		switch {
		case d.Status == core.StatusOK && op.Kind == histories.Read:
			op.Values = make([]uint64, op.Count)
			for i := range op.Values {
				op.Values[i] = decodeBlock(d.Data[i*core.BlockSize : (i+1)*core.BlockSize])
			}
		case d.Status == core.StatusOK:
		default:
			// Unknown or a definite error: either way, record it as of unknown outcome
			// (a definite error means it did not take effect, which unknown allows).
			op.Unknown = true
			if op.Kind == histories.Read {
				op.Values = nil
			}
		}
		w.mix('O', op.Client, uint64(op.Return-op.Call), nil)
		if w.o.Trace != nil {
			w.tracef("op client=%d vol=%d %v block=%d count=%d values=%x call=%.6f unknown=%v status=%v",
				op.Client, op.Volume, op.Kind, op.Block, op.Count, op.Values, float64(op.Call)/1e9, op.Unknown, d.Status)
		}
		w.hist.Add(*op)
		if f := sc.waiters[d.Req]; f != nil {
			delete(sc.waiters, d.Req)
			f(op)
		}
	}
}
