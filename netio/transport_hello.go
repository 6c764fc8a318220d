package netio

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cairnstore/cairn/core"
)

// Hello: the first frame on every connection, in both directions, names its sender.
//
//	"HELO" | addr uint32 BE | nonce uint64 BE (random per connection, for logs)
const (
	helloMagic = "HELO"
	helloLen   = 16
)

func helloPayload(self core.Addr, nonce uint64) []byte {
	b := make([]byte, helloLen)
	copy(b, helloMagic)
	binary.BigEndian.PutUint32(b[4:], uint32(self))
	binary.BigEndian.PutUint64(b[8:], nonce)
	return b
}

func parseHello(p []byte) (core.Addr, uint64, error) {
	if len(p) != helloLen || string(p[:4]) != helloMagic {
		return 0, 0, fmt.Errorf("%w: bad hello (%d bytes)", ErrFrame, len(p))
	}
	return core.Addr(binary.BigEndian.Uint32(p[4:])), binary.BigEndian.Uint64(p[8:]), nil
}

// handshake sends our hello and reads the remote's, all within the dial timeout.
func (t *Transport) handshake(c *conn) error {
	deadline := time.Now().Add(t.cfg.DialTimeout)
	c.nc.SetDeadline(deadline)
	if _, err := c.nc.Write(appendFrame(nil, helloPayload(t.cfg.Self, rand.Uint64()))); err != nil {
		return err
	}
	// Refuse an oversize first frame before reading it: a hello is tiny.
	if h, err := c.br.Peek(frameHeader); err == nil && string(h[:4]) == frameMagic {
		if n := binary.BigEndian.Uint32(h[4:]); n != helloLen {
			return fmt.Errorf("%w: first frame has %d bytes, a hello %d", ErrFrame, n, helloLen)
		}
	}
	p, err := ReadFrame(c.br, nil)
	if err != nil {
		return err
	}
	if c.peer, c.nonce, err = parseHello(p); err != nil {
		return err
	}
	if c.peer == t.cfg.Self {
		return fmt.Errorf("%w: hello from our own address %d", ErrFrame, c.peer)
	}
	c.nc.SetDeadline(time.Time{})
	return nil
}
