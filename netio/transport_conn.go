package netio

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/cairnstore/cairn/core"
)

const (
	ioBufSize  = 64 << 10  // per connection, for reading and for writing
	keepBufMax = 256 << 10 // a reader keeps a frame buffer up to this size between frames
)

// conn is one TCP connection after (or during) the hello exchange.
type conn struct {
	nc    net.Conn
	br    *bufio.Reader
	peer  core.Addr // the remote endpoint, from its hello
	nonce uint64    // the remote's connection nonce
	done  chan struct{}
	once  sync.Once
	err   error // why it failed; read after done is closed
}

func newConn(nc net.Conn) *conn {
	return &conn{nc: nc, br: bufio.NewReaderSize(nc, ioBufSize), done: make(chan struct{})}
}

// fail closes the connection, waking its reader and writer; the first error sticks.
func (c *conn) fail(err error) {
	c.once.Do(func() {
		c.err = err
		close(c.done)
		c.nc.Close()
	})
}

// isProtocolError reports whether err is the remote's fault rather than the network's.
func isProtocolError(err error) bool {
	return errors.Is(err, ErrFrame) || errors.Is(err, core.ErrDecode)
}

// readLoop delivers c's messages until c fails; keepalives only renew the idle deadline.
// readLoop reads c's messages and delivers them. For a client's connection (in not nil)
// every message also makes c the one the client is answered on: a client that redialed
// may have an older connection whose hello arrived last, and whose close would otherwise
// leave the client with no route (found by the e2e fault test).
func (t *Transport) readLoop(c *conn, in *inbound) {
	var buf []byte
	for {
		c.nc.SetReadDeadline(time.Now().Add(t.cfg.IdleTimeout))
		p, err := ReadFrame(c.br, buf)
		if err == nil && len(p) == 0 {
			continue
		}
		var m core.Message
		if err == nil {
			m, err = core.Decode(p)
		}
		if err != nil {
			if isProtocolError(err) {
				t.stats.decodeErrors.Add(1)
				t.log.Warn("closing connection: bad data", "peer", c.peer, "err", err)
			}
			c.fail(err)
			return
		}
		if cap(p) <= keepBufMax {
			buf = p[:0]
		}
		t.stats.received.Add(1)
		if in != nil {
			t.answerOn(c.peer, in)
		}
		t.deliver(c.peer, m)
	}
}

// pump writes q's messages to c, and keepalives when idle, until c fails or the
// transport stops. Messages taken from q but not flushed are counted lost.
func (t *Transport) pump(c *conn, q *sendQueue) {
	bw := bufio.NewWriterSize(c.nc, ioBufSize)
	keep := time.NewTicker(max(t.cfg.IdleTimeout/3, time.Millisecond))
	defer keep.Stop()
	var batch, spare [][]byte
	keepalive := [][]byte{nil} // one zero-length payload
	busy := false
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-c.done:
			return
		case <-keep.C:
			if !busy {
				if err := t.writeBatch(c, bw, keepalive); err != nil {
					c.fail(err)
					return
				}
			}
			busy = false
		case <-q.ready:
			batch = q.take(spare)
			if len(batch) == 0 {
				spare = batch
				continue
			}
			busy = true
			err := t.writeBatch(c, bw, batch)
			putBufs(batch)
			if err != nil {
				t.stats.lost.Add(uint64(len(batch)))
				c.fail(err)
				return
			}
			t.stats.sent.Add(uint64(len(batch)))
			clear(batch)
			spare = batch[:0]
		}
	}
}

// writeBatch writes and flushes frames, each frame under the write timeout.
func (t *Transport) writeBatch(c *conn, bw *bufio.Writer, batch [][]byte) error {
	for _, p := range batch {
		c.nc.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
		if err := WriteFrame(bw, p); err != nil {
			return err
		}
	}
	c.nc.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
	return bw.Flush()
}
