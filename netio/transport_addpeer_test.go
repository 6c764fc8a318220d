package netio

import (
	"testing"
	"time"

	"github.com/cairnstore/cairn/core"
)

// A node that joined the running cluster is added to a started transport's address book:
// messages to it, unroutable before, are delivered after; a bad address or a known peer is
// refused or kept as it was.
func TestTransportAddPeer(t *testing.T) {
	aAddr, bAddr := freeAddr(t), freeAddr(t)
	var sa, sb sink
	a := startTransport(t, fastConfig(1, aAddr, nil), sa.deliver)
	startTransport(t, fastConfig(2, bAddr, map[core.Addr]string{1: aAddr}), sb.deliver)
	a.Send(2, testMsg(0))
	time.Sleep(50 * time.Millisecond)
	if sb.len() != 0 {
		t.Fatal("a message to an unknown node was delivered")
	}
	if err := a.AddPeer(2, "not an address"); err == nil {
		t.Fatal("a bad address was accepted")
	}
	if err := a.AddPeer(2, bAddr); err != nil {
		t.Fatal(err)
	}
	if err := a.AddPeer(2, "127.0.0.1:1"); err != nil || a.peer(2).hostport != bAddr {
		t.Fatalf("a known peer's address changed (%v)", err)
	}
	for i := 1; i <= 3; i++ {
		a.Send(2, testMsg(i))
	}
	got := sb.waitLen(t, 3, 5*time.Second)
	if seqs := checkStream(t, got, 1); len(seqs) != 3 || seqs[0] != 1 {
		t.Fatalf("delivered %v", seqs)
	}
}
