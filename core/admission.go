package core

import (
	"slices"

	"github.com/cairnstore/cairn/core/hist"
	"github.com/cairnstore/cairn/core/qos"
)

// volQoS is a volume's admission state on its primary: its token buckets and the
// bounded FIFO of requests waiting for tokens.
type volQoS struct {
	lim         *qos.Volume // nil: not throttled
	queue       []queuedReq
	queuedBytes int64 // write payloads held by the queue
	// peerCredits: the burst-credit balance the last primary reported (-1: unknown), so
	// a promoted member continues it instead of starting full.
	peerCredits int64
}

type queuedReq struct {
	from   Addr
	at     int64 // arrival on our clock
	client uint64
	req    uint64
	epoch  Epoch
	bytes  int64
	write  *ClientWrite
	read   *ClientRead
}

// volStats are the figures a node keeps per volume while it is (or was) its primary.
type volStats struct {
	lat                             [NumOpClasses]*hist.Histogram
	admitted, lent, throttled, busy uint64
}

func newVolStats() *volStats {
	s := &volStats{}
	for i := range s.lat {
		h, err := hist.New(hist.DefaultConfig())
		if err != nil {
			panic(err) // the default layout is valid (hist tests)
		}
		s.lat[i] = h
	}
	return s
}

// record adds one OK reply's latency, from arrival to now.
func (n *Node) record(v *volume, class OpClass, at int64) {
	if at > 0 && v.st != nil {
		v.st.lat[class].Record(n.now - at)
	}
}

// admitArrival decides a request on arrival: true to serve it now; false when it was
// queued behind others or for tokens, or refused with Busy (a full queue).
func (n *Node) admitArrival(v *volume, r queuedReq) bool {
	q := &v.q
	if q.lim == nil {
		v.st.admitted++
		return true
	}
	if len(q.queue) == 0 && n.grant(v, r.bytes) {
		return true
	}
	for i := range q.queue {
		if q.queue[i].client == r.client && q.queue[i].req == r.req && r.client != 0 {
			q.queue[i].from = r.from // a retry of a request already waiting
			return false
		}
	}
	if len(q.queue) >= n.p.QueueDepth || (r.write != nil && len(q.queue) > 0 && q.queuedBytes+r.bytes > n.p.QueueBytes) {
		v.st.busy++
		n.send(r.from, &ClientReply{Vol: v.cfg.Volume, Client: r.client, Req: r.req, Status: StatusBusy})
		return false
	}
	v.st.throttled++
	q.queue = append(q.queue, r)
	if r.write != nil {
		q.queuedBytes += r.bytes
	}
	return false
}

// grant asks the volume's buckets (and the node's) for one operation.
func (n *Node) grant(v *volume, bytes int64) bool {
	g := v.q.lim.Admit(n.now, bytes, n.global)
	switch g {
	case qos.Denied:
		return false
	case qos.Lent:
		v.st.lent++
	}
	v.st.admitted++
	return true
}

// drainQueue serves waiting requests in order while tokens allow. Requests that no
// longer match the volume's epoch are answered without spending tokens.
func (n *Node) drainQueue(v *volume) {
	for range len(v.q.queue) {
		r := v.q.queue[0]
		if v.prim != nil && r.epoch == v.cfg.Epoch && v.q.lim != nil && !n.grant(v, r.bytes) {
			return
		}
		v.q.queue = slices.Delete(v.q.queue, 0, 1)
		if r.write != nil {
			v.q.queuedBytes -= r.bytes
		}
		n.serveQueued(r)
	}
}

func (n *Node) serveQueued(r queuedReq) {
	if r.write != nil {
		n.clientWrite(r.from, r.write, r.at, true)
	} else {
		n.clientRead(r.from, r.read, r.at, true)
	}
}

// applyQoS brings the volume's buckets in line with its configuration (at promotion and
// on every new configuration): a changed commitment takes effect at once.
func (n *Node) applyQoS(v *volume) {
	if v.st == nil {
		v.st = newVolStats()
	}
	q := &v.q
	if v.cfg.QoS.IOPS == 0 {
		q.lim = nil
		queued := q.queue
		q.queue, q.queuedBytes = nil, 0
		for _, r := range queued {
			n.serveQueued(r) // no longer throttled
		}
		return
	}
	l := v.cfg.QoS.limits()
	if q.lim == nil {
		lim, err := qos.NewVolume(l, n.now)
		if err != nil {
			n.fatal(err) // the authority validated it: a broken invariant
			return
		}
		q.lim = lim
		if q.peerCredits >= 0 {
			lim.SetCredits(n.now, q.peerCredits)
		}
		return
	}
	if q.lim.Limits() != l {
		if err := q.lim.SetLimits(n.now, l); err != nil {
			n.fatal(err)
		}
	}
}

// dropQoS runs when the node stops being primary: waiting clients are sent to the new
// configuration; the credit balance is remembered.
func (n *Node) dropQoS(v *volume) {
	q := &v.q
	if q.lim != nil {
		q.peerCredits = q.lim.Credits(n.now)
	}
	q.lim = nil
	for _, r := range q.queue {
		n.send(r.from, &ClientReply{Vol: v.cfg.Volume, Client: r.client, Req: r.req, Status: StatusNotPrimary,
			HasConfig: true, Config: v.cfg.Clone()})
	}
	q.queue, q.queuedBytes = nil, 0
}

// credits is what heartbeats report: the burst balance, or -1 when not throttled.
func (v *volume) credits(now int64) int64 {
	if v.q.lim == nil {
		return -1
	}
	return v.q.lim.Credits(now)
}

// Stats returns the node's QoS and latency figures (copies).
func (n *Node) Stats() NodeStats {
	s := n.nodeStats()
	for _, id := range n.volIDs {
		if vs, ok := n.volumeStats(n.vols[id], true); ok {
			s.Volumes = append(s.Volumes, vs)
		}
	}
	return s
}

// Counters is VolumeStats without the latency histograms (cheap; for frequent sampling).
func (n *Node) Counters(vol VolumeID) (VolumeStats, bool) {
	v := n.vols[vol]
	if v == nil {
		return VolumeStats{}, false
	}
	return n.volumeStats(v, false)
}

func (n *Node) nodeStats() NodeStats {
	return NodeStats{Self: n.p.Self, GlobalRate: n.global.Rate(), GlobalTokens: n.global.Tokens(n.now),
		DiskLatency: n.global.LatencyEWMA(), StorageQueue: len(n.inflight),
		SyncPartsSent: n.syncPartsSent, SyncPartsApplied: n.syncPartsApplied, SyncSeriesDone: n.syncSeriesDone,
		ReMirrorBytes: n.reMirrorBytes, CopyWaits: n.copyWaits}
}

func (n *Node) volumeStats(v *volume, withLatency bool) (VolumeStats, bool) {
	if v.st == nil {
		return VolumeStats{}, false
	}
	st := v.st
	vs := VolumeStats{Volume: v.cfg.Volume, Primary: v.prim != nil, QoS: v.cfg.QoS, Admitted: st.admitted,
		Lent: st.lent, Throttled: st.throttled, Busy: st.busy, Queued: len(v.q.queue), Credits: v.credits(n.now)}
	if p := v.prim; p != nil {
		vs.RF, vs.InSync = v.cfg.RF, len(v.cfg.InSync)
		for _, r := range v.cfg.Replicas {
			if m := p.members[r]; m != nil && m.stranger(v, r) {
				vs.Rebuilding++
			}
		}
	}
	if withLatency {
		for i, h := range st.lat {
			c, _ := hist.New(h.Config())
			if err := c.Merge(h); err == nil {
				vs.Latency[i] = c
			}
		}
	}
	return vs, true
}
