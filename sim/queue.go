package sim

import "container/heap"

// event is one thing that happens at a virtual time. Ties are broken by insertion
// order (seq), so the run is deterministic.
type event struct {
	at   int64
	seq  uint64
	fire func()
}

type eventHeap []*event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(*event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// queue is the simulator's event queue.
type queue struct {
	h   eventHeap
	seq uint64
	now int64
}

func (q *queue) at(t int64, f func()) {
	if t < q.now {
		t = q.now
	}
	q.seq++
	heap.Push(&q.h, &event{at: t, seq: q.seq, fire: f})
}

func (q *queue) after(d int64, f func()) { q.at(q.now+d, f) }

// next pops the earliest event, advancing time; false when empty or past limit.
func (q *queue) next(limit int64) (*event, bool) {
	if len(q.h) == 0 || q.h[0].at > limit {
		return nil, false
	}
	e := heap.Pop(&q.h).(*event)
	q.now = e.at
	return e, true
}
