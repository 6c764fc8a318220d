package netio

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"syscall"
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
	raw   syscall.RawConn // for writes that must not block; nil if nc has no file descriptor
	br    *bufio.Reader
	peer  core.Addr // the remote endpoint, from its hello
	nonce uint64    // the remote's connection nonce
	done  chan struct{}
	once  sync.Once
	err   error // why it failed; read after done is closed
}

func newConn(nc net.Conn) *conn {
	c := &conn{nc: nc, br: bufio.NewReaderSize(nc, ioBufSize), done: make(chan struct{})}
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	return c
}

// tryWrite writes as much of b as the socket takes at once, without waiting for room,
// and returns how much that was. Only the goroutine that is writing for the send queue
// calls it. A connection without a file descriptor takes nothing (the writer
// goroutine sends everything).
func (c *conn) tryWrite(b []byte) (int, error) {
	if c.raw == nil {
		return 0, nil
	}
	n := 0
	var werr error
	err := c.raw.Write(func(fd uintptr) bool {
		for n < len(b) {
			k, e := syscall.Write(int(fd), b[n:])
			if k > 0 {
				n += k
			}
			switch {
			case e == syscall.EINTR:
				continue
			case e == syscall.EAGAIN:
				return true // full: the writer finishes the frame when there is room
			case e != nil:
				werr = e
				return true
			case k <= 0:
				return true
			}
		}
		return true
	})
	if err != nil {
		return n, err
	}
	return n, werr
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
		t.deliver(c.peer, m, c.br.Buffered() > 0)
	}
}

// pump writes q's frames to c, and keepalives when idle, until c fails or the
// transport stops; senders write to c directly while it is idle (sendQueue.push).
// Frames taken from q but not flushed are counted lost.
func (t *Transport) pump(c *conn, q *sendQueue) {
	q.attach(c)
	defer q.detach()
	bw := bufio.NewWriterSize(c.nc, ioBufSize)
	keep := time.NewTicker(max(t.cfg.IdleTimeout/3, time.Millisecond))
	defer keep.Stop()
	var spare [][]byte
	busy := false // something was written since the last keepalive tick
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-c.done:
			return
		case <-keep.C:
			keepalive := !busy
			busy = false
			if !keepalive {
				continue
			}
			if !t.writeClaimed(c, bw, q, &spare, true) {
				return
			}
		case <-q.ready:
			busy = true
			if !t.writeClaimed(c, bw, q, &spare, false) {
				return
			}
		}
	}
}

// writeClaimed claims q and writes what it holds (and a keepalive if asked), reporting
// false once c has failed. It does nothing while a sender is writing (that sender
// signals q when it is done).
func (t *Transport) writeClaimed(c *conn, bw *bufio.Writer, q *sendQueue, spare *[][]byte, keepalive bool) bool {
	partial, partialMsgs, batch, ok := q.claim(*spare)
	if !ok {
		*spare = batch
		return true
	}
	if partial == nil && len(batch) == 0 && !keepalive {
		q.release()
		*spare = batch
		return true
	}
	err := t.writeFrames(c, bw, partial, batch, keepalive)
	q.release()
	putBufs(batch)
	msgs := uint64(len(batch) + partialMsgs) // a sender's messages, finished here, count too
	if err != nil {
		t.stats.lost.Add(msgs)
		c.fail(err)
		return false
	}
	t.stats.sent.Add(msgs)
	clear(batch)
	*spare = batch[:0]
	return true
}

// keepaliveFrame is a frame with an empty payload.
var keepaliveFrame = appendFrame(nil, nil)

// writeFrames writes the rest of a partial frame, then whole frames, then a keepalive
// if asked, and flushes, each under the write timeout.
func (t *Transport) writeFrames(c *conn, bw *bufio.Writer, partial []byte, frames [][]byte, keepalive bool) error {
	c.nc.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
	if _, err := bw.Write(partial); err != nil {
		return err
	}
	for _, f := range frames {
		c.nc.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
		if _, err := bw.Write(f); err != nil {
			return err
		}
	}
	if keepalive {
		if _, err := bw.Write(keepaliveFrame); err != nil {
			return err
		}
	}
	c.nc.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
	return bw.Flush()
}
