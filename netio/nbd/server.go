// Package nbd is a Network Block Device server: the NBD protocol (fixed
// newstyle handshake, simple replies) over a Backend that stores the bytes.
//
// Exports: the server finds them through a Catalog when a client asks, so
// they may come and go while it runs (NewCatalogServer); NewServer serves a
// fixed list through a catalog built over it. Each lookup runs under the
// handshake's context, which ends with the handshake timeout or shutdown.
// An export the catalog returns is checked like one given to NewServer (and
// its name must be the one asked for); a bad one is logged and treated as a
// failed lookup. The connection keeps its own copy of the export it
// negotiated.
//
// What the server speaks:
//
//   - Handshake: fixed newstyle only. The server sends NBDMAGIC, IHAVEOPT and
//     the handshake flags FIXED_NEWSTYLE|NO_ZEROES; a client whose flags lack
//     FIXED_NEWSTYLE or carry an unknown bit is disconnected.
//   - Options: NBD_OPT_GO and NBD_OPT_INFO (NBD_INFO_EXPORT and
//     NBD_INFO_BLOCK_SIZE always, NBD_INFO_NAME and NBD_INFO_DESCRIPTION when
//     requested), NBD_OPT_LIST (the catalog's list, less entries whose name
//     or description breaks the protocol's rules for strings),
//     NBD_OPT_ABORT (ACK, then close), and NBD_OPT_EXPORT_NAME. The latter
//     has no error reply in the protocol, so it is implemented as specified:
//     a known export enters transmission; an unknown one, or a failed
//     lookup, closes the connection. Every other option gets
//     NBD_REP_ERR_UNSUP (so no TLS, structured replies, metadata contexts or
//     extended headers).
//   - Option errors: INFO or GO of an unknown export is NBD_REP_ERR_UNKNOWN;
//     so is a failed lookup (the code means "the requested export is not
//     available"), with the lookup error in the message. A failed listing
//     is NBD_REP_ERR_PLATFORM with the error in the message (the protocol
//     has no code for a transient failure on the server; nbdkit answers the
//     same). The handshake goes on after an error reply. Messages are valid
//     UTF-8 without NUL, at most 256 bytes. A lookup cut short by the
//     handshake timeout or by shutdown closes the connection.
//   - Limits during the handshake: option data longer than 16 KiB, more
//     than 256 options, or a handshake that takes longer than the handshake
//     timeout (30 s) close the connection; a name longer than 4096 bytes in
//     an INFO or GO option gets NBD_REP_ERR_TOO_BIG.
//   - Commands: READ, WRITE, FLUSH, TRIM, WRITE_ZEROES (NO_HOLE accepted and
//     ignored) and DISC; FUA is honoured on WRITE, TRIM and WRITE_ZEROES and
//     accepted (ignored) on the others. Replies are simple replies, sent in
//     completion order, not request order.
//   - Transmission flags: HAS_FLAGS and SEND_FLUSH always; SEND_FUA,
//     SEND_TRIM and SEND_WRITE_ZEROES unless the export is read-only (then
//     READ_ONLY instead); CAN_MULTI_CONN when Export.MultiConn is set.
//   - Request errors: an unknown command or a flag not valid for the command
//     (anything but FUA, plus NO_HOLE on WRITE_ZEROES), a READ or WRITE of
//     length 0 or over 32 MiB: EINVAL. A range past the end of the export:
//     EINVAL for READ and TRIM, ENOSPC for WRITE and WRITE_ZEROES (the
//     protocol's SHOULD for writes). WRITE, TRIM or WRITE_ZEROES on a
//     read-only export: EPERM. A refused WRITE's payload is read and
//     discarded, except for one over 32 MiB, which is answered EINVAL and
//     then ends the connection. A backend error is EIO, or ENOSPC when it
//     wraps ErrNoSpace; a failed READ sends no payload. TRIM and
//     WRITE_ZEROES of length 0 succeed without calling the backend.
//
// Concurrency: one goroutine reads requests from the socket in order; each
// request runs on a worker goroutine of the connection (kept for its next
// requests), at most 64 (and 64 MiB of request buffers) per connection,
// after which reading stops until one completes; a request's worker writes
// its reply itself unless another is writing, which then writes it too
// (replies pending together leave in one write). A worker that is to write
// while other requests still run yields once first, so that replies
// finishing together share a write (one syscall, one wake-up of the client).
// NBD_CMD_DISC and server shutdown stop
// reading, wait for the requests in flight, send their replies and close.
//
// The server imposes no timeout on a backend call. A Backend must return in
// bounded time (the cluster backend gives up with an error after a bounded
// wait); a call that never returns holds its connection open forever.
package nbd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
	"unicode/utf8"
)

// Backend stores the bytes of one export. The server calls it from many
// goroutines at once (one per request in flight), so it must be safe for
// concurrent use. Offsets and lengths passed to it are always within
// [0, Size()) as Size() was when the connection negotiated the export.
//
// An error makes the request fail with EIO, or ENOSPC when it wraps ErrNoSpace.
// Every method must return in bounded time; ctx is cancelled only when the
// connection breaks (the reply could no longer be delivered).
type Backend interface {
	// Size is the export size in bytes. It is read once per connection,
	// at negotiation.
	Size() uint64
	// ReadAt fills all of p from offset off, or returns an error.
	ReadAt(ctx context.Context, p []byte, off uint64) error
	// WriteAt writes p at offset off. With fua the data must be durable
	// before WriteAt returns.
	WriteAt(ctx context.Context, p []byte, off uint64, fua bool) error
	// Flush makes every write that completed before the call durable.
	Flush(ctx context.Context) error
	// Trim is a hint that the range is no longer needed; its contents
	// become unspecified until rewritten.
	Trim(ctx context.Context, off, length uint64, fua bool) error
	// WriteZeroes makes the range read back as zeroes.
	WriteZeroes(ctx context.Context, off, length uint64, fua bool) error
}

// ErrNoSpace is the error a Backend wraps to make a request fail with ENOSPC
// rather than EIO.
var ErrNoSpace = errors.New("nbd: no space left on the export's storage")

// Export is one named block device the server offers.
type Export struct {
	// Name is what clients ask for. The empty name is allowed: it is the
	// protocol's "default export", chosen by clients that give no name
	// (for example nbd://host:port with no path). It is an ordinary name,
	// not an alias for another export.
	Name string
	// Description is shown by NBD_OPT_LIST and, when asked for, by
	// NBD_OPT_INFO and NBD_OPT_GO.
	Description string
	Backend     Backend
	// ReadOnly advertises NBD_FLAG_READ_ONLY; WRITE, TRIM and WRITE_ZEROES
	// then fail with EPERM.
	ReadOnly bool
	// MultiConn advertises NBD_FLAG_CAN_MULTI_CONN: the backend promises
	// that FLUSH and FUA on one connection cover writes completed on every
	// connection to it.
	MultiConn bool
}

// Catalog finds the exports a server offers. The server calls it during
// handshakes, from many goroutines at once, so it must be safe for
// concurrent use. ctx ends with the handshake (its timeout, or shutdown);
// each call must return soon after ctx is done, since the server waits for
// it. The server keeps its own copy of what a call returns.
type Catalog interface {
	// Export returns the export called name, whose Name must be name. It
	// returns an error wrapping ErrUnknownExport when there is none; any
	// other error means the lookup itself failed. name is always a valid
	// export name (see NewServer).
	Export(ctx context.Context, name string) (Export, error)
	// List returns the exports NBD_OPT_LIST shows. Only Name and
	// Description are used; Backend may be nil.
	List(ctx context.Context) ([]Export, error)
}

// ErrUnknownExport is the error a Catalog wraps when no export has the name
// asked for.
var ErrUnknownExport = errors.New("nbd: unknown export")

// Server serves the exports of a Catalog. It is safe for concurrent use;
// one Server may serve many listeners and connections at once.
type Server struct {
	catalog Catalog
	log     *slog.Logger

	// Per-connection limits; the defaults are set by NewServer and changed
	// only by tests.
	handshakeTimeout time.Duration // whole handshake, from accept to GO
	shutdownGrace    time.Duration // for sending the last replies on shutdown
	maxInFlight      int           // requests in flight
	maxInFlightBytes int           // READ/WRITE buffer bytes in flight
}

// NewServer checks the exports and returns a server for them. Names must be
// unique, valid UTF-8 without NUL and at most 4096 bytes (the empty name is
// the default export); descriptions likewise; every export needs a Backend.
// A nil log discards the server's logs.
func NewServer(exports []Export, log *slog.Logger) (*Server, error) {
	if len(exports) == 0 {
		return nil, errors.New("nbd: no exports")
	}
	c := &staticCatalog{
		exports: append([]Export(nil), exports...),
		byName:  make(map[string]*Export, len(exports)),
	}
	for i := range c.exports {
		e := &c.exports[i]
		if err := checkExport(e); err != nil {
			return nil, err
		}
		if _, dup := c.byName[e.Name]; dup {
			return nil, fmt.Errorf("nbd: export %q listed twice", e.Name)
		}
		c.byName[e.Name] = e
	}
	return NewCatalogServer(c, log)
}

// NewCatalogServer returns a server for the exports c finds. A nil log
// discards the server's logs.
func NewCatalogServer(c Catalog, log *slog.Logger) (*Server, error) {
	if c == nil {
		return nil, errors.New("nbd: no catalog")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		catalog:          c,
		log:              log,
		handshakeTimeout: 30 * time.Second,
		shutdownGrace:    10 * time.Second,
		maxInFlight:      64,
		maxInFlightBytes: 2 * MaxRequestLen,
	}, nil
}

// staticCatalog is the fixed list of exports given to NewServer.
type staticCatalog struct {
	exports []Export
	byName  map[string]*Export
}

func (c *staticCatalog) Export(_ context.Context, name string) (Export, error) {
	e := c.byName[name]
	if e == nil {
		return Export{}, ErrUnknownExport
	}
	return *e, nil
}

func (c *staticCatalog) List(context.Context) ([]Export, error) {
	return append([]Export(nil), c.exports...), nil
}

// checkExport applies NewServer's rules to one export.
func checkExport(e *Export) error {
	if err := checkListed(e); err != nil {
		return err
	}
	if e.Backend == nil {
		return fmt.Errorf("nbd: export %q has no backend", e.Name)
	}
	return nil
}

// checkListed applies the rules for strings to what NBD_OPT_LIST shows of
// an export: its name and description.
func checkListed(e *Export) error {
	if err := checkString(e.Name); err != nil {
		return fmt.Errorf("nbd: export name %.40q: %w", e.Name, err)
	}
	if err := checkString(e.Description); err != nil {
		return fmt.Errorf("nbd: export %q description: %w", e.Name, err)
	}
	return nil
}

// checkString applies the protocol's rules for strings.
func checkString(v string) error {
	switch {
	case len(v) > maxStringLen:
		return fmt.Errorf("longer than %d bytes", maxStringLen)
	case !utf8.ValidString(v):
		return errors.New("not valid UTF-8")
	}
	for i := 0; i < len(v); i++ {
		if v[i] == 0 {
			return errors.New("contains NUL")
		}
	}
	return nil
}

// Serve accepts connections on l and serves each on its own goroutine until
// ctx is done or Accept fails. Then it stops accepting (closing l), lets the
// requests in flight on every connection finish and send their replies,
// closes the connections and returns: nil when ctx ended it, the Accept
// error otherwise.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	addr := l.Addr().String()
	connCtx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(ctx, func() { l.Close() })
	var wg sync.WaitGroup
	s.log.Info("nbd: serving", "addr", addr)
	for {
		c, err := l.Accept()
		if err != nil {
			stop()
			l.Close()
			cancel()  // connections stop reading and drain what is in flight
			wg.Wait() // ... and are closed
			if ctx.Err() != nil {
				s.log.Info("nbd: stopped", "addr", addr)
				return nil
			}
			s.log.Error("nbd: accept failed", "addr", addr, "err", err)
			return err
		}
		wg.Go(func() {
			if err := s.ServeConn(connCtx, c); err != nil {
				s.log.Warn("nbd: connection ended with error", "remote", c.RemoteAddr().String(), "err", err)
			}
		})
	}
}

// ServeConn runs the handshake and then the transmission phase on c, and
// closes c before returning. It returns nil when the client ends the session
// cleanly (NBD_OPT_ABORT, NBD_CMD_DISC, or closing the connection between
// messages) or ctx ends it, and an error when the client breaks the protocol
// or the connection fails. When ctx is done the handshake is cut short; in
// the transmission phase the server stops reading requests, lets those in
// flight finish and reply, and closes.
func (s *Server) ServeConn(ctx context.Context, c net.Conn) error {
	defer c.Close()
	log := s.log.With("remote", c.RemoteAddr().String())
	log.Debug("nbd: connection opened")

	hs, err := s.handshake(ctx, c, log)
	if err != nil || hs == nil {
		if err != nil && ctx.Err() != nil {
			err = nil // cut short by shutdown
		}
		log.Debug("nbd: connection closed during handshake", "err", err)
		return err
	}
	log = log.With("export", hs.export.Name)
	log.Info("nbd: export negotiated", "size", hs.size, "flags", fmt.Sprintf("%#x", hs.tflags))
	err = s.transmit(ctx, c, hs, log)
	log.Info("nbd: connection closed", "err", err)
	return err
}
