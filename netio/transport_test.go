package netio

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/core"
)

const nodeA, nodeB core.Addr = 1, 2

// Two nodes exchange 10,000 messages each way, delivered complete and in order.
func TestTransportExchange(t *testing.T) {
	const n = 10_000
	addrA, addrB := freeAddr(t), freeAddr(t)
	peers := map[core.Addr]string{nodeA: addrA, nodeB: addrB}
	var sa, sb sink
	ca, cb := fastConfig(nodeA, addrA, peers), fastConfig(nodeB, addrB, peers)
	ca.QueueLimit, cb.QueueLimit = n, n
	a := startTransport(t, ca, sa.deliver)
	b := startTransport(t, cb, sb.deliver)

	var wg sync.WaitGroup
	for _, x := range []struct {
		tr *Transport
		to core.Addr
	}{{a, nodeB}, {b, nodeA}} {
		wg.Go(func() {
			for i := range n {
				x.tr.Send(x.to, testMsg(i))
			}
		})
	}
	wg.Wait()
	for _, x := range []struct {
		s    *sink
		from core.Addr
	}{{&sb, nodeA}, {&sa, nodeB}} {
		seqs := checkStream(t, x.s.waitLen(t, n, 30*time.Second), x.from)
		if len(seqs) != n || seqs[0] != 0 || seqs[n-1] != n-1 {
			t.Fatalf("from %d: %d messages, %d..%d; want all %d", x.from, len(seqs), seqs[0], seqs[len(seqs)-1], n)
		}
	}
	for _, tr := range []*Transport{a, b} {
		eventually(t, 5*time.Second, "sent counted", func() bool { return tr.Stats().Sent == n })
		st := tr.Stats()
		if st.Received != n || st.Dropped != 0 || st.Lost != 0 || st.DecodeErrors != 0 {
			t.Errorf("stats %+v", st)
		}
	}
}

// Messages to a peer that is down queue up to the limit, the rest are dropped, and
// the queued ones arrive once the peer comes up.
func TestTransportPeerDown(t *testing.T) {
	const limit, n = 100, 250
	addrB := freeAddr(t)
	ca := fastConfig(nodeA, "", map[core.Addr]string{nodeB: addrB})
	ca.QueueLimit = limit
	a := startTransport(t, ca, func(core.Addr, core.Message, bool) {})

	start := time.Now()
	for i := range n {
		a.Send(nodeB, testMsg(i))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("%d sends to a down peer took %v", n, d)
	}
	if st := a.Stats(); st.Dropped != n-limit {
		t.Fatalf("dropped %d, want %d", st.Dropped, n-limit)
	}
	// Redials back off: 10 ms doubling to 100 ms, jittered, is at most ~15 tries in 500 ms.
	time.Sleep(500 * time.Millisecond)
	if st := a.Stats(); st.DialErrors < 3 || st.DialErrors > 20 {
		t.Fatalf("%d dial attempts in 500 ms", st.DialErrors)
	}

	var sb sink
	startTransport(t, fastConfig(nodeB, addrB, nil), sb.deliver)
	seqs := checkStream(t, sb.waitLen(t, limit, 10*time.Second), nodeA)
	if len(seqs) != limit || seqs[0] != 0 || seqs[limit-1] != limit-1 {
		t.Fatalf("got %d messages %v..., want 0..%d", len(seqs), seqs[:min(5, len(seqs))], limit-1)
	}
	eventually(t, 5*time.Second, "sent counted", func() bool { return a.Stats().Sent == limit })
}

// The receiver restarts mid-stream: the sender reconnects and delivery resumes.
func TestTransportReconnect(t *testing.T) {
	addrB := freeAddr(t)
	a := startTransport(t, fastConfig(nodeA, "", map[core.Addr]string{nodeB: addrB}), func(core.Addr, core.Message, bool) {})
	var s1, s2 sink
	b1 := startTransport(t, fastConfig(nodeB, addrB, nil), s1.deliver)

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			a.Send(nodeB, testMsg(i))
			time.Sleep(200 * time.Microsecond)
		}
	})
	defer func() { stop(); wg.Wait() }()

	s1.waitLen(t, 200, 10*time.Second)
	b1.Close()
	first := checkStream(t, s1.all(), nodeA)
	startTransport(t, fastConfig(nodeB, addrB, nil), s2.deliver)
	second := checkStream(t, s2.waitLen(t, 200, 10*time.Second), nodeA)
	if second[0] <= first[len(first)-1] {
		t.Fatalf("after the restart, message %d arrived; before it, up to %d", second[0], first[len(first)-1])
	}
	if st := a.Stats(); st.Reconnects < 1 {
		t.Fatalf("stats %+v: no reconnect counted", st)
	}
}

// An idle connection survives several idle timeouts thanks to keepalives.
func TestTransportKeepalive(t *testing.T) {
	addrB := freeAddr(t)
	ca, cb := fastConfig(nodeA, "", map[core.Addr]string{nodeB: addrB}), fastConfig(nodeB, addrB, nil)
	ca.IdleTimeout, cb.IdleTimeout = 150*time.Millisecond, 150*time.Millisecond
	a := startTransport(t, ca, func(core.Addr, core.Message, bool) {})
	var sb sink
	b := startTransport(t, cb, sb.deliver)
	a.Send(nodeB, testMsg(0))
	sb.waitLen(t, 1, 5*time.Second)
	time.Sleep(600 * time.Millisecond)
	a.Send(nodeB, testMsg(1))
	checkStream(t, sb.waitLen(t, 2, 5*time.Second), nodeA)
	if sa, sb := a.Stats(), b.Stats(); sa.Reconnects != 0 || sa.DialErrors != 0 || sb.Accepted != 1 {
		t.Fatalf("idle connection was replaced: sender %+v, receiver %+v", sa, sb)
	}
}

func TestTransportLifecycle(t *testing.T) {
	if _, err := NewTransport(TransportConfig{Self: 1}, nil); err == nil {
		t.Error("nil deliver accepted")
	}
	for _, c := range []TransportConfig{
		{Self: 1, BackoffMin: time.Second, BackoffMax: time.Millisecond},
		{Self: 1, Peers: map[core.Addr]string{2: "no port"}},
		{Self: 1, QueueLimit: -1},
	} {
		if _, err := NewTransport(c, func(core.Addr, core.Message, bool) {}); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
	// Close before Start, twice; Start after Close fails; Send after Close drops.
	tr, err := NewTransport(TransportConfig{Self: 1, Peers: map[core.Addr]string{2: "127.0.0.1:1"}},
		func(core.Addr, core.Message, bool) {})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := tr.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if tr.Start(context.Background()) == nil {
		t.Fatal("Start after Close succeeded")
	}
	tr.Send(2, testMsg(0))
	tr.Send(3, testMsg(0))
	if st := tr.Stats(); st.Dropped != 1 || st.Unroutable != 1 {
		t.Fatalf("stats %+v, want one dropped and one unroutable", st)
	}
	// A started transport stops when its context is cancelled, and Close still works.
	ctx, cancel := context.WithCancel(context.Background())
	tr2, err := NewTransport(TransportConfig{Self: 1, Listen: "127.0.0.1:0"}, func(core.Addr, core.Message, bool) {})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if tr2.Addr() == nil {
		t.Fatal("no listener address")
	}
	cancel()
	tr2.Close()
	tr2.Close()
}

func TestBackoff(t *testing.T) {
	tr, err := NewTransport(TransportConfig{Self: 1, BackoffMin: 10 * time.Millisecond, BackoffMax: 70 * time.Millisecond},
		func(core.Addr, core.Message, bool) {})
	if err != nil {
		t.Fatal(err)
	}
	var got []time.Duration
	for d := time.Duration(0); len(got) < 6; {
		d = tr.nextBackoff(d)
		got = append(got, d)
		for range 100 {
			if j := jitter(d); j < d/2 || j >= d {
				t.Fatalf("jitter(%v) = %v, outside [d/2, d)", d, j)
			}
		}
	}
	want := []time.Duration{10, 20, 40, 70, 70, 70}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("backoff sequence %v, want %v ms", got, want)
		}
	}
}

// A peer that comes back and connects to us is dialled at once, not after our redial
// backoff: with a 20 s backoff, A's message to B arrives soon after B starts and sends to A.
func TestRedialSkipsBackoffWhenPeerConnects(t *testing.T) {
	addrA, addrB := freeAddr(t), freeAddr(t)
	var atA, atB sink
	ca := fastConfig(1, addrA, map[core.Addr]string{2: addrB})
	ca.BackoffMin, ca.BackoffMax = 20*time.Second, 20*time.Second
	a := startTransport(t, ca, atA.deliver)
	a.Send(2, testMsg(0)) // B is down: the dial fails and A backs off for 10-20 s
	eventually(t, 5*time.Second, "a failed dial", func() bool { return a.stats.dialErrors.Load() > 0 })
	b := startTransport(t, fastConfig(2, addrB, map[core.Addr]string{1: addrA}), atB.deliver)
	b.Send(1, testMsg(1))
	atA.waitLen(t, 1, 5*time.Second)
	atB.waitLen(t, 1, 5*time.Second) // well before A's backoff ends
}

// A receiver that stops reading fills the sender's socket: the sender's own
// non-blocking writes then leave partial frames to the connection's writer, and once the
// receiver reads again every message arrives whole and in order, none lost.
func TestTransportStalledReceiver(t *testing.T) {
	const n = 3000 // about 12 MiB of 4 KiB writes: more than loopback's socket buffers
	addrB := freeAddr(t)
	ca := fastConfig(nodeA, "", map[core.Addr]string{nodeB: addrB})
	ca.QueueLimit, ca.QueueBytes = n, 64<<20
	ca.WriteTimeout = 30 * time.Second
	release := make(chan struct{})
	var sb sink
	var once sync.Once
	startTransport(t, fastConfig(nodeB, addrB, nil), func(from core.Addr, m core.Message, more bool) {
		once.Do(func() { <-release }) // the first message stalls the reader
		sb.deliver(from, m, more)
	})
	a := startTransport(t, ca, func(core.Addr, core.Message, bool) {})
	a.Send(nodeB, testMsg(0))
	eventually(t, 5*time.Second, "connected", func() bool { return a.Stats().Sent == 1 })
	for i := 1; i < n; i++ {
		a.Send(nodeB, testMsg(i))
	}
	eventually(t, 10*time.Second, "a short write", func() bool { return a.Stats().ShortWrites > 0 })
	close(release)
	seqs := checkStream(t, sb.waitLen(t, n, 30*time.Second), nodeA)
	if len(seqs) != n || seqs[n-1] != n-1 {
		t.Fatalf("%d messages, last %d; want %d", len(seqs), seqs[len(seqs)-1], n)
	}
	eventually(t, 5*time.Second, "sent counted", func() bool { return a.Stats().Sent == n })
	if st := a.Stats(); st.Dropped != 0 || st.Lost != 0 {
		t.Fatalf("stats %+v", st)
	}
}
