package nbd

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// request is one parsed request header.
type request struct {
	flags  uint16
	cmd    uint16
	cookie uint64
	off    uint64
	length uint32
}

// reply is one simple reply waiting to be written.
type reply struct {
	cookie uint64
	errno  uint32
	data   *[]byte // READ payload, only with errno 0
	slot   bool    // holds a limiter slot of cost bytes
	cost   int
}

// session is the transmission phase of one connection.
type session struct {
	s      *Server
	c      net.Conn
	neg    *negotiated
	b      Backend
	log    *slog.Logger
	debug  bool
	ctx    context.Context // for backend calls: cancelled when the connection breaks
	cancel context.CancelFunc
	out    replyWriter
	lim    *limiter
	jobs   chan func()    // requests for idle workers (closed when reading ends)
	busy   atomic.Int32   // requests between dispatch and their reply's queueing
	wg     sync.WaitGroup // request workers
	failed sync.Once
}

// transmit runs the transmission phase until DISC, the client closing, a
// protocol error, a broken connection, or ctx ending it.
func (s *Server) transmit(ctx context.Context, c net.Conn, neg *negotiated, log *slog.Logger) error {
	// Backend calls outlive ctx: on shutdown the requests in flight finish.
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	ss := &session{
		s: s, c: c, neg: neg, b: neg.export.Backend, log: log,
		debug:  log.Enabled(ctx, slog.LevelDebug),
		ctx:    bctx,
		cancel: cancel,
		lim:    newLimiter(s.maxInFlight, s.maxInFlightBytes),
		jobs:   make(chan func()),
	}
	ss.out.bw = bufio.NewWriterSize(c, 64<<10)

	// Shutdown: stop reading now, give the last replies a bounded time.
	stop := context.AfterFunc(ctx, func() {
		c.SetReadDeadline(time.Now())
		c.SetWriteDeadline(time.Now().Add(s.shutdownGrace))
	})
	rerr := ss.readLoop(ctx)
	stop()
	close(ss.jobs) // idle workers exit; busy ones after their request
	ss.wg.Wait()   // every reply is written (or dropped after a write error) by now
	werr := ss.out.error()
	switch {
	case ctx.Err() != nil:
		return nil
	case werr != nil:
		return werr
	}
	return rerr
}

// readLoop reads requests in order and starts each one. It returns nil on
// DISC, on the client closing between requests, and on shutdown.
func (ss *session) readLoop(ctx context.Context) error {
	var hdr [requestHeaderLen]byte
	br := ss.neg.br
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("nbd: reading request: %w", err)
		}
		if m := binary.BigEndian.Uint32(hdr[0:]); m != requestMagic {
			return fmt.Errorf("nbd: bad request magic %#x", m)
		}
		r := request{
			flags:  binary.BigEndian.Uint16(hdr[4:]),
			cmd:    binary.BigEndian.Uint16(hdr[6:]),
			cookie: binary.BigEndian.Uint64(hdr[8:]),
			off:    binary.BigEndian.Uint64(hdr[16:]),
			length: binary.BigEndian.Uint32(hdr[24:]),
		}
		switch r.cmd {
		case cmdDisc:
			ss.log.Debug("nbd: disconnect requested")
			return nil
		case cmdWrite:
			if err := ss.startWrite(br, r); err != nil {
				return err
			}
		default:
			ss.start(r)
		}
	}
}

// check validates a request against the export; it returns the error to
// reply with, or 0.
func (ss *session) check(r request) uint32 {
	allowed := cmdFlagFUA // valid on every command once SEND_FUA is advertised
	if r.cmd == cmdWriteZeroes {
		allowed |= cmdFlagNoHole
	}
	if r.flags&^allowed != 0 {
		return errnoINVAL
	}
	ro := ss.neg.export.ReadOnly
	outOfRange := r.off > ss.neg.size || uint64(r.length) > ss.neg.size-r.off
	switch r.cmd {
	case cmdRead, cmdWrite:
		if r.length == 0 || r.length > MaxRequestLen {
			return errnoINVAL
		}
	case cmdFlush:
		return errnoOK
	case cmdTrim, cmdWriteZeroes:
	default:
		return errnoINVAL // unknown, or needs structured replies (BLOCK_STATUS)
	}
	switch {
	case ro && r.cmd != cmdRead:
		return errnoPERM
	case outOfRange && (r.cmd == cmdWrite || r.cmd == cmdWriteZeroes):
		return errnoNOSPC // the protocol's SHOULD for writes past the end
	case outOfRange:
		return errnoINVAL
	}
	return errnoOK
}

// startWrite takes a WRITE's payload off the wire and starts it. A payload
// too large to take ends the connection after an EINVAL reply.
func (ss *session) startWrite(br *bufio.Reader, r request) error {
	if r.length > MaxRequestLen {
		ss.early(r, errnoINVAL)
		return fmt.Errorf("nbd: WRITE of %d bytes, more than %d", r.length, MaxRequestLen)
	}
	if e := ss.check(r); e != errnoOK {
		if _, err := io.CopyN(io.Discard, br, int64(r.length)); err != nil {
			return fmt.Errorf("nbd: discarding refused WRITE payload: %w", err)
		}
		ss.early(r, e)
		return nil
	}
	cost := int(r.length)
	ss.lim.acquire(cost)
	buf := getBuf(cost)
	if _, err := io.ReadFull(br, *buf); err != nil {
		putBuf(buf)
		ss.lim.release(cost)
		return fmt.Errorf("nbd: reading WRITE payload: %w", err)
	}
	ss.dispatch(r, buf, cost)
	return nil
}

// start starts a request other than WRITE and DISC.
func (ss *session) start(r request) {
	if e := ss.check(r); e != errnoOK {
		ss.early(r, e)
		return
	}
	var buf *[]byte
	cost := 0
	if r.cmd == cmdRead {
		cost = int(r.length)
	}
	ss.lim.acquire(cost)
	if r.cmd == cmdRead {
		buf = getBuf(cost)
	}
	ss.dispatch(r, buf, cost)
}

// early replies to a request refused before it reached the backend.
func (ss *session) early(r request, errno uint32) {
	if ss.debug {
		ss.log.Debug("nbd: request refused", "cmd", cmdName(r.cmd), "flags", r.flags,
			"off", r.off, "len", r.length, "cookie", r.cookie, "err", errnoName(errno))
	}
	ss.send(&reply{cookie: r.cookie, errno: errno})
}

// dispatch runs a request on a worker goroutine: an idle one, or a new one when all are
// busy. Workers stay for the session's next requests, their stacks grown to the depth
// a request needs (a new goroutine per request would grow its stack, by copying, on
// every request). There are at most as many workers as requests in flight (the limiter
// slot the request holds bounds them).
func (ss *session) dispatch(r request, buf *[]byte, cost int) {
	ss.busy.Add(1)
	job := ss.job(r, buf, cost)
	select {
	case ss.jobs <- job:
	default:
		ss.wg.Go(func() {
			job()
			for job := range ss.jobs {
				job()
			}
		})
	}
}

// job is one request's work: the backend call and the reply.
func (ss *session) job(r request, buf *[]byte, cost int) func() {
	return func() {
		var start time.Time
		if ss.debug {
			start = time.Now()
		}
		errno := ss.run(r, buf)
		rep := &reply{cookie: r.cookie, errno: errno, slot: true, cost: cost}
		if buf != nil {
			if r.cmd == cmdRead && errno == errnoOK {
				rep.data = buf // the writer returns it to the pool
			} else {
				putBuf(buf)
			}
		}
		if ss.debug {
			ss.log.Debug("nbd: request", "cmd", cmdName(r.cmd), "flags", r.flags,
				"off", r.off, "len", r.length, "cookie", r.cookie, "err", errnoName(errno),
				"took", time.Since(start))
		}
		ss.busy.Add(-1)
		ss.send(rep)
	}
}

// run calls the backend. A panicking backend fails the request with EIO
// rather than the whole process.
func (ss *session) run(r request, buf *[]byte) (errno uint32) {
	defer func() {
		if p := recover(); p != nil {
			ss.log.Error("nbd: backend panicked", "cmd", cmdName(r.cmd), "panic", p)
			errno = errnoIO
		}
	}()
	fua := r.flags&cmdFlagFUA != 0
	var err error
	switch r.cmd {
	case cmdRead:
		err = ss.b.ReadAt(ss.ctx, *buf, r.off)
	case cmdWrite:
		err = ss.b.WriteAt(ss.ctx, *buf, r.off, fua)
	case cmdFlush:
		err = ss.b.Flush(ss.ctx)
	case cmdTrim:
		if r.length > 0 {
			err = ss.b.Trim(ss.ctx, r.off, uint64(r.length), fua)
		}
	case cmdWriteZeroes:
		if r.length > 0 {
			err = ss.b.WriteZeroes(ss.ctx, r.off, uint64(r.length), fua)
		}
	}
	switch {
	case err == nil:
		return errnoOK
	case errors.Is(err, ErrNoSpace):
		return errnoNOSPC
	}
	ss.log.Debug("nbd: backend error", "cmd", cmdName(r.cmd), "off", r.off, "len", r.length, "err", err)
	return errnoIO
}

// replyWriter writes a session's replies. There is no writer goroutine: the goroutine
// with a reply appends it and, if nobody is writing, writes out everything pending
// (its own reply and those that arrived meanwhile) with one flush, and goes on until
// nothing is pending. At QD 1 a reply thus leaves from the request's own goroutine
// without a wake-up; under load, replies that queue during a write leave together.
type replyWriter struct {
	bw *bufio.Writer

	mu      sync.Mutex
	pending []*reply
	spare   []*reply
	writing bool
	err     error // the first write error; later replies are dropped
}

func (w *replyWriter) error() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// send writes rep (and what else is pending) or leaves it to the goroutine writing.
func (ss *session) send(rep *reply) {
	w := &ss.out
	w.mu.Lock()
	w.pending = append(w.pending, rep)
	if w.writing {
		w.mu.Unlock()
		return
	}
	w.writing = true
	if ss.busy.Load() > 1 {
		// Other requests are running: let them add their replies to this write.
		w.mu.Unlock()
		runtime.Gosched()
		w.mu.Lock()
	}
	for len(w.pending) > 0 {
		batch := w.pending
		w.pending = w.spare[:0]
		failed := w.err != nil
		w.mu.Unlock()
		var err error
		if !failed {
			err = ss.writeReplies(batch)
		}
		for i, rep := range batch {
			if rep.data != nil {
				putBuf(rep.data)
			}
			if rep.slot {
				ss.lim.release(rep.cost)
			}
			batch[i] = nil
		}
		w.mu.Lock()
		w.spare = batch[:0]
		if err != nil && w.err == nil {
			w.err = fmt.Errorf("nbd: sending replies: %w", err)
			ss.fail()
		}
	}
	w.writing = false
	w.mu.Unlock()
}

// writeReplies writes simple replies and flushes them. Only the goroutine writing calls it.
func (ss *session) writeReplies(batch []*reply) error {
	var hdr [replyHeaderLen]byte
	bw := ss.out.bw
	for _, rep := range batch {
		binary.BigEndian.PutUint32(hdr[0:], simpleReplyMagic)
		binary.BigEndian.PutUint32(hdr[4:], rep.errno)
		binary.BigEndian.PutUint64(hdr[8:], rep.cookie)
		bw.Write(hdr[:])
		if rep.data != nil {
			bw.Write(*rep.data)
		}
	}
	return bw.Flush()
}

// fail stops a session whose connection broke: backend calls are cancelled
// and the reader wakes up.
func (ss *session) fail() {
	ss.failed.Do(func() {
		ss.cancel()
		ss.c.SetReadDeadline(time.Now())
	})
}
