package netio

import (
	"errors"
	"net"
	"time"

	"github.com/cairnstore/cairn/core"
)

// inbound is an accepted connection and the queue of messages to send back on it.
type inbound struct {
	c *conn
	q *sendQueue
}

// acceptLoop accepts connections up to MaxInbound at once and serves each.
func (t *Transport) acceptLoop() {
	var delay time.Duration
	for {
		nc, err := t.ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t.log.Warn("accept failed", "err", err, "retry", delay)
			if !t.sleep(delay) {
				return
			}
			continue
		}
		delay = 0
		if t.inbound.Add(1) > int64(t.cfg.MaxInbound) {
			t.inbound.Add(-1)
			t.stats.rejected.Add(1)
			nc.Close()
			continue
		}
		t.spawn(func() {
			defer t.inbound.Add(-1)
			t.serveInbound(nc)
		})
	}
}

// answerOn makes in the connection the client is answered on (it delivered a message
// last), unless in has already closed.
func (t *Transport) answerOn(peer core.Addr, in *inbound) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.clients[peer] != in && !in.q.isClosed() {
		t.clients[peer] = in
	}
}

// serveInbound exchanges hellos, then reads from the connection and, for an endpoint
// not in the address book, writes its replies back on it.
func (t *Transport) serveInbound(nc net.Conn) {
	c := newConn(nc)
	if !t.track(c) {
		return
	}
	defer t.untrack(c)
	if err := t.handshake(c); err != nil {
		if isProtocolError(err) {
			t.stats.decodeErrors.Add(1)
			t.log.Warn("bad hello", "remote", nc.RemoteAddr(), "err", err)
		}
		c.fail(err)
		return
	}
	t.stats.accepted.Add(1)
	t.log.Debug("accepted", "peer", c.peer, "remote", nc.RemoteAddr(), "nonce", c.nonce)
	if p := t.peer(c.peer); p != nil {
		select { // the peer is up: our redial to it need not wait out its backoff
		case p.back <- struct{}{}:
		default:
		}
	}
	in := &inbound{c: c, q: newSendQueue(t.cfg.QueueLimit, t.cfg.QueueBytes)}
	if t.peer(c.peer) == nil {
		t.mu.Lock()
		t.clients[c.peer] = in // the newest connection from an endpoint answers it
		t.mu.Unlock()
		defer func() {
			// Close the queue first: answerOn never makes a closed connection the route.
			putBufs(in.q.close())
			t.mu.Lock()
			if t.clients[c.peer] == in {
				delete(t.clients, c.peer)
			}
			t.mu.Unlock()
		}()
	}
	var route *inbound
	if t.peer(c.peer) == nil {
		route = in
	}
	t.spawn(func() { t.readLoop(c, route) })
	t.pump(c, in.q)
	c.fail(net.ErrClosed)
	t.log.Debug("inbound closed", "peer", c.peer, "err", c.err)
}
