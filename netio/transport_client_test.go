package netio

import (
	"testing"
	"time"

	"github.com/cairnstore/cairn/core"
)

const clientAddr core.Addr = 100

// echoNode starts a node that answers every ClientWrite with a ClientReply to its
// sender (which it knows only by the connection the sender opened).
func echoNode(t *testing.T, c TransportConfig) *Transport {
	t.Helper()
	var node *Transport
	ready := make(chan struct{})
	node = startTransport(t, c, func(from core.Addr, m core.Message, _ bool) {
		<-ready
		if w, ok := m.(*core.ClientWrite); ok {
			node.Send(from, &core.ClientReply{Vol: w.Vol, Client: w.Client, Req: w.Req, Status: core.StatusOK})
		}
	})
	close(ready)
	return node
}

// A client without a listener reaches a node, and the node's replies come back over the
// client's own connection; a reconnecting client gets replies on its newest connection.
func TestTransportClientReplies(t *testing.T) {
	node := echoNode(t, fastConfig(nodeA, "127.0.0.1:0", nil))
	peers := map[core.Addr]string{nodeA: node.Addr().String()}

	for round := range 2 {
		var got sink
		cl, err := NewTransport(fastConfig(clientAddr, "", peers), got.deliver)
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		if cl.Addr() != nil {
			t.Fatal("a client without Listen has a listener address")
		}
		const n = 50
		for i := range n {
			cl.Send(nodeA, &core.ClientWrite{Vol: 1, Client: 9, Req: uint64(i), Data: blockFor(i)})
		}
		replies := got.waitLen(t, n, 10*time.Second)
		for i, r := range replies {
			rep, ok := r.m.(*core.ClientReply)
			if r.from != nodeA || !ok || rep.Req != uint64(i) || rep.Status != core.StatusOK {
				t.Fatalf("round %d reply %d: from %d: %+v", round, i, r.from, r.m)
			}
		}
		cl.Close()
		if st := node.Stats(); st.Accepted != uint64(round+1) || st.DecodeErrors != 0 {
			t.Fatalf("round %d: node stats %+v", round, st)
		}
	}
	// Once the client is gone, replies to it have nowhere to go.
	eventually(t, 5*time.Second, "client connection closed", func() bool {
		before := node.Stats().Unroutable
		node.Send(clientAddr, &core.ClientReply{})
		return node.Stats().Unroutable == before+1
	})
}
