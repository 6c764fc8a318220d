package core

import "slices"

// Limits of the deduplication table. A client keeps at most perClient requests in
// flight; the table forgets the least recently active client beyond maxClients.
const (
	dedupPerClient  = 64
	dedupMaxClients = 4096
)

// dedupTable remembers which (client, request) pairs took effect at which LSN, so a
// retried write is answered, not applied twice. It is replicated with every write.
type dedupTable struct {
	clients map[uint64]*clientReqs
}

type clientReqs struct {
	recs   []DedupRec // oldest first, at most dedupPerClient
	last   LSN
	oldest uint64 // requests below this are finished at the client
}

func newDedupTable() *dedupTable { return &dedupTable{clients: map[uint64]*clientReqs{}} }

func (t *dedupTable) lookup(client, req uint64) (LSN, bool) {
	c := t.clients[client]
	if c == nil {
		return 0, false
	}
	for i := len(c.recs) - 1; i >= 0; i-- {
		if c.recs[i].Req == req {
			return c.recs[i].LSN, true
		}
	}
	return 0, false
}

func (t *dedupTable) add(r DedupRec) {
	c := t.clients[r.Client]
	if c == nil {
		if len(t.clients) >= dedupMaxClients {
			t.evict()
		}
		c = &clientReqs{}
		t.clients[r.Client] = c
	}
	if r.Oldest > c.oldest {
		// The client finished everything below Oldest: forget those requests. A client
		// keeps its unfinished requests within dedupPerClient ids (Client.CanSubmit), so
		// what remains always fits.
		c.oldest = r.Oldest
		c.recs = slices.DeleteFunc(c.recs, func(x DedupRec) bool { return x.Req < c.oldest })
	}
	if len(c.recs) >= dedupPerClient {
		c.recs = slices.Delete(c.recs, 0, 1)
	}
	c.recs = append(c.recs, r)
	c.last = max(c.last, r.LSN)
}

// finished reports whether the client has already finished req (answered or abandoned):
// such a request, arriving late, must never be applied.
func (t *dedupTable) finished(client, req uint64) bool {
	c := t.clients[client]
	return c != nil && req < c.oldest
}

// evict drops the client whose latest write is oldest (ties: lowest id), independent of map order.
func (t *dedupTable) evict() {
	var victim uint64
	var best *clientReqs
	// order-independent: a strict total order picks one victim.
	for id, c := range t.clients {
		if best == nil || c.last < best.last || (c.last == best.last && id < victim) {
			victim, best = id, c
		}
	}
	delete(t.clients, victim)
}

// upTo lists every record with LSN <= x, sorted by client then LSN.
func (t *dedupTable) upTo(x LSN) []DedupRec {
	var out []DedupRec
	// order-independent: the result is sorted below.
	for _, c := range t.clients {
		for _, r := range c.recs {
			if r.LSN <= x {
				out = append(out, r)
			}
		}
	}
	slices.SortFunc(out, func(a, b DedupRec) int {
		if a.Client != b.Client {
			if a.Client < b.Client {
				return -1
			}
			return 1
		}
		if a.LSN != b.LSN {
			if a.LSN < b.LSN {
				return -1
			}
			return 1
		}
		if a.Req < b.Req {
			return -1
		} else if a.Req > b.Req {
			return 1
		}
		return 0
	})
	return out
}

func (t *dedupTable) replace(recs []DedupRec) {
	t.clients = map[uint64]*clientReqs{}
	for _, r := range recs {
		t.add(r)
	}
}
