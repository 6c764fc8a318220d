package nbd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// testCatalog is a Catalog whose exports a test changes while the server
// runs, and whose answers for some names (or for List) a test replaces.
type testCatalog struct {
	mu      sync.Mutex
	exports []Export // List's answer, and where Export looks
	asked   []string // names Export was called with
	special map[string]func(ctx context.Context) (Export, error)
	list    func(ctx context.Context) ([]Export, error) // replaces List's answer when set
}

func (c *testCatalog) Export(ctx context.Context, name string) (Export, error) {
	c.mu.Lock()
	c.asked = append(c.asked, name)
	f := c.special[name]
	i := slices.IndexFunc(c.exports, func(e Export) bool { return e.Name == name })
	var e Export
	if i >= 0 {
		e = c.exports[i]
	}
	c.mu.Unlock()
	switch {
	case f != nil:
		return f(ctx)
	case i < 0:
		return Export{}, fmt.Errorf("volume %q: %w", name, ErrUnknownExport)
	}
	return e, nil
}

func (c *testCatalog) List(ctx context.Context) ([]Export, error) {
	c.mu.Lock()
	f, exports := c.list, slices.Clone(c.exports)
	c.mu.Unlock()
	if f != nil {
		return f(ctx)
	}
	return exports, nil
}

// set adds e, or replaces the export of the same name.
func (c *testCatalog) set(e Export) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.exports = slices.DeleteFunc(c.exports, func(x Export) bool { return x.Name == e.Name })
	c.exports = append(c.exports, e)
}

func (c *testCatalog) remove(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.exports = slices.DeleteFunc(c.exports, func(x Export) bool { return x.Name == name })
}

func newCatalogServer(t testing.TB, c Catalog) *Server {
	t.Helper()
	srv, err := NewCatalogServer(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// optErr sends an option, checks that the answer is one error reply of
// type typ and returns its message.
func optErr(t *testing.T, cl *tclient, opt uint32, data []byte, typ uint32) string {
	t.Helper()
	rs, err := cl.opt(opt, data)
	if err != nil || len(rs) != 1 || rs[0].typ != typ {
		t.Fatalf("%s %q: %+v %v, want one reply %#x", optName(opt), data, rs, err, typ)
	}
	return string(rs[0].data)
}

// recvWithin receives from ch, failing the test after 10 s.
func recvWithin[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("nothing received within 10s")
		panic("unreachable")
	}
}

// listNames returns the names in the NBD_REP_SERVER replies of a LIST.
func listNames(t *testing.T, rs []optReply) []string {
	t.Helper()
	if len(rs) == 0 || rs[len(rs)-1].typ != repAck {
		t.Fatalf("LIST: %+v, want NBD_REP_SERVER replies and an ACK", rs)
	}
	var names []string
	for _, r := range rs[:len(rs)-1] {
		n := binary.BigEndian.Uint32(r.data)
		if r.typ != repServer || int(n) > len(r.data)-4 {
			t.Fatalf("LIST entry: type %#x data %q", r.typ, r.data)
		}
		names = append(names, string(r.data[4:4+n]))
	}
	return names
}

func TestNewCatalogServerNil(t *testing.T) {
	if srv, err := NewCatalogServer(nil, nil); err == nil || srv != nil {
		t.Fatalf("NewCatalogServer(nil) = %v, %v; want an error", srv, err)
	}
}

// Exports added or removed after the server started are found, or not.
func TestCatalogExportsChange(t *testing.T) {
	cat := &testCatalog{exports: []Export{{Name: "a", Backend: newMem(4096)}}}
	srv := newCatalogServer(t, cat)

	cl, _ := dial(t, srv)
	optErr(t, cl, optGo, infoData("b"), repErrUnknown)

	b := newMem(1 << 16)
	cat.set(Export{Name: "b", Description: "new volume", Backend: b})
	cl, _ = dial(t, srv)
	rs, err := cl.opt(optInfo, infoData("b", infoName, infoDescription))
	if err != nil {
		t.Fatal(err)
	}
	const rw = tflagHasFlags | tflagSendFlush | tflagSendFUA | tflagSendTrim | tflagSendWriteZeroes
	checkInfo(t, rs, 1<<16, rw, "b", "new volume")
	rs, err = cl.opt(optList, nil)
	if got := listNames(t, rs); err != nil || !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("LIST: %q %v, want [a b]", got, err)
	}

	cat.remove("a")
	cl, done := dial(t, srv)
	optErr(t, cl, optGo, infoData("a"), repErrUnknown)
	if _, err := cl.go_("b"); err != nil {
		t.Fatal(err)
	}
	// The connection keeps the export it negotiated: the catalog changing
	// it now (read-only) does not affect it.
	cat.set(Export{Name: "b", Backend: b, ReadOnly: true})
	cl.write(10, []byte("still writable"), 0)
	if got := b.snapshot(10, 14); string(got) != "still writable" {
		t.Fatalf("backend holds %q", got)
	}
	if err := cl.disc(); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, done); err != nil {
		t.Fatal(err)
	}
}

// A failed lookup gets an error reply naming the failure, and the
// connection can go on to another export.
func TestCatalogLookupFails(t *testing.T) {
	good := newMem(4096)
	cat := &testCatalog{
		exports: []Export{{Name: "good", Backend: good}},
		special: map[string]func(context.Context) (Export, error){
			"flaky": func(context.Context) (Export, error) {
				return Export{}, errors.New("cluster unreachable: no quorum")
			},
			"noisy": func(context.Context) (Export, error) {
				return Export{}, errors.New("bo\x00om! \xff" + strings.Repeat("é", 300))
			},
		},
	}
	srv := newCatalogServer(t, cat)
	cl, done := dial(t, srv)
	for _, opt := range []uint32{optInfo, optGo} {
		msg := optErr(t, cl, opt, infoData("flaky", infoName), repErrUnknown)
		if !strings.Contains(msg, "cluster unreachable: no quorum") {
			t.Errorf("%s of flaky: message %q lacks the lookup error", optName(opt), msg)
		}
	}
	// The message is cut inside a rune: 31 bytes before the first é.
	msg := optErr(t, cl, optGo, infoData("noisy"), repErrUnknown)
	if !utf8.ValidString(msg) || strings.ContainsRune(msg, 0) || len(msg) != maxMessageLen-1 || !strings.Contains(msg, "boom! \uFFFDéé") {
		t.Errorf("message %q (%d bytes): want valid UTF-8, no NUL, cut to %d bytes at a rune boundary, with the error text", msg, len(msg), maxMessageLen-1)
	}
	if _, err := cl.go_("good"); err != nil {
		t.Fatalf("GO after a failed lookup: %v", err)
	}
	cl.write(0, []byte("ok"), 0)
	if err := cl.disc(); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, done); err != nil {
		t.Fatal(err)
	}

	// EXPORT_NAME has no error reply: the server closes.
	cl, done = dial(t, srv)
	cl.sendOpt(optExportName, []byte("flaky"))
	if _, err := cl.br.ReadByte(); err == nil {
		t.Fatal("server answered EXPORT_NAME whose lookup failed")
	}
	if err := waitErr(t, done); err == nil || !strings.Contains(err.Error(), "cluster unreachable") {
		t.Fatalf("ServeConn: %v, want the lookup error", err)
	}
}

// A failed List gets an error reply and the handshake goes on; exports
// List returns with a bad name or description are not shown.
func TestCatalogList(t *testing.T) {
	cat := &testCatalog{exports: []Export{{Name: "a", Backend: newMem(4096)}}}
	var failing atomic.Bool
	failing.Store(true)
	cat.list = func(context.Context) ([]Export, error) {
		if failing.Load() {
			return nil, errors.New("volume table unavailable")
		}
		return []Export{
			{Name: "a", Description: "shown"},
			{Name: "bad\x00name"},
			{Name: "bad description", Description: "\xff"},
			{Name: strings.Repeat("x", maxStringLen+1)},
			{Name: ""}, // no Backend is needed to be listed
		}, nil
	}
	srv := newCatalogServer(t, cat)
	cl, _ := dial(t, srv)
	msg := optErr(t, cl, optList, nil, repErrPlatform)
	if !strings.Contains(msg, "volume table unavailable") {
		t.Errorf("LIST message %q lacks the error", msg)
	}
	failing.Store(false)
	rs, err := cl.opt(optList, nil)
	if got := listNames(t, rs); err != nil || !slices.Equal(got, []string{"a", ""}) {
		t.Fatalf("LIST: %q %v, want [a \"\"]", got, err)
	}
	if _, err := cl.go_("a"); err != nil {
		t.Fatalf("GO after a failed LIST: %v", err)
	}
}

// An export from the catalog that NewServer would refuse, or under another
// name, is a failed lookup; names no export can have never reach the
// catalog.
func TestCatalogBadExport(t *testing.T) {
	m := newMem(4096)
	cat := &testCatalog{
		exports: []Export{
			{Name: "good", Backend: m},
			{Name: "nobackend"},
			{Name: "baddesc", Description: "a\x00b", Backend: m},
		},
		special: map[string]func(context.Context) (Export, error){
			"alias": func(context.Context) (Export, error) { return Export{Name: "good", Backend: m}, nil },
		},
	}
	srv := newCatalogServer(t, cat)
	cl, done := dial(t, srv)
	for _, name := range []string{"nobackend", "baddesc", "alias"} {
		msg := optErr(t, cl, optGo, infoData(name, infoName, infoDescription), repErrUnknown)
		if msg == "" || msg == "unknown export" {
			t.Errorf("GO of %s: message %q, want the reason", name, msg)
		}
	}
	for _, name := range []string{"a\x00b", "\xff"} {
		optErr(t, cl, optGo, infoData(name), repErrUnknown)
	}
	cat.mu.Lock()
	asked := slices.Clone(cat.asked)
	cat.mu.Unlock()
	if !slices.Equal(asked, []string{"nobackend", "baddesc", "alias"}) {
		t.Errorf("catalog asked for %q", asked)
	}
	if _, err := cl.go_("good"); err != nil {
		t.Fatal(err)
	}
	if err := cl.disc(); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, done); err != nil {
		t.Fatal(err)
	}

	cl, done = dial(t, srv)
	cl.sendOpt(optExportName, []byte("nobackend"))
	if _, err := cl.br.ReadByte(); err == nil {
		t.Fatal("server answered EXPORT_NAME of an export without a backend")
	}
	if err := waitErr(t, done); err == nil {
		t.Fatal("ServeConn returned nil")
	}
}

// blockingCatalog waits in every call until ctx is done (or a bound passes)
// and reports what ctx said.
type blockingCatalog struct {
	entered chan struct{} // one send per call
	ctxErr  chan error    // ctx.Err() when the call returned
}

func newBlockingCatalog() *blockingCatalog {
	return &blockingCatalog{entered: make(chan struct{}, 8), ctxErr: make(chan error, 8)}
}

func (c *blockingCatalog) wait(ctx context.Context) error {
	c.entered <- struct{}{}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
	}
	c.ctxErr <- ctx.Err()
	if ctx.Err() == nil {
		return errors.New("lookup's context still live after 5s")
	}
	return ctx.Err()
}

func (c *blockingCatalog) Export(ctx context.Context, _ string) (Export, error) {
	return Export{}, c.wait(ctx)
}

func (c *blockingCatalog) List(ctx context.Context) ([]Export, error) { return nil, c.wait(ctx) }

// A slow lookup does not hold the connection past the handshake timeout:
// its context expires then.
func TestCatalogLookupHandshakeTimeout(t *testing.T) {
	cat := newBlockingCatalog()
	srv := newCatalogServer(t, cat)
	srv.handshakeTimeout = 300 * time.Millisecond
	for _, opt := range []uint32{optGo, optList, optExportName} {
		start := time.Now()
		cl, done := dial(t, srv)
		data := infoData("slow")
		switch opt {
		case optList:
			data = nil
		case optExportName:
			data = []byte("slow")
		}
		cl.sendOpt(opt, data)
		recvWithin(t, cat.entered)
		if _, err := cl.br.ReadByte(); err == nil {
			t.Fatalf("%s: server answered a lookup that outlived the handshake timeout", optName(opt))
		}
		if err := waitErr(t, done); err == nil {
			t.Errorf("%s: ServeConn returned nil after the handshake timeout", optName(opt))
		}
		if err := recvWithin(t, cat.ctxErr); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: lookup's context ended with %v, want DeadlineExceeded", optName(opt), err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s: connection held %v", optName(opt), d)
		}
	}
}

// Shutdown during a lookup cancels its context; ServeConn then returns nil.
func TestCatalogLookupShutdown(t *testing.T) {
	cat := newBlockingCatalog()
	srv := newCatalogServer(t, cat)
	a, b := net.Pipe()
	defer b.Close()
	b.SetDeadline(time.Now().Add(10 * time.Second))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.ServeConn(ctx, a) }()
	cl, err := newClient(t, b, 3)
	if err != nil {
		t.Fatal(err)
	}
	cl.sendOpt(optGo, infoData("x"))
	recvWithin(t, cat.entered)
	cancel()
	if err := waitErr(t, done); err != nil {
		t.Fatalf("ServeConn cut short during a lookup returned %v, want nil", err)
	}
	if err := recvWithin(t, cat.ctxErr); !errors.Is(err, context.Canceled) {
		t.Fatalf("lookup's context ended with %v, want Canceled", err)
	}
	if _, err := io.ReadFull(cl.br, make([]byte, 1)); err == nil {
		t.Fatal("server answered after shutdown")
	}
}
