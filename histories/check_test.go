package histories

import (
	"errors"
	"testing"
	"time"
)

// w and r build known single- or multi-block ops on volume 1.
func w(client uint64, block uint64, call, ret int64, values ...uint64) Op {
	return Op{Client: client, Volume: 1, Kind: Write, Block: block, Count: uint32(len(values)),
		Values: values, Call: call, Return: ret}
}

func r(client uint64, block uint64, call, ret int64, values ...uint64) Op {
	return Op{Client: client, Volume: 1, Kind: Read, Block: block, Count: uint32(len(values)),
		Values: values, Call: call, Return: ret}
}

func unknown(op Op) Op {
	op.Unknown = true
	op.Return = 0 // ignored
	return op
}

func onVolume(v uint32, op Op) Op {
	op.Volume = v
	return op
}

func history(ops ...Op) *History {
	h := &History{}
	for _, op := range ops {
		h.Add(op)
	}
	return h
}

func TestCheckHandWritten(t *testing.T) {
	tests := []struct {
		name     string
		ops      []Op
		ok       bool
		badBlock uint64
	}{
		{"read unwritten block is 0", []Op{r(1, 7, 0, 10, 0)}, true, 0},
		{"read own write", []Op{w(1, 0, 0, 10, 5), r(1, 0, 20, 30, 5)}, true, 0},
		{"read other client's write", []Op{w(1, 0, 0, 10, 5), r(2, 0, 20, 30, 5)}, true, 0},
		{"read 0 after acknowledged write", []Op{w(1, 0, 0, 10, 5), r(2, 0, 20, 30, 0)}, false, 0},
		{"stale read after acknowledged write", []Op{
			w(1, 0, 0, 10, 1), w(1, 0, 20, 30, 2), r(2, 0, 40, 50, 1),
		}, false, 0},
		{"concurrent read sees old", []Op{
			w(1, 0, 0, 10, 1), w(1, 0, 20, 30, 2), r(2, 0, 25, 35, 1),
		}, true, 0},
		{"concurrent read sees new", []Op{
			w(1, 0, 0, 10, 1), w(1, 0, 20, 30, 2), r(2, 0, 15, 25, 2),
		}, true, 0},
		{"closed intervals: touching ops are concurrent", []Op{
			w(1, 0, 0, 10, 1), w(1, 0, 20, 30, 2), r(2, 0, 30, 40, 1),
		}, true, 0},
		{"new then old across readers", []Op{
			w(1, 0, 0, 10, 1), w(1, 0, 20, 60, 2), r(2, 0, 25, 30, 2), r(3, 0, 40, 50, 1),
		}, false, 0},
		{"read of value never written", []Op{r(1, 3, 0, 10, 7)}, false, 3},
		{"read of value never written with writes", []Op{
			w(1, 3, 0, 100, 1), w(2, 3, 0, 100, 2), r(3, 3, 0, 100, 7),
		}, false, 3},
		{"read of value written to another block", []Op{w(1, 2, 0, 10, 9), r(2, 3, 20, 30, 9)}, false, 3},
		{"multi-block write seen half after ack", []Op{
			w(1, 0, 0, 10, 5, 6), r(2, 0, 20, 30, 5, 0),
		}, false, 1},
		{"multi-block write seen half while concurrent", []Op{
			w(1, 0, 0, 10, 5, 6), r(2, 0, 5, 15, 5, 0),
		}, true, 0},
		{"multi-block read across partitions", []Op{
			w(1, 4, 0, 10, 1, 2, 3), r(2, 5, 20, 30, 2, 3, 0),
		}, true, 0},
		{"unknown write took effect", []Op{
			w(1, 0, 0, 10, 1), unknown(w(1, 0, 20, 0, 2)), r(2, 0, 30, 40, 2), r(2, 0, 50, 60, 2),
		}, true, 0},
		{"unknown write took effect late", []Op{
			w(1, 0, 0, 10, 1), unknown(w(1, 0, 20, 0, 2)), r(2, 0, 30, 40, 1), r(2, 0, 1000, 1010, 2),
		}, true, 0},
		{"unknown write never took effect", []Op{
			w(1, 0, 0, 10, 1), unknown(w(1, 0, 20, 0, 2)), r(2, 0, 30, 40, 1), r(2, 0, 50, 60, 1),
		}, true, 0},
		{"unknown write cannot be undone", []Op{
			w(1, 0, 0, 10, 1), unknown(w(1, 0, 20, 0, 2)), r(2, 0, 30, 40, 2), r(2, 0, 50, 60, 1),
		}, false, 0},
		{"unknown write not seen before its call", []Op{
			w(1, 0, 0, 10, 1), r(2, 0, 12, 15, 2), unknown(w(1, 0, 20, 0, 2)),
		}, false, 0},
		{"unknown write half effect on multi-block", []Op{
			unknown(w(1, 0, 0, 0, 5, 6)), r(2, 0, 20, 30, 5, 0),
		}, true, 0},
		{"unknown read never constrains", []Op{
			w(1, 0, 0, 10, 1), unknown(r(2, 0, 20, 0, 99)), unknown(r(2, 0, 30, 0, Corrupt)),
			unknown(Op{Client: 3, Volume: 1, Kind: Read, Block: 0, Count: 4, Call: 40}),
		}, true, 0},
		{"unknown read only touches a block", []Op{unknown(r(2, 9, 20, 0, 99))}, true, 0},
		{"corrupt read of unwritten block", []Op{r(1, 0, 0, 10, Corrupt)}, false, 0},
		{"corrupt read during writes", []Op{
			w(1, 2, 0, 100, 1), w(2, 2, 0, 100, 2), r(3, 2, 0, 100, Corrupt),
		}, false, 2},
		{"lowest bad block reported", []Op{
			w(1, 0, 0, 10, 1, 1, 1, 1, 1, 1), r(2, 5, 20, 30, 0), r(2, 2, 20, 30, 0),
		}, false, 2},
		{"blocks are independent", []Op{
			w(1, 0, 0, 100, 1), w(1, 1, 0, 10, 2), r(2, 1, 20, 30, 2), r(2, 0, 20, 30, 0),
		}, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Check(history(tt.ops...), 10*time.Second)
			if len(res) != 1 {
				t.Fatalf("got %d results, want 1", len(res))
			}
			got := res[0]
			if got.Ok != tt.ok || got.TimedOut || got.Err != nil {
				t.Fatalf("got %v (ok=%v timedOut=%v err=%v), want ok=%v", got, got.Ok, got.TimedOut, got.Err, tt.ok)
			}
			if !tt.ok && got.BadBlock != tt.badBlock {
				t.Errorf("BadBlock = %d, want %d", got.BadBlock, tt.badBlock)
			}
			if got.Linearizable() != tt.ok {
				t.Errorf("Linearizable() = %v, want %v", got.Linearizable(), tt.ok)
			}
		})
	}
}

func TestCheckVolumes(t *testing.T) {
	h := history(
		onVolume(9, w(1, 0, 0, 10, 1)),
		onVolume(2, r(2, 0, 20, 30, 0)), // block 0 of volume 2 is not block 0 of volume 9
		onVolume(9, r(2, 0, 20, 30, 1)),
		onVolume(5, r(1, 4, 0, 10, 3)), // never written
		onVolume(2, w(1, 1, 0, 10, 4, 5)),
	)
	res := Check(h, time.Second)
	want := []struct {
		volume     uint32
		ok         bool
		partitions int
	}{{2, true, 3}, {5, false, 1}, {9, true, 1}}
	if len(res) != len(want) {
		t.Fatalf("got %d results, want %d", len(res), len(want))
	}
	for i, wr := range want {
		if res[i].Volume != wr.volume || res[i].Ok != wr.ok || res[i].Partitions != wr.partitions {
			t.Errorf("result %d = %+v, want volume %d ok %v partitions %d", i, res[i], wr.volume, wr.ok, wr.partitions)
		}
	}
	if res[1].BadBlock != 4 {
		t.Errorf("volume 5 BadBlock = %d, want 4", res[1].BadBlock)
	}
	if got := Check(&History{}, time.Second); len(got) != 0 {
		t.Errorf("empty history: got %v", got)
	}
	if got := Check(nil, time.Second); len(got) != 0 {
		t.Errorf("nil history: got %v", got)
	}
}

func TestCheckMalformed(t *testing.T) {
	tests := []struct {
		name string
		op   Op
	}{
		{"bad kind", Op{Volume: 1, Kind: 7, Block: 3, Count: 1, Values: []uint64{1}}},
		{"too few values", Op{Volume: 1, Kind: Write, Block: 3, Count: 2, Values: []uint64{1}}},
		{"unknown write too few values", unknown(Op{Volume: 1, Kind: Write, Block: 3, Count: 2, Values: []uint64{1}})},
		{"read too many values", Op{Volume: 1, Kind: Read, Block: 3, Count: 1, Values: []uint64{0, 0}}},
		{"return before call", Op{Volume: 1, Kind: Read, Block: 3, Count: 1, Values: []uint64{0}, Call: 5, Return: 4}},
		{"write corrupt", Op{Volume: 1, Kind: Write, Block: 3, Count: 1, Values: []uint64{Corrupt}}},
		{"block range overflows", Op{Volume: 1, Kind: Write, Block: ^uint64(0), Count: 2, Values: []uint64{1, 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := history(w(1, 0, 0, 10, 1), tt.op)
			if err := h.Validate(); !errors.Is(err, ErrMalformed) {
				t.Errorf("Validate() = %v, want ErrMalformed", err)
			}
			res := Check(h, time.Second)
			if len(res) != 1 || res[0].Ok || !errors.Is(res[0].Err, ErrMalformed) {
				t.Fatalf("got %+v, want a malformed result", res)
			}
			if res[0].BadBlock != tt.op.Block {
				t.Errorf("BadBlock = %d, want %d", res[0].BadBlock, tt.op.Block)
			}
		})
	}
	if err := history(w(1, 0, 0, 10, 1), unknown(r(1, 0, 20, 0))).Validate(); err != nil {
		t.Errorf("unknown read without values: Validate() = %v", err)
	}
}

// hardHistory returns a non-linearizable partition that Porcupine can only
// refute by exhausting ~n·2^n states: n concurrent writes, then two
// concurrent reads that disagree.
func hardHistory(n int) *History {
	h := &History{}
	for i := range n {
		h.Add(w(uint64(i), 0, 0, 100, uint64(i+1)))
	}
	h.Add(r(100, 0, 200, 210, 1))
	h.Add(r(101, 0, 200, 210, 2))
	return h
}

func TestCheckTimeout(t *testing.T) {
	h := hardHistory(28)
	h.Add(r(1, 1, 0, 10, 0)) // an easy partition too
	start := time.Now()
	res := Check(h, 100*time.Millisecond)
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Check took %v with a 100ms timeout", el)
	}
	if len(res) != 1 {
		t.Fatalf("got %d results", len(res))
	}
	got := res[0]
	if !got.Ok || !got.TimedOut || got.Linearizable() || got.Undecided != 1 || got.Partitions != 2 {
		t.Errorf("got %+v, want Ok, TimedOut, 1 of 2 undecided", got)
	}
	// A proven violation elsewhere is still found after a timeout.
	h.Add(r(1, 2, 0, 10, 5))
	got = Check(h, 100*time.Millisecond)[0]
	if got.Ok || !got.TimedOut || got.BadBlock != 2 {
		t.Errorf("got %+v, want not Ok at block 2 and TimedOut", got)
	}
}

// fakeClock advances by step on every reading.
type fakeClock struct {
	t    time.Time
	step time.Duration
}

func (c *fakeClock) now() time.Time {
	c.t = c.t.Add(c.step)
	return c.t
}

func TestCheckBudgetSpent(t *testing.T) {
	// Three partitions needing a search; the clock moves 40ms per reading,
	// so a 100ms budget is spent before the third partition.
	h := history(
		w(1, 0, 0, 10, 1), r(2, 0, 5, 15, 1),
		w(1, 1, 0, 10, 1), r(2, 1, 5, 15, 1),
		w(1, 2, 0, 10, 1), r(2, 2, 5, 15, 1),
	)
	clk := &fakeClock{step: 40 * time.Millisecond}
	c := checker{timeout: 100 * time.Millisecond, now: clk.now}
	got := c.check(h)[0]
	if !got.Ok || !got.TimedOut || got.Undecided != 1 {
		t.Errorf("got %+v, want Ok, TimedOut with 1 undecided", got)
	}
	// Without a timeout the clock is irrelevant.
	c.timeout = 0
	if got := c.check(h)[0]; !got.Linearizable() {
		t.Errorf("no timeout: got %+v", got)
	}
}

func TestHistory(t *testing.T) {
	var h History
	vals := []uint64{1, 2}
	h.Add(w(1, 0, 0, 10, vals...))
	vals[0] = 99
	if h.Len() != 1 || h.Ops()[0].Values[0] != 1 {
		t.Fatalf("Add did not copy values: %v", h.Ops())
	}
	ops := h.Ops()
	ops[0].Block = 42
	if h.Ops()[0].Block != 0 {
		t.Error("Ops did not return a copy")
	}
	h.Add(r(2, 0, 20, 30, 1, 2))
	if h.Len() != 2 || h.Ops()[1].Kind != Read {
		t.Errorf("order not kept: %v", h.Ops())
	}
}

func TestModelStep(t *testing.T) {
	m := blockModel()
	s := m.Init()
	if ok, s2 := m.Step(s, blockCall{kind: Read}, blockReturn{value: 0}); !ok || s2 != s {
		t.Error("read 0 of initial state")
	}
	ok, s := m.Step(s, blockCall{kind: Write, value: 7}, blockReturn{unknown: true})
	if !ok || s.(uint64) != 7 {
		t.Error("write")
	}
	if ok, _ := m.Step(s, blockCall{kind: Read}, blockReturn{value: 6}); ok {
		t.Error("wrong read accepted")
	}
	if ok, s2 := m.Step(s, blockCall{kind: Read}, blockReturn{value: 6, unknown: true}); !ok || s2.(uint64) != 7 {
		t.Error("unknown read not accepted")
	}
	if ok, _ := m.Step(uint64(Corrupt), blockCall{kind: Read}, blockReturn{value: Corrupt}); ok {
		t.Error("Corrupt accepted")
	}
	if d := m.DescribeOperation(blockCall{kind: Write, block: 3, value: 7}, blockReturn{unknown: true}); d != "b3 write(7) -> ?" {
		t.Errorf("DescribeOperation = %q", d)
	}
}
