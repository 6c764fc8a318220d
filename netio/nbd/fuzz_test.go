package nbd

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// Fuzz targets: arbitrary client bytes over net.Pipe must never panic the
// server, never keep ServeConn past its deadline, and never make it
// allocate more than a small multiple of what the client sent.

const (
	fuzzDeadline   = 2 * time.Second // ServeConn's context
	fuzzHangLimit  = 5 * time.Second // past this ServeConn is hung
	fuzzExportSize = 64 << 10
)

func fuzzServer(t *testing.T) *Server {
	srv, err := NewServer([]Export{
		{Name: "a", Description: "fuzz", Backend: newMem(fuzzExportSize)},
		{Name: "", Backend: newMem(4096), ReadOnly: true},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.handshakeTimeout = 500 * time.Millisecond
	srv.shutdownGrace = 500 * time.Millisecond
	return srv
}

// allocBudget is what one fuzz input may make the process allocate: a fixed
// allowance (connection buffers, one export-sized request buffer, the test's
// own buffers) plus a bounded amount per input byte (a 28-byte READ request
// of the whole export allocates at most its buffer and a reply).
func allocBudget(n int) uint64 {
	return 8<<20 + uint64(n)*(fuzzExportSize/28+256)
}

func totalAlloc() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

// waitServe waits for ServeConn, failing the input if it hangs.
func waitServe(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(fuzzHangLimit):
		t.Fatalf("ServeConn still running %v after its %v deadline", fuzzHangLimit-fuzzDeadline, fuzzDeadline)
	}
}

// Option and request encoders, for seeds.

func encOpt(opt uint32, data []byte) []byte {
	b := binary.BigEndian.AppendUint64(nil, ihaveoptMagic)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

func encReq(cmd, flags uint16, cookie, off uint64, length uint32, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, requestMagic)
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint16(b, cmd)
	b = binary.BigEndian.AppendUint64(b, cookie)
	b = binary.BigEndian.AppendUint64(b, off)
	b = binary.BigEndian.AppendUint32(b, length)
	return append(b, payload...)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

var cflags3 = []byte{0, 0, 0, 3}

func FuzzHandshake(f *testing.F) {
	someReqs := cat(
		encReq(cmdWrite, cmdFlagFUA, 1, 0, 4, []byte("abcd")),
		encReq(cmdRead, 0, 2, 0, 4, nil),
		encReq(cmdFlush, 0, 3, 0, 0, nil),
		encReq(cmdDisc, 0, 4, 0, 0, nil),
	)
	f.Add(cflags3)
	f.Add([]byte{0, 0, 0, 1})
	f.Add([]byte{0, 0, 0, 7})
	f.Add(cat(cflags3, encOpt(optGo, infoData("a", infoName, infoDescription, infoBlockSize)), someReqs))
	f.Add(cat(cflags3, encOpt(optInfo, infoData("a", infoName)), encOpt(optList, nil), encOpt(optAbort, nil)))
	f.Add(cat(cflags3, encOpt(optList, nil), encOpt(optInfo, infoData("")), encOpt(optGo, infoData("nope")), encOpt(optGo, infoData(""))))
	f.Add(cat([]byte{0, 0, 0, 1}, encOpt(optExportName, []byte("a")), someReqs))
	f.Add(cat(cflags3, encOpt(optExportName, []byte("missing"))))
	f.Add(cat(cflags3, encOpt(optStructuredReply, nil), encOpt(optStartTLS, nil), encOpt(optSetMetaContext, []byte("base:allocation")), encOpt(optGo, infoData("a"))))
	f.Add(cat(cflags3, encOpt(optInfo, []byte{0xff, 0xff, 0xff, 0xff, 0, 0}), encOpt(optGo, []byte{0, 0, 0, 1, 'a', 0, 9})))
	hugeOpt := encOpt(optGo, nil)
	binary.BigEndian.PutUint32(hugeOpt[12:], 1<<31)
	f.Add(cat(cflags3, hugeOpt))
	f.Add(cat(cflags3, []byte("IHAVEOPX"), []byte{0, 0, 0, 7, 0, 0, 0, 0}))

	f.Fuzz(func(t *testing.T, data []byte) {
		srv := fuzzServer(t)
		a, b := net.Pipe()
		defer b.Close()
		ctx, cancel := context.WithTimeout(t.Context(), fuzzDeadline)
		defer cancel()
		before := totalAlloc()
		done := make(chan error, 1)
		go func() { done <- srv.ServeConn(ctx, a) }()
		drained := make(chan struct{})
		go func() { io.Copy(io.Discard, b); close(drained) }()
		b.SetWriteDeadline(time.Now().Add(fuzzHangLimit))
		b.Write(data)
		b.Close()
		waitServe(t, done)
		<-drained
		if used := totalAlloc() - before; used > allocBudget(len(data)) {
			t.Fatalf("input of %d bytes made the server allocate %d bytes", len(data), used)
		}
	})
}

// fuzzReq is what the oracle expects of one request in a FuzzRequest input.
type fuzzReq struct {
	cmd    uint16
	length uint32
}

// parseRequests walks an input as the server should: it returns the
// requests expecting a reply, and clean=true when the input is a whole
// number of well-formed requests with distinct cookies, up to a DISC or its
// end (where the test appends a DISC): the server must then answer every
// request and close.
func parseRequests(data []byte) (reqs map[uint64]fuzzReq, n int, clean bool) {
	reqs = map[uint64]fuzzReq{}
	dup := false
	for len(data) >= requestHeaderLen {
		if binary.BigEndian.Uint32(data) != requestMagic {
			return nil, 0, false
		}
		cmd := binary.BigEndian.Uint16(data[6:])
		cookie := binary.BigEndian.Uint64(data[8:])
		length := binary.BigEndian.Uint32(data[24:])
		data = data[requestHeaderLen:]
		if cmd == cmdDisc {
			if dup {
				return nil, 0, false
			}
			return reqs, n, true
		}
		if _, ok := reqs[cookie]; ok {
			dup = true // replies can no longer be told apart
		}
		reqs[cookie] = fuzzReq{cmd, length}
		n++
		if cmd == cmdWrite {
			if length > MaxRequestLen || int(length) > len(data) {
				return nil, 0, false
			}
			data = data[length:]
		}
	}
	if len(data) != 0 || dup {
		return nil, 0, false
	}
	return reqs, n, true // the DISC the test appends ends it
}

func FuzzRequest(f *testing.F) {
	f.Add(encReq(cmdRead, 0, 1, 0, 4096, nil))
	f.Add(cat(
		encReq(cmdWrite, 0, 1, 100, 5, []byte("hello")),
		encReq(cmdRead, 0, 2, 98, 9, nil),
		encReq(cmdWrite, cmdFlagFUA, 3, fuzzExportSize-1, 1, []byte{7}),
		encReq(cmdFlush, 0, 4, 0, 0, nil),
		encReq(cmdTrim, cmdFlagFUA, 5, 0, 4096, nil),
		encReq(cmdWriteZeroes, cmdFlagNoHole, 6, 4096, 8192, nil),
	))
	f.Add(cat(
		encReq(cmdRead, 0, 1, fuzzExportSize, 1, nil),
		encReq(cmdRead, 0, 2, 0, 0, nil),
		encReq(cmdRead, 0, 3, 0, MaxRequestLen+1, nil),
		encReq(cmdWrite, 0, 4, fuzzExportSize-1, 2, []byte{1, 2}),
		encReq(cmdWrite, cmdFlagDF, 5, 0, 1, []byte{1}),
		encReq(cmdCache, 0, 6, 0, 1, nil),
		encReq(99, 0, 7, 0, 1, nil),
		encReq(cmdRead, 0xffff, 8, 0, 1, nil),
	))
	f.Add(encReq(cmdWrite, 0, 1, 0, MaxRequestLen+1, nil))
	f.Add(encReq(cmdWrite, 0, 1, 0, 1000, []byte("short")))
	f.Add(cat(encReq(cmdRead, 0, 1, 0, 1, nil), []byte{0x25, 0x60, 0x95, 0x14}))
	f.Add(cat(encReq(cmdDisc, 0, 1, 0, 0, nil), encReq(cmdRead, 0, 2, 0, 1, nil)))
	var many []byte
	for i := range 80 {
		many = append(many, encReq(cmdRead, 0, uint64(i), uint64(i)*512, 512, nil)...)
	}
	f.Add(many)

	f.Fuzz(func(t *testing.T, data []byte) {
		srv := fuzzServer(t)
		a, b := net.Pipe()
		defer b.Close()
		ctx, cancel := context.WithTimeout(t.Context(), fuzzDeadline)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- srv.ServeConn(ctx, a) }()

		b.SetDeadline(time.Now().Add(fuzzHangLimit))
		cl, err := newClient(t, b, 3)
		if err != nil {
			t.Fatal(err)
		}
		if rs, err := cl.opt(optGo, infoData("a")); err != nil || rs[len(rs)-1].typ != repAck {
			t.Fatalf("GO: %+v %v", rs, err)
		}

		reqs, n, clean := parseRequests(data)
		before := totalAlloc()
		replies := make(chan error, 1)
		go func() { replies <- checkReplies(cl.br, reqs, n, clean) }()
		b.Write(data)
		if clean {
			b.Write(encReq(cmdDisc, 0, 0, 0, 0, nil)) // may be absorbed; parse says not
		} else {
			b.Close() // the server may be waiting for bytes that never come
		}
		waitServe(t, done)
		b.Close()
		if err := <-replies; err != nil {
			t.Fatal(err)
		}
		if used := totalAlloc() - before; used > allocBudget(len(data)) {
			t.Fatalf("input of %d bytes made the server allocate %d bytes", len(data), used)
		}
	})
}

// checkReplies reads replies until the server closes. Every reply must be
// well formed; when the input was clean (ends with DISC, unique cookies)
// every request must be answered exactly once, READ successes with exactly
// the bytes asked for.
func checkReplies(br *bufio.Reader, reqs map[uint64]fuzzReq, n int, clean bool) error {
	var hdr [replyHeaderLen]byte
	got := 0
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if clean && got != n {
				return errors.New("server closed before answering every request")
			}
			return nil
		}
		if binary.BigEndian.Uint32(hdr[:]) != simpleReplyMagic {
			return errors.New("reply with a bad magic")
		}
		if !clean {
			// Without an oracle for READ lengths the stream cannot be
			// followed past a READ payload; drain the rest.
			io.Copy(io.Discard, br)
			return nil
		}
		cookie := binary.BigEndian.Uint64(hdr[8:])
		r, ok := reqs[cookie]
		if !ok {
			return errors.New("reply for a cookie never sent, or sent twice")
		}
		delete(reqs, cookie)
		got++
		if r.cmd == cmdRead && binary.BigEndian.Uint32(hdr[4:]) == errnoOK {
			if r.length == 0 || r.length > fuzzExportSize {
				return errors.New("READ of an impossible length succeeded")
			}
			if _, err := io.CopyN(io.Discard, br, int64(r.length)); err != nil {
				return errors.New("READ payload cut short")
			}
		}
	}
}

func TestParseRequestsOracle(t *testing.T) {
	for _, c := range []struct {
		data  []byte
		n     int
		clean bool
	}{
		{nil, 0, true},
		{encReq(cmdRead, 0, 1, 0, 1, nil), 1, true},
		{cat(encReq(cmdWrite, 0, 1, 0, 2, []byte("ab")), encReq(cmdFlush, 0, 2, 0, 0, nil)), 2, true},
		{cat(encReq(cmdRead, 0, 1, 0, 1, nil), encReq(cmdDisc, 0, 9, 0, 0, nil), []byte("junk")), 1, true},
		{encReq(cmdWrite, 0, 1, 0, 5, []byte("ab")), 0, false},
		{cat(encReq(cmdRead, 0, 1, 0, 1, nil), encReq(cmdRead, 0, 1, 0, 2, nil)), 0, false},
		{encReq(cmdRead, 0, 1, 0, 1, nil)[:27], 0, false},
	} {
		_, n, clean := parseRequests(c.data)
		if n != c.n || clean != c.clean {
			t.Errorf("parseRequests(%x) = %d, %v; want %d, %v", c.data, n, clean, c.n, c.clean)
		}
	}
}
