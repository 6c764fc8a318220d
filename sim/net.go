package sim

import (
	"github.com/cairnstore/cairn/core"
)

// send puts a message on the simulated network: it is encoded with the real codec now
// and decoded at delivery. Links between storage nodes can be cut; every link loses,
// duplicates and delays (with a long tail, so messages reorder) at the seed's rates.
func (w *world) send(from, to core.Addr, m core.Message) {
	w.msgsSent++
	switch m := m.(type) {
	case *core.AuthRequest:
		w.recordAuthRequest(from, m)
	case *core.SyncPart:
		w.syncParts++
		w.countReMirror(to, m.Vol, len(m.Blocks))
	case *core.Sync:
		if m.Round > 0 {
			w.syncSeries++ // the final Sync of a catch-up that went in parts
		}
		w.countReMirror(to, m.Vol, len(m.Blocks))
	}
	b := core.Encode(nil, m)
	if w.cut[[2]core.Addr{from, to}] > 0 {
		w.msgsDropped++
		return
	}
	faulty := w.phase == 0
	if faulty && w.netR.Chance(w.s.lossPPM) {
		w.msgsDropped++
		return
	}
	copies := 1
	if faulty && w.netR.Chance(w.s.dupPPM) {
		copies = 2
	}
	for i := 0; i < copies; i++ {
		d := w.s.delayBase
		if w.s.delayJit > 0 {
			d += w.netR.Int63n(w.s.delayJit)
		}
		if faulty && w.netR.Chance(w.s.tailPPM) {
			d += w.netR.Int63n(w.s.tailMax)
		}
		w.q.after(d, func() { w.deliver(from, to, b) })
	}
}

func (w *world) deliver(from, to core.Addr, b []byte) {
	w.mix('M', uint64(from)<<32|uint64(to), 0, b)
	m, err := core.Decode(b)
	if err != nil {
		w.violation("message from %d to %d does not decode: %v", from, to, err)
		return
	}
	if w.o.Trace != nil {
		w.tracef("%d -> %d %T %+v", from, to, m, summarize(m))
	}
	if r, ok := m.(*core.AuthReply); ok {
		w.recordAuthReply(to, r)
	}
	if sn := w.node(to); sn != nil {
		w.onNode(sn, func() { sn.n.Step(w.local(sn), from, m) })
		return
	}
	if to == adminAddr {
		w.adminReply(m)
		return
	}
	if i := int(to) - clientAddr0; i >= 0 && i < len(w.clients) {
		w.clients[i].step(from, m)
	}
}

// summarize drops bulk data from trace lines.
func summarize(m core.Message) any {
	switch m := m.(type) {
	case *core.ClientWrite:
		c := *m
		c.Data = nil
		return c
	case *core.ClientReply:
		c := *m
		c.Data = nil
		return c
	case *core.Replicate:
		c := *m
		c.Entry.Data = nil
		return c
	case *core.Sync:
		return struct {
			Vol           core.VolumeID
			Epoch         core.Epoch
			From, Upto    core.LSN
			Blocks, Dedup int
		}{m.Vol, m.Epoch, m.From, m.Upto, len(m.Blocks), len(m.Dedup)}
	}
	return m
}
