// Package netio carries core.Message values between Cairn endpoints over TCP.
//
// The wire unit is a frame (see WriteFrame and ReadFrame): a magic, a length, a
// CRC-32C of the payload, and the payload, which is core.Encode output. Transport
// builds on frames: one outbound connection per known peer with a bounded send queue,
// a reader per connection that decodes and delivers messages, and replies to unknown
// endpoints (clients) over the connection they opened.
//
// Transport does not authenticate endpoints: a connection's first frame names its
// sender and is believed. Run it on a trusted network.
package netio
