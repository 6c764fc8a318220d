package netio

import (
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"

	"github.com/cairnstore/cairn/core"
)

// rawConn dials addr with a plain TCP connection, closed at the end of the test.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// expectClosed reads c until the other side closes it, failing on a timeout.
func expectClosed(t *testing.T, c net.Conn, within time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	_, err := io.Copy(io.Discard, c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open after %v", within)
	}
}

// Hostile connections are closed and counted; the node keeps serving others.
func TestTransportHostilePeers(t *testing.T) {
	c := fastConfig(nodeA, "127.0.0.1:0", nil)
	c.DialTimeout = 300 * time.Millisecond
	node := echoNode(t, c)
	addr := node.Addr().String()
	hello := appendFrame(nil, helloPayload(555, 1))
	rng := rand.New(rand.NewPCG(1, 2))

	garbage := make([]byte, 64<<10)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	hugeHeader := appendFrame(nil, nil)
	binary.BigEndian.PutUint32(hugeHeader[4:], 0xffffffff)
	attacks := []struct {
		name string
		send []byte
	}{
		{"random bytes", garbage},
		{"huge length after hello", append(hello, hugeHeader...)},
		{"undecodable message after hello", append(hello, appendFrame(nil, []byte{core.WireVersion, 200, 3})...)},
		{"bad hello", appendFrame(nil, []byte("HELLO, I AM A NODE"))},
		{"first frame claiming MaxFrame bytes", func() []byte {
			h := appendFrame(nil, nil)
			binary.BigEndian.PutUint32(h[4:], MaxFrame)
			return h
		}()},
		{"hello claiming the node's address", appendFrame(nil, helloPayload(nodeA, 1))},
	}
	for i, a := range attacks {
		rc := rawConn(t, addr)
		if _, err := rc.Write(a.send); err != nil {
			t.Fatalf("%s: %v", a.name, err)
		}
		expectClosed(t, rc, 5*time.Second)
		eventually(t, 5*time.Second, a.name+" counted", func() bool { return node.Stats().DecodeErrors == uint64(i+1) })
	}
	// A connection that never says hello is closed after the dial timeout, uncounted.
	silent := rawConn(t, addr)
	expectClosed(t, silent, 5*time.Second)

	// A well-behaved client is still served.
	var got sink
	cl := startTransport(t, fastConfig(clientAddr, "", map[core.Addr]string{nodeA: addr}), got.deliver)
	cl.Send(nodeA, &core.ClientWrite{Vol: 1, Req: 7})
	if r := got.waitLen(t, 1, 5*time.Second); r[0].m.(*core.ClientReply).Req != 7 {
		t.Fatalf("reply %+v", r[0].m)
	}
	if st := node.Stats(); st.DecodeErrors != uint64(len(attacks)) || st.Received != 1 {
		t.Fatalf("node stats %+v", st)
	}
}

// Inbound connections beyond MaxInbound are refused and counted.
func TestTransportInboundLimit(t *testing.T) {
	c := fastConfig(nodeA, "127.0.0.1:0", nil)
	c.MaxInbound = 2
	node := startTransport(t, c, func(core.Addr, core.Message, bool) {})
	addr := node.Addr().String()
	held := []net.Conn{rawConn(t, addr), rawConn(t, addr)}
	for _, h := range held { // both are being served: the node sent its hello
		h.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := ReadFrame(h, nil); err != nil {
			t.Fatal(err)
		}
	}
	extra := rawConn(t, addr)
	expectClosed(t, extra, 5*time.Second)
	if st := node.Stats(); st.Rejected != 1 {
		t.Fatalf("stats %+v, want one rejected", st)
	}
	for _, h := range held {
		h.Close()
	}
	var got sink
	cl := startTransport(t, fastConfig(clientAddr, "", map[core.Addr]string{nodeA: addr}), got.deliver)
	cl.Send(nodeA, &core.Heartbeat{})
	eventually(t, 5*time.Second, "client accepted after the held connections closed",
		func() bool { return node.Stats().Received == 1 })
}

// A dialed endpoint that answers with another endpoint's hello is refused.
func TestTransportWrongPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write(appendFrame(nil, helloPayload(999, 1)))
			c.Close()
		}
	}()
	a := startTransport(t, fastConfig(nodeA, "", map[core.Addr]string{nodeB: ln.Addr().String()}),
		func(core.Addr, core.Message, bool) {})
	a.Send(nodeB, &core.Heartbeat{})
	eventually(t, 5*time.Second, "wrong hello refused", func() bool {
		st := a.Stats()
		return st.DialErrors >= 2 && st.DecodeErrors >= 2
	})
	if st := a.Stats(); st.Sent != 0 {
		t.Fatalf("sent to the wrong endpoint: %+v", st)
	}
}
