package netio

import "sync/atomic"

// TransportStats counts a transport's traffic and troubles since NewTransport.
type TransportStats struct {
	Sent       uint64 // messages written and flushed to a connection
	Received   uint64 // messages decoded and delivered
	Dropped    uint64 // messages Send refused: queue full, too large, or transport closed
	Lost       uint64 // messages dequeued but not flushed because their connection failed
	Unroutable uint64 // messages to an endpoint with no address and no inbound connection
	// DecodeErrors counts connections closed for a bad frame, hello or message.
	DecodeErrors uint64
	DialErrors   uint64 // failed outbound connection attempts (dial or hello)
	Reconnects   uint64 // outbound connections made to a peer after its first
	Accepted     uint64 // inbound connections that completed the hello
	Rejected     uint64 // inbound connections refused at the MaxInbound limit
	// ShortWrites counts a sender's non-blocking writes that the socket took only part
	// of (its buffer was full), leaving the rest to the connection's writer.
	ShortWrites uint64
}

type transportCounters struct {
	sent, received, dropped, lost, unroutable atomic.Uint64
	decodeErrors, dialErrors, reconnects      atomic.Uint64
	accepted, rejected, shortWrites           atomic.Uint64
}

// Stats returns a snapshot of the counters (each read atomically, not all at once).
func (t *Transport) Stats() TransportStats {
	c := &t.stats
	return TransportStats{
		Sent: c.sent.Load(), Received: c.received.Load(), Dropped: c.dropped.Load(),
		Lost: c.lost.Load(), Unroutable: c.unroutable.Load(),
		DecodeErrors: c.decodeErrors.Load(), DialErrors: c.dialErrors.Load(),
		Reconnects: c.reconnects.Load(), Accepted: c.accepted.Load(), Rejected: c.rejected.Load(),
		ShortWrites: c.shortWrites.Load(),
	}
}
