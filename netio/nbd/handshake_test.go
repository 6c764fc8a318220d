package nbd

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestNewServerValidation(t *testing.T) {
	b := newMem(4096)
	cases := []struct {
		name    string
		exports []Export
		ok      bool
	}{
		{"none", nil, false},
		{"one", []Export{{Name: "a", Backend: b}}, true},
		{"default export", []Export{{Name: "", Backend: b}, {Name: "a", Backend: b}}, true},
		{"duplicate", []Export{{Name: "a", Backend: b}, {Name: "a", Backend: b}}, false},
		{"no backend", []Export{{Name: "a"}}, false},
		{"long name", []Export{{Name: strings.Repeat("x", 4097), Backend: b}}, false},
		{"name with NUL", []Export{{Name: "a\x00b", Backend: b}}, false},
		{"bad UTF-8", []Export{{Name: "\xff", Backend: b}}, false},
		{"bad description", []Export{{Name: "a", Description: "\x00", Backend: b}}, false},
	}
	for _, c := range cases {
		_, err := NewServer(c.exports, nil)
		if (err == nil) != c.ok {
			t.Errorf("%s: err = %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

func TestGreetingAndBadClientFlags(t *testing.T) {
	srv := newTestServer(t, Export{Name: "a", Backend: newMem(4096)})
	for _, cflags := range []uint32{0, 2, 1 << 2, 1<<31 | 1, 3 | 8} {
		c, done := startServer(t, srv)
		cl, err := newClient(t, c, cflags)
		if err != nil {
			t.Fatal(err)
		}
		if cl.hflags != flagFixedNewstyle|flagNoZeroes {
			t.Fatalf("handshake flags %#x, want 0x3", cl.hflags)
		}
		if _, err := cl.br.ReadByte(); err == nil {
			t.Fatalf("client flags %#x: server kept the connection open", cflags)
		}
		if err := waitErr(t, done); err == nil {
			t.Errorf("client flags %#x: ServeConn returned nil", cflags)
		}
	}
}

// checkInfo checks the replies to a successful INFO/GO.
func checkInfo(t *testing.T, rs []optReply, size uint64, tflags uint16, name, desc string) {
	t.Helper()
	var sawExport, sawBlock, sawName, sawDesc bool
	for i, r := range rs {
		if i == len(rs)-1 {
			if r.typ != repAck || len(r.data) != 0 {
				t.Fatalf("last reply %#x %q, want ACK", r.typ, r.data)
			}
			break
		}
		if r.typ != repInfo || len(r.data) < 2 {
			t.Fatalf("reply %d: type %#x len %d", i, r.typ, len(r.data))
		}
		switch typ := binary.BigEndian.Uint16(r.data); typ {
		case infoExport:
			sawExport = true
			if len(r.data) != 12 {
				t.Fatalf("NBD_INFO_EXPORT of %d bytes", len(r.data))
			}
			if s := binary.BigEndian.Uint64(r.data[2:]); s != size {
				t.Errorf("size %d, want %d", s, size)
			}
			if f := binary.BigEndian.Uint16(r.data[10:]); f != tflags {
				t.Errorf("transmission flags %#x, want %#x", f, tflags)
			}
		case infoBlockSize:
			sawBlock = true
			if len(r.data) != 14 {
				t.Fatalf("NBD_INFO_BLOCK_SIZE of %d bytes", len(r.data))
			}
			mn, pr, mx := binary.BigEndian.Uint32(r.data[2:]), binary.BigEndian.Uint32(r.data[6:]), binary.BigEndian.Uint32(r.data[10:])
			if mn != 1 || pr != 4096 || mx != 32<<20 {
				t.Errorf("block sizes %d/%d/%d, want 1/4096/33554432", mn, pr, mx)
			}
		case infoName:
			sawName = true
			if string(r.data[2:]) != name {
				t.Errorf("NBD_INFO_NAME %q, want %q", r.data[2:], name)
			}
		case infoDescription:
			sawDesc = true
			if string(r.data[2:]) != desc {
				t.Errorf("NBD_INFO_DESCRIPTION %q, want %q", r.data[2:], desc)
			}
		default:
			t.Errorf("unexpected info type %d", typ)
		}
	}
	if !sawExport || !sawBlock {
		t.Errorf("export info %v, block size info %v: want both", sawExport, sawBlock)
	}
	if sawName != (name != "") || sawDesc != (desc != "") {
		t.Errorf("name sent %v, description sent %v; want %v, %v", sawName, sawDesc, name != "", desc != "")
	}
}

func TestOptInfoGoList(t *testing.T) {
	disk := newMem(1 << 20)
	srv := newTestServer(t,
		Export{Name: "disk", Description: "the disk", Backend: disk},
		Export{Name: "", Backend: newMem(8192), ReadOnly: true},
		Export{Name: "shared", Backend: newMem(512), MultiConn: true},
	)
	cl, done := dial(t, srv)
	const rw = tflagHasFlags | tflagSendFlush | tflagSendFUA | tflagSendTrim | tflagSendWriteZeroes

	rs, err := cl.opt(optInfo, infoData("disk"))
	if err != nil {
		t.Fatal(err)
	}
	checkInfo(t, rs, 1<<20, rw, "", "")

	rs, err = cl.opt(optInfo, infoData("disk", infoName, infoDescription, 999))
	if err != nil {
		t.Fatal(err)
	}
	checkInfo(t, rs, 1<<20, rw, "disk", "the disk")

	rs, err = cl.opt(optInfo, infoData(""))
	if err != nil {
		t.Fatal(err)
	}
	checkInfo(t, rs, 8192, tflagHasFlags|tflagSendFlush|tflagReadOnly, "", "")

	rs, err = cl.opt(optInfo, infoData("shared"))
	if err != nil {
		t.Fatal(err)
	}
	checkInfo(t, rs, 512, rw|tflagCanMultiConn, "", "")

	for _, opt := range []uint32{optInfo, optGo} {
		rs, err = cl.opt(opt, infoData("nope", infoName))
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 1 || rs[0].typ != repErrUnknown {
			t.Fatalf("%s of unknown export: %+v, want one NBD_REP_ERR_UNKNOWN", optName(opt), rs)
		}
	}

	rs, err = cl.opt(optList, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"disk", "", "shared"}
	if len(rs) != len(want)+1 || rs[len(rs)-1].typ != repAck {
		t.Fatalf("LIST: %d replies, last %#x", len(rs), rs[len(rs)-1].typ)
	}
	for i, w := range want {
		r := rs[i]
		n := binary.BigEndian.Uint32(r.data)
		if r.typ != repServer || int(n) > len(r.data)-4 || string(r.data[4:4+n]) != w {
			t.Errorf("LIST entry %d: type %#x data %q, want export %q", i, r.typ, r.data, w)
		}
	}
	if got := string(rs[0].data[8:]); got != "the disk" {
		t.Errorf("LIST description %q", got)
	}

	rs, err = cl.opt(optList, []byte{1})
	if err != nil || len(rs) != 1 || rs[0].typ != repErrInvalid {
		t.Fatalf("LIST with data: %+v %v, want NBD_REP_ERR_INVALID", rs, err)
	}

	// Options the server does not implement, then GO on the same connection.
	for _, opt := range []uint32{optStructuredReply, optStartTLS, optListMetaContext, optSetMetaContext, optExtendedHeaders, optPeekExport, 99, 1 << 31} {
		rs, err := cl.opt(opt, []byte("some data"))
		if err != nil || len(rs) != 1 || rs[0].typ != repErrUnsup {
			t.Fatalf("option %s: %+v %v, want NBD_REP_ERR_UNSUP", optName(opt), rs, err)
		}
	}
	rs, err = cl.go_("disk", infoName)
	if err != nil {
		t.Fatal(err)
	}
	checkInfo(t, rs, 1<<20, rw, "disk", "")
	cl.write(0, []byte("hello"), 0)
	if got := disk.snapshot(0, 5); string(got) != "hello" {
		t.Fatalf("backend holds %q", got)
	}
	if err := cl.disc(); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, done); err != nil {
		t.Fatalf("ServeConn: %v", err)
	}
}

func TestOptInfoMalformed(t *testing.T) {
	srv := newTestServer(t, Export{Name: "a", Backend: newMem(4096)})
	cl, _ := dial(t, srv)
	long := infoData(strings.Repeat("n", 5000))
	cases := []struct {
		name string
		data []byte
		want uint32
	}{
		{"empty", nil, repErrInvalid},
		{"short", []byte{0, 0, 0, 1, 'a'}, repErrInvalid},
		{"name past end", []byte{0, 0, 0, 9, 'a', 0, 0}, repErrInvalid},
		{"huge name length", []byte{0xff, 0xff, 0xff, 0xff, 'a', 0, 0}, repErrInvalid},
		{"request count too big", append(infoData("a"), 0, 1)[:7], repErrInvalid},
		{"trailing byte", append(infoData("a"), 7), repErrInvalid},
		{"name too long", long, repErrTooBig},
	}
	cases[4].data = []byte{0, 0, 0, 1, 'a', 0, 2, 0, 1} // claims 2 requests, carries 1
	for _, c := range cases {
		for _, opt := range []uint32{optInfo, optGo} {
			rs, err := cl.opt(opt, c.data)
			if err != nil || len(rs) != 1 || rs[0].typ != c.want {
				t.Fatalf("%s %s: %+v %v, want %#x", optName(opt), c.name, rs, err, c.want)
			}
		}
	}
	if _, err := cl.go_("a"); err != nil {
		t.Fatalf("GO after refused options: %v", err)
	}
}

func TestOptAbort(t *testing.T) {
	srv := newTestServer(t, Export{Name: "a", Backend: newMem(4096)})
	cl, done := dial(t, srv)
	rs, err := cl.opt(optAbort, nil)
	if err != nil || len(rs) != 1 || rs[0].typ != repAck {
		t.Fatalf("ABORT: %+v %v, want ACK", rs, err)
	}
	if _, err := cl.br.ReadByte(); err != io.EOF {
		t.Fatalf("after ABORT read %v, want EOF", err)
	}
	if err := waitErr(t, done); err != nil {
		t.Fatalf("ServeConn after ABORT: %v", err)
	}

	// A client that closes right after sending ABORT is no error either.
	cl, done = dial(t, srv)
	if err := cl.sendOpt(optAbort, nil); err != nil {
		t.Fatal(err)
	}
	cl.c.Close()
	if err := waitErr(t, done); err != nil {
		t.Fatalf("ServeConn after ABORT and close: %v", err)
	}
}

func TestOptionLimits(t *testing.T) {
	srv := newTestServer(t, Export{Name: "a", Backend: newMem(4096)})

	// Option data beyond the limit closes the connection unread.
	cl, done := dial(t, srv)
	var hdr [16]byte
	binary.BigEndian.PutUint64(hdr[:], ihaveoptMagic)
	binary.BigEndian.PutUint32(hdr[8:], optGo)
	binary.BigEndian.PutUint32(hdr[12:], maxOptionLen+1)
	cl.c.Write(hdr[:])
	if _, err := cl.br.ReadByte(); err == nil {
		t.Fatal("server answered an oversized option")
	}
	if err := waitErr(t, done); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("ServeConn: %v", err)
	}

	// Bad option magic closes too.
	cl, done = dial(t, srv)
	binary.BigEndian.PutUint64(hdr[:], 0x1122334455667788)
	binary.BigEndian.PutUint32(hdr[12:], 0)
	cl.c.Write(hdr[:])
	if _, err := cl.br.ReadByte(); err == nil {
		t.Fatal("server answered an option with a bad magic")
	}
	if err := waitErr(t, done); err == nil {
		t.Fatal("ServeConn returned nil after a bad option magic")
	}

	// At most maxOptions options per connection.
	cl, done = dial(t, srv)
	for i := range maxOptions {
		rs, err := cl.opt(99, nil)
		if err != nil || rs[0].typ != repErrUnsup {
			t.Fatalf("option %d: %v", i, err)
		}
	}
	if rs, err := cl.opt(optList, nil); err == nil {
		t.Fatalf("option %d answered: %+v", maxOptions+1, rs)
	}
	if err := waitErr(t, done); err == nil {
		t.Fatal("ServeConn returned nil after too many options")
	}
}

func TestExportName(t *testing.T) {
	mem := newMem(1 << 16)
	srv := newTestServer(t, Export{Name: "a", Backend: mem}, Export{Name: "", Backend: newMem(512), ReadOnly: true})
	for _, cflags := range []uint32{1, 3} {
		c, done := startServer(t, srv)
		cl, err := newClient(t, c, cflags)
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.sendOpt(optExportName, []byte("a")); err != nil {
			t.Fatal(err)
		}
		n := 10
		if cflags&clientFlagNoZeroes == 0 {
			n += 124
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(cl.br, b); err != nil {
			t.Fatal(err)
		}
		if s := binary.BigEndian.Uint64(b); s != 1<<16 {
			t.Fatalf("size %d", s)
		}
		if f := binary.BigEndian.Uint16(b[8:]); f&tflagHasFlags == 0 || f&tflagReadOnly != 0 {
			t.Fatalf("flags %#x", f)
		}
		if !bytes.Equal(b[10:], make([]byte, n-10)) {
			t.Fatal("padding is not zero")
		}
		cl.startReader()
		cl.write(100, []byte{1, 2, 3}, cmdFlagFUA)
		if got := cl.read(99, 5); !bytes.Equal(got, []byte{0, 1, 2, 3, 0}) {
			t.Fatalf("read back %v", got)
		}
		if err := cl.disc(); err != nil {
			t.Fatal(err)
		}
		if err := waitErr(t, done); err != nil {
			t.Fatal(err)
		}
	}

	// The default export "" by EXPORT_NAME.
	cl, _ := dial(t, srv)
	cl.sendOpt(optExportName, nil)
	b := make([]byte, 10)
	if _, err := io.ReadFull(cl.br, b); err != nil {
		t.Fatal(err)
	}
	if s, f := binary.BigEndian.Uint64(b), binary.BigEndian.Uint16(b[8:]); s != 512 || f&tflagReadOnly == 0 {
		t.Fatalf("default export: size %d flags %#x", s, f)
	}

	// An unknown export cannot be refused with an error: the server closes.
	cl, done := dial(t, srv)
	cl.sendOpt(optExportName, []byte("missing"))
	if _, err := cl.br.ReadByte(); err == nil {
		t.Fatal("server answered EXPORT_NAME for an unknown export")
	}
	if err := waitErr(t, done); err == nil {
		t.Fatal("ServeConn returned nil")
	}
}

func TestHandshakeTimeout(t *testing.T) {
	srv := newTestServer(t, Export{Name: "a", Backend: newMem(4096)})
	srv.handshakeTimeout = 200 * time.Millisecond
	cl, done := dial(t, srv) // greeting read, flags sent, then silence
	start := time.Now()
	if _, err := cl.br.ReadByte(); err == nil {
		t.Fatal("server sent data to a silent client")
	}
	if err := waitErr(t, done); err == nil {
		t.Fatal("ServeConn returned nil after a handshake timeout")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("handshake timeout took %v", d)
	}
}

func TestServeConnCancelDuringHandshake(t *testing.T) {
	srv := newTestServer(t, Export{Name: "a", Backend: newMem(4096)})
	a, b := net.Pipe()
	defer b.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.ServeConn(ctx, a) }()
	greeting := make([]byte, 18)
	b.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(b, greeting); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := waitErr(t, done); err != nil {
		t.Fatalf("ServeConn cut short by ctx returned %v, want nil", err)
	}
}
