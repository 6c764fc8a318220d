package netio

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/cairnstore/cairn/core"
)

// TransportConfig configures a Transport. Zero durations and limits take the defaults.
type TransportConfig struct {
	Self   core.Addr
	Listen string // e.g. "127.0.0.1:7001"; "" = no listener (clients)
	// Peers is the address book: messages to these endpoints go over one outbound
	// connection each. Self, if present, is ignored. Endpoints not in Peers (clients) may
	// still connect; they are answered on their most recent inbound connection.
	Peers map[core.Addr]string

	// QueueLimit and QueueBytes bound the messages buffered per peer (and per inbound
	// connection) while connecting or slow; beyond them Send drops the message and counts
	// it (the protocol retransmits). A message over QueueBytes is always dropped.
	QueueLimit int   // default 4096
	QueueBytes int64 // default 64 MiB
	MaxInbound int   // inbound connections at once (default 1024)

	DialTimeout  time.Duration // dial plus hello exchange, both directions (default 3 s)
	WriteTimeout time.Duration // one frame write (default 10 s)
	// IdleTimeout closes a connection that received nothing (not even a keepalive, sent
	// every IdleTimeout/3 by an idle writer) for this long (default 30 s).
	IdleTimeout time.Duration
	BackoffMin  time.Duration // first redial delay, doubled per failure (default 50 ms)
	BackoffMax  time.Duration // (default 2 s); each delay is jittered to [d/2, d)

	Log *slog.Logger // default: discard
}

func (c *TransportConfig) setDefaults() error {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.DialTimeout, 3*time.Second)
	def(&c.WriteTimeout, 10*time.Second)
	def(&c.IdleTimeout, 30*time.Second)
	def(&c.BackoffMin, 50*time.Millisecond)
	def(&c.BackoffMax, 2*time.Second)
	if c.QueueLimit == 0 {
		c.QueueLimit = 4096
	}
	if c.QueueBytes == 0 {
		c.QueueBytes = 64 << 20
	}
	if c.MaxInbound == 0 {
		c.MaxInbound = 1024
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.QueueLimit < 0 || c.QueueBytes < 0 || c.MaxInbound < 0:
		return errors.New("netio: negative queue or connection limit")
	case c.DialTimeout < 0 || c.WriteTimeout < 0 || c.IdleTimeout < 0 || c.BackoffMin < 0:
		return errors.New("netio: negative timeout")
	case c.BackoffMax < c.BackoffMin:
		return fmt.Errorf("netio: BackoffMax %v < BackoffMin %v", c.BackoffMax, c.BackoffMin)
	}
	for a, hp := range c.Peers {
		if _, _, err := net.SplitHostPort(hp); err != nil && a != c.Self {
			return fmt.Errorf("netio: peer %d: %w", a, err)
		}
	}
	return nil
}
