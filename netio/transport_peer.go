package netio

import (
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/cairnstore/cairn/core"
)

// peer is an endpoint in the address book: one outbound connection, one queue that
// outlives the connection.
type peer struct {
	addr     core.Addr
	hostport string
	q        *sendQueue
	// back holds a token when the peer connected to us: it is up again, so a redial
	// waiting out its backoff dials at once (a restarted node's peers would otherwise
	// answer it only after up to BackoffMax, long enough for a primary to shrink them).
	back chan struct{}
}

// runPeer keeps a connection to p while it has messages: it dials when the queue is
// non-empty, redials with jittered exponential backoff, and writes the queue out.
func (t *Transport) runPeer(p *peer) {
	var backoff time.Duration // 0: dial at once
	connected := false
	for {
		if p.q.len() == 0 {
			select {
			case <-t.ctx.Done():
				return
			case <-p.q.ready:
			}
			continue
		}
		if backoff > 0 && !t.sleepOrBack(jitter(backoff), p) {
			return
		}
		c, err := t.dial(p)
		if err != nil {
			if t.ctx.Err() != nil {
				return
			}
			t.stats.dialErrors.Add(1)
			t.log.Debug("dial failed", "peer", p.addr, "at", p.hostport, "err", err)
			backoff = t.nextBackoff(backoff)
			continue
		}
		if connected {
			t.stats.reconnects.Add(1)
		}
		connected = true
		t.log.Debug("connected", "peer", p.addr, "at", p.hostport, "nonce", c.nonce)
		start := time.Now()
		t.spawn(func() { t.readLoop(c, nil) })
		p.q.signal() // runPeer may have taken the wake-up meant for the writer
		t.pump(c, p.q)
		c.fail(net.ErrClosed)
		t.untrack(c)
		t.log.Debug("disconnected", "peer", p.addr, "err", c.err)
		if time.Since(start) >= t.cfg.BackoffMax {
			backoff = 0
		}
		backoff = t.nextBackoff(backoff)
	}
}

// dial connects to p and exchanges hellos; the connection is tracked on success.
func (t *Transport) dial(p *peer) (*conn, error) {
	d := net.Dialer{Timeout: t.cfg.DialTimeout}
	nc, err := d.DialContext(t.ctx, "tcp", p.hostport)
	if err != nil {
		return nil, err
	}
	c := newConn(nc)
	if !t.track(c) {
		return nil, net.ErrClosed
	}
	err = t.handshake(c)
	if err == nil && c.peer != p.addr {
		err = fmt.Errorf("%w: %s answered as endpoint %d, want %d", ErrFrame, p.hostport, c.peer, p.addr)
	}
	if err != nil {
		if isProtocolError(err) {
			t.stats.decodeErrors.Add(1)
			t.log.Warn("bad hello from peer", "peer", p.addr, "err", err)
		}
		c.fail(err)
		t.untrack(c)
		return nil, err
	}
	return c, nil
}

// nextBackoff doubles d within [BackoffMin, BackoffMax].
func (t *Transport) nextBackoff(d time.Duration) time.Duration {
	if d <= 0 {
		return t.cfg.BackoffMin
	}
	return min(2*d, t.cfg.BackoffMax)
}

// jitter spreads d over [d/2, d) so that peers do not redial in lockstep.
func jitter(d time.Duration) time.Duration {
	if d < 2 {
		return d
	}
	return d/2 + rand.N(d/2)
}

// sleepOrBack waits d, or less if p connects to us meanwhile; false when the transport stops.
func (t *Transport) sleepOrBack(d time.Duration, p *peer) bool { return t.wait(d, p.back) }

// sleep waits d, or reports false if the transport stops first.
func (t *Transport) sleep(d time.Duration) bool { return t.wait(d, nil) }

// wait waits d or until wake fires (a nil wake never does); false when the transport stops.
func (t *Transport) wait(d time.Duration, wake <-chan struct{}) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-t.ctx.Done():
		return false
	case <-tm.C:
	case <-wake:
	}
	return true
}
