package raft

import (
	"testing"
)

// A lean in-memory driver for benchmarks: no checker, no hashing, a perfect
// network; it persists into slices, applies by counting and compacts every
// 1024 applied entries so that memory stays bounded.

type benchNode struct {
	r       *Raft
	ents    []Entry
	applied uint64
	reads   int
}

type benchCluster struct {
	nodes []*benchNode
	net   []Message
}

func newBenchCluster(b *testing.B, n int) (*benchCluster, *benchNode) {
	b.Helper()
	c := &benchCluster{}
	var peers []uint64
	for i := 1; i <= n; i++ {
		peers = append(peers, uint64(i))
	}
	for i := 1; i <= n; i++ {
		cfg := Config{ID: uint64(i), Peers: peers, ElectionTicks: 10, HeartbeatTicks: 2,
			MaxMsgEntries: 64, MaxInflight: 16, Rand: &testRand{uint64(i)}}
		r, err := New(cfg, State{})
		if err != nil {
			b.Fatal(err)
		}
		c.nodes = append(c.nodes, &benchNode{r: r})
	}
	c.stabilize(b)
	for t := 0; t < 100; t++ {
		c.nodes[0].r.Tick() // only member 1 times out
		c.stabilize(b)
		if c.nodes[0].r.role == Leader {
			return c, c.nodes[0]
		}
	}
	b.Fatal("no leader")
	return nil, nil
}

func (c *benchCluster) stabilize(b *testing.B) {
	for round := 0; round < 100; round++ {
		moved := false
		for _, n := range c.nodes {
			for k := 0; k < 4 && n.r.HasReady(); k++ {
				moved = true
				rd := n.r.Ready()
				if len(rd.Entries) > 0 {
					first := rd.Entries[0].Index
					base := n.r.log.snap.Index // compaction happened in memory and on "disk" together
					if k := int(first-base) - 1; k >= 0 && k <= len(n.ents) {
						n.ents = append(n.ents[:k], rd.Entries...)
					}
				}
				c.net = append(c.net, rd.Messages...)
				if len(rd.Committed) > 0 {
					n.applied = rd.Committed[len(rd.Committed)-1].Index
				}
				n.reads += len(rd.ReadStates)
				if err := n.r.Advance(rd); err != nil {
					b.Fatal(err)
				}
				if n.applied-n.r.log.snap.Index >= 1024 {
					drop := n.applied - n.r.log.snap.Index
					if err := n.r.Compact(n.applied, nil); err != nil {
						b.Fatal(err)
					}
					n.ents = append(n.ents[:0], n.ents[min(int(drop), len(n.ents)):]...)
				}
			}
		}
		if len(c.net) > 0 {
			moved = true
			msgs := c.net
			c.net = nil
			for _, m := range msgs {
				if err := c.nodes[m.To-1].r.Step(m); err != nil {
					b.Fatal(err)
				}
			}
		}
		if !moved {
			return
		}
	}
}

func benchPropose(b *testing.B, n, batch int) {
	c, l := newBenchCluster(b, n)
	data := make([]byte, 128)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var last uint64
		for k := 0; k < batch; k++ {
			idx, err := l.r.Propose(data)
			if err != nil {
				b.Fatal(err)
			}
			last = idx
		}
		c.stabilize(b)
		if l.applied < last {
			b.Fatalf("entry %d not applied (applied %d)", last, l.applied)
		}
	}
	if batch > 1 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/entry")
	}
}

// BenchmarkProposeCommit: one proposal, replicated, committed and applied on
// the leader per op (a full round trip through Ready/Step on every member).
func BenchmarkProposeCommit3(b *testing.B) { benchPropose(b, 3, 1) }
func BenchmarkProposeCommit5(b *testing.B) { benchPropose(b, 5, 1) }

// BenchmarkProposeBatch64x3: 64 proposals per round trip (an op is the batch).
func BenchmarkProposeBatch64x3(b *testing.B) { benchPropose(b, 3, 64) }

// BenchmarkReadIndex3: one read-index round (heartbeat quorum) per op.
func BenchmarkReadIndex3(b *testing.B) {
	c, l := newBenchCluster(b, 3)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := l.r.ReadIndex(uint64(i + 1)); err != nil {
			b.Fatal(err)
		}
		c.stabilize(b)
	}
	if l.reads != b.N {
		b.Fatalf("%d reads answered, want %d", l.reads, b.N)
	}
}
