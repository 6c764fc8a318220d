package netio

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/core"
)

// received is one delivered message.
type received struct {
	from core.Addr
	m    core.Message
}

// sink collects delivered messages (deliver must not block, so it only appends).
type sink struct {
	mu  sync.Mutex
	got []received
}

func (s *sink) deliver(from core.Addr, m core.Message, _ bool) {
	s.mu.Lock()
	s.got = append(s.got, received{from, m})
	s.mu.Unlock()
}

func (s *sink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

func (s *sink) all() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.got...)
}

// waitLen waits until s holds at least n messages.
func (s *sink) waitLen(t *testing.T, n int, timeout time.Duration) []received {
	t.Helper()
	eventually(t, timeout, fmt.Sprintf("%d messages delivered", n), func() bool { return s.len() >= n })
	return s.all()
}

// eventually polls cond every few milliseconds until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// freeAddr returns a loopback address nothing listens on (a port the kernel just gave out).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// fastConfig is a config with test-sized timeouts.
func fastConfig(self core.Addr, listen string, peers map[core.Addr]string) TransportConfig {
	return TransportConfig{Self: self, Listen: listen, Peers: peers,
		DialTimeout: 2 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond}
}

// startTransport builds and starts a transport closed at the end of the test.
func startTransport(t *testing.T, c TransportConfig, deliver func(core.Addr, core.Message, bool)) *Transport {
	t.Helper()
	tr, err := NewTransport(c, deliver)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// testMsg is the i'th message of a test stream: heartbeats and 4 KiB client writes,
// each carrying i.
func testMsg(i int) core.Message {
	if i%2 == 0 {
		return &core.Heartbeat{Vol: 1, SentAt: int64(i), Commit: core.LSN(i), Credits: -1}
	}
	return &core.ClientWrite{Vol: 1, Client: 9, Req: uint64(i), Block: uint64(i), Data: blockFor(i)}
}

func blockFor(i int) []byte {
	b := make([]byte, core.BlockSize)
	for j := range b {
		b[j] = byte(i + j*13)
	}
	return b
}

// seqOf returns the i a testMsg carries, checking the rest of its content.
func seqOf(t *testing.T, m core.Message) int {
	t.Helper()
	switch m := m.(type) {
	case *core.Heartbeat:
		if m.Vol != 1 || int64(m.Commit) != m.SentAt || m.Credits != -1 {
			t.Fatalf("corrupt heartbeat %+v", m)
		}
		return int(m.SentAt)
	case *core.ClientWrite:
		if m.Vol != 1 || m.Client != 9 || m.Block != m.Req || !bytes.Equal(m.Data, blockFor(int(m.Req))) {
			t.Fatalf("corrupt client write req %d", m.Req)
		}
		return int(m.Req)
	}
	t.Fatalf("unexpected message %T", m)
	return 0
}

// checkStream checks that msgs all come from want and carry strictly increasing
// sequence numbers (gaps allowed), and returns them.
func checkStream(t *testing.T, msgs []received, want core.Addr) []int {
	t.Helper()
	seqs := make([]int, len(msgs))
	for i, r := range msgs {
		if r.from != want {
			t.Fatalf("message %d from %d, want %d", i, r.from, want)
		}
		seqs[i] = seqOf(t, r.m)
		if i > 0 && seqs[i] <= seqs[i-1] {
			t.Fatalf("message %d carries %d after %d: out of order", i, seqs[i], seqs[i-1])
		}
	}
	return seqs
}
