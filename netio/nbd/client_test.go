package nbd

// A small NBD client and an in-memory backend, for the tests.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memBackend is an export held in memory. Trim and WriteZeroes zero the
// range. Hooks let tests fail or hold calls.
type memBackend struct {
	mu      sync.Mutex
	data    []byte
	flushes atomic.Int64
	fuas    atomic.Int64

	// gate, when set, is called at the start of every call (outside mu).
	gate func(op string) error
}

func newMem(size int) *memBackend { return &memBackend{data: make([]byte, size)} }

func (m *memBackend) Size() uint64 { return uint64(len(m.data)) }

func (m *memBackend) enter(op string) error {
	if m.gate != nil {
		return m.gate(op)
	}
	return nil
}

func (m *memBackend) ReadAt(ctx context.Context, p []byte, off uint64) error {
	if err := m.enter("read"); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	copy(p, m.data[off:])
	return nil
}

func (m *memBackend) WriteAt(ctx context.Context, p []byte, off uint64, fua bool) error {
	if err := m.enter("write"); err != nil {
		return err
	}
	if fua {
		m.fuas.Add(1)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	copy(m.data[off:], p)
	return nil
}

func (m *memBackend) Flush(ctx context.Context) error {
	if err := m.enter("flush"); err != nil {
		return err
	}
	m.flushes.Add(1)
	return nil
}

func (m *memBackend) zero(op string, off, length uint64, fua bool) error {
	if err := m.enter(op); err != nil {
		return err
	}
	if fua {
		m.fuas.Add(1)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.data[off : off+length])
	return nil
}

func (m *memBackend) Trim(ctx context.Context, off, length uint64, fua bool) error {
	return m.zero("trim", off, length, fua)
}

func (m *memBackend) WriteZeroes(ctx context.Context, off, length uint64, fua bool) error {
	return m.zero("zero", off, length, fua)
}

func (m *memBackend) snapshot(off, n int) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.data[off:off+n]...)
}

// optReply is one option reply as the client saw it.
type optReply struct {
	opt, typ uint32
	data     []byte
}

// tclient is a test NBD client. Option methods are synchronous; after go_
// succeeds, requests may be pipelined: a reader goroutine matches replies
// to requests by cookie.
type tclient struct {
	t      testing.TB
	c      net.Conn
	br     *bufio.Reader
	hflags uint16

	size   uint64
	tflags uint16

	wmu     sync.Mutex
	mu      sync.Mutex
	pending map[uint64]*call
	next    uint64
	rdone   chan struct{}
	rerr    error
}

type call struct {
	cmd     uint16
	readLen uint32
	done    chan struct{}
	errno   uint32
	data    []byte
	err     error
}

// startServer runs ServeConn for srv on one end of a loopback TCP
// connection and returns the other end, unhandshaken, and a channel that
// yields ServeConn's result.
func startServer(t testing.TB, srv *Server) (net.Conn, <-chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	ctx := t.Context()
	go func() {
		c, err := l.Accept()
		l.Close()
		if err != nil {
			done <- err
			return
		}
		done <- srv.ServeConn(ctx, c)
	}()
	c, err := net.DialTimeout("tcp", l.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c, done
}

// waitErr waits (bounded) for a ServeConn result.
func waitErr(t testing.TB, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("ServeConn did not return")
		return nil
	}
}

// newClient reads the greeting and sends client flags.
func newClient(t testing.TB, c net.Conn, cflags uint32) (*tclient, error) {
	cl := &tclient{t: t, c: c, br: bufio.NewReader(c), pending: map[uint64]*call{}}
	var b [18]byte
	if _, err := io.ReadFull(cl.br, b[:]); err != nil {
		return nil, err
	}
	if m := binary.BigEndian.Uint64(b[0:]); m != 0x4e42444d41474943 {
		return nil, fmt.Errorf("bad NBDMAGIC %#x", m)
	}
	if m := binary.BigEndian.Uint64(b[8:]); m != 0x49484156454F5054 {
		return nil, fmt.Errorf("bad IHAVEOPT %#x", m)
	}
	cl.hflags = binary.BigEndian.Uint16(b[16:])
	binary.BigEndian.PutUint32(b[:4], cflags)
	_, err := c.Write(b[:4])
	return cl, err
}

func dial(t testing.TB, srv *Server) (*tclient, <-chan error) {
	t.Helper()
	c, done := startServer(t, srv)
	cl, err := newClient(t, c, 3)
	if err != nil {
		t.Fatal(err)
	}
	return cl, done
}

func (cl *tclient) sendOpt(opt uint32, data []byte) error {
	b := make([]byte, 16, 16+len(data))
	binary.BigEndian.PutUint64(b, 0x49484156454F5054)
	binary.BigEndian.PutUint32(b[8:], opt)
	binary.BigEndian.PutUint32(b[12:], uint32(len(data)))
	_, err := cl.c.Write(append(b, data...))
	return err
}

func (cl *tclient) readOptReply() (optReply, error) {
	var b [20]byte
	if _, err := io.ReadFull(cl.br, b[:]); err != nil {
		return optReply{}, err
	}
	if m := binary.BigEndian.Uint64(b[0:]); m != 0x3e889045565a9 {
		return optReply{}, fmt.Errorf("bad option reply magic %#x", m)
	}
	r := optReply{opt: binary.BigEndian.Uint32(b[8:]), typ: binary.BigEndian.Uint32(b[12:])}
	n := binary.BigEndian.Uint32(b[16:])
	if n > 1<<20 {
		return r, fmt.Errorf("option reply of %d bytes", n)
	}
	r.data = make([]byte, n)
	_, err := io.ReadFull(cl.br, r.data)
	return r, err
}

// opt sends an option and collects replies up to the first that is not
// NBD_REP_SERVER or NBD_REP_INFO.
func (cl *tclient) opt(opt uint32, data []byte) ([]optReply, error) {
	if err := cl.sendOpt(opt, data); err != nil {
		return nil, err
	}
	var out []optReply
	for len(out) < 1000 {
		r, err := cl.readOptReply()
		if err != nil {
			return out, err
		}
		if r.opt != opt {
			return out, fmt.Errorf("reply for option %d, sent %d", r.opt, opt)
		}
		out = append(out, r)
		if r.typ != repServer && r.typ != repInfo {
			return out, nil
		}
	}
	return out, errors.New("too many replies")
}

func infoData(name string, reqs ...uint16) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(reqs)))
	for _, r := range reqs {
		b = binary.BigEndian.AppendUint16(b, r)
	}
	return b
}

// go_ sends NBD_OPT_GO; on success it starts the reply reader.
func (cl *tclient) go_(name string, reqs ...uint16) ([]optReply, error) {
	rs, err := cl.opt(optGo, infoData(name, reqs...))
	if err != nil {
		return rs, err
	}
	last := rs[len(rs)-1]
	if last.typ != repAck {
		return rs, fmt.Errorf("GO refused: %#x %q", last.typ, last.data)
	}
	for _, r := range rs {
		if r.typ == repInfo && len(r.data) == 12 && binary.BigEndian.Uint16(r.data) == infoExport {
			cl.size = binary.BigEndian.Uint64(r.data[2:])
			cl.tflags = binary.BigEndian.Uint16(r.data[10:])
		}
	}
	cl.startReader()
	return rs, nil
}

func (cl *tclient) startReader() {
	cl.c.SetDeadline(time.Time{})
	cl.rdone = make(chan struct{})
	go cl.readLoop()
}

func (cl *tclient) readLoop() {
	defer close(cl.rdone)
	var err error
	defer func() {
		cl.mu.Lock()
		cl.rerr = err
		for k, c := range cl.pending {
			c.err = err
			close(c.done)
			delete(cl.pending, k)
		}
		cl.mu.Unlock()
	}()
	var b [16]byte
	for {
		if _, err = io.ReadFull(cl.br, b[:]); err != nil {
			return
		}
		if m := binary.BigEndian.Uint32(b[:]); m != 0x67446698 {
			err = fmt.Errorf("bad reply magic %#x", m)
			return
		}
		cookie := binary.BigEndian.Uint64(b[8:])
		cl.mu.Lock()
		c := cl.pending[cookie]
		delete(cl.pending, cookie)
		cl.mu.Unlock()
		if c == nil {
			err = fmt.Errorf("reply for unknown cookie %d", cookie)
			return
		}
		c.errno = binary.BigEndian.Uint32(b[4:])
		if c.cmd == cmdRead && c.errno == 0 {
			c.data = make([]byte, c.readLen)
			if _, err = io.ReadFull(cl.br, c.data); err != nil {
				c.err = err
				close(c.done)
				return
			}
		}
		close(c.done)
	}
}

// send writes one request (and payload); it does not wait for the reply.
func (cl *tclient) send(cmd, flags uint16, off uint64, length uint32, payload []byte) (*call, error) {
	c := &call{cmd: cmd, readLen: length, done: make(chan struct{})}
	cl.mu.Lock()
	if cl.rerr != nil {
		cl.mu.Unlock()
		return nil, cl.rerr
	}
	cl.next++
	cookie := cl.next<<8 | 0x5a // not just a counter: cookies are opaque
	if cmd != cmdDisc {
		cl.pending[cookie] = c
	}
	cl.mu.Unlock()
	b := make([]byte, 28, 28+len(payload))
	binary.BigEndian.PutUint32(b, 0x25609513)
	binary.BigEndian.PutUint16(b[4:], flags)
	binary.BigEndian.PutUint16(b[6:], cmd)
	binary.BigEndian.PutUint64(b[8:], cookie)
	binary.BigEndian.PutUint64(b[16:], off)
	binary.BigEndian.PutUint32(b[24:], length)
	cl.wmu.Lock()
	_, err := cl.c.Write(append(b, payload...))
	cl.wmu.Unlock()
	return c, err
}

func (c *call) wait(t testing.TB) (uint32, []byte) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		t.Fatal("no reply within 20s")
	}
	if c.err != nil {
		t.Fatalf("reply: %v", c.err)
	}
	return c.errno, c.data
}

// do sends one request and waits for its reply.
func (cl *tclient) do(cmd, flags uint16, off uint64, length uint32, payload []byte) (uint32, []byte) {
	cl.t.Helper()
	c, err := cl.send(cmd, flags, off, length, payload)
	if err != nil {
		cl.t.Fatalf("send %s: %v", cmdName(cmd), err)
	}
	return c.wait(cl.t)
}

func (cl *tclient) read(off uint64, n uint32) []byte {
	cl.t.Helper()
	e, d := cl.do(cmdRead, 0, off, n, nil)
	if e != 0 {
		cl.t.Fatalf("READ %d+%d: %s", off, n, errnoName(e))
	}
	return d
}

func (cl *tclient) write(off uint64, p []byte, flags uint16) {
	cl.t.Helper()
	if e, _ := cl.do(cmdWrite, flags, off, uint32(len(p)), p); e != 0 {
		cl.t.Fatalf("WRITE %d+%d: %s", off, len(p), errnoName(e))
	}
}

// disc sends NBD_CMD_DISC and waits for the server to close.
func (cl *tclient) disc() error {
	if _, err := cl.send(cmdDisc, 0, 0, 0, nil); err != nil {
		return err
	}
	select {
	case <-cl.rdone:
	case <-time.After(10 * time.Second):
		return errors.New("server did not close after DISC")
	}
	if cl.rerr != nil && !errors.Is(cl.rerr, io.EOF) {
		return cl.rerr
	}
	return nil
}

func newTestServer(t testing.TB, exports ...Export) *Server {
	t.Helper()
	srv, err := NewServer(exports, nil)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}
