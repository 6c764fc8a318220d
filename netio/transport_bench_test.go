package netio

import (
	"context"
	"testing"

	"github.com/cairnstore/cairn/core"
)

// BenchmarkTransport4KiB sends 4 KiB ClientWrites from one transport to another over
// loopback, with at most window messages in flight (so none is dropped), and reports
// messages/s; MB/s counts block data.
func BenchmarkTransport4KiB(b *testing.B) {
	const window = 1024
	tokens := make(chan struct{}, window)
	rb := benchTransport(b, TransportConfig{Self: nodeB, Listen: "127.0.0.1:0"}, func(core.Addr, core.Message, bool) { <-tokens })
	ra := benchTransport(b, TransportConfig{Self: nodeA, Peers: map[core.Addr]string{nodeB: rb.Addr().String()}},
		func(core.Addr, core.Message, bool) {})
	m := &core.ClientWrite{Vol: 1, Client: 9, Data: blockFor(1)}
	b.SetBytes(core.BlockSize)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		tokens <- struct{}{}
		m.Req = uint64(i)
		ra.Send(nodeB, m)
	}
	for range window { // wait for the last messages to be delivered
		tokens <- struct{}{}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if st := ra.Stats(); st.Dropped != 0 {
		b.Fatalf("dropped %d", st.Dropped)
	}
}

func benchTransport(b *testing.B, c TransportConfig, deliver func(core.Addr, core.Message, bool)) *Transport {
	tr, err := NewTransport(c, deliver)
	if err != nil {
		b.Fatal(err)
	}
	if err := tr.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tr.Close() })
	return tr
}
