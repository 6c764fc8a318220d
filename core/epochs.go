package core

// epochLog remembers the epoch of the most recent log entries (bounded), so a replica
// can check the log-matching condition (same LSN and epoch => same history) without
// keeping old entries. An LSN it no longer remembers is treated as a mismatch, which
// is always safe: it costs a delta sync, never correctness.
type epochLog struct {
	m     map[LSN]Epoch
	order []LSN // FIFO of remembered LSNs
	head  int
}

const epochLogSize = 4096

func newEpochLog() *epochLog { return &epochLog{m: map[LSN]Epoch{}} }

func (l *epochLog) set(n LSN, e Epoch) {
	if _, ok := l.m[n]; !ok {
		if len(l.order)-l.head >= epochLogSize {
			delete(l.m, l.order[l.head])
			l.head++
			if l.head > epochLogSize {
				l.order = append([]LSN(nil), l.order[l.head:]...)
				l.head = 0
			}
		}
		l.order = append(l.order, n)
	}
	l.m[n] = e
}

func (l *epochLog) get(n LSN) (Epoch, bool) {
	if n == 0 {
		return 0, true
	}
	e, ok := l.m[n]
	return e, ok
}

// reset forgets everything and remembers only (n, e).
func (l *epochLog) reset(n LSN, e Epoch) {
	l.m = map[LSN]Epoch{}
	l.order = l.order[:0]
	l.head = 0
	if n > 0 {
		l.set(n, e)
	}
}

// list returns the remembered pairs oldest first (for snapshots).
func (l *epochLog) list() []DedupRec {
	out := make([]DedupRec, 0, len(l.order)-l.head)
	for _, n := range l.order[l.head:] {
		out = append(out, DedupRec{Req: uint64(l.m[n]), LSN: n})
	}
	return out
}
