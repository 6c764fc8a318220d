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
	"strings"
	"time"
	"unicode/utf8"
)

// negotiated is the outcome of a handshake that reached transmission.
type negotiated struct {
	export *Export
	size   uint64
	tflags uint16
	br     *bufio.Reader // may already hold the first requests
}

// hsConn carries the state of one handshake.
type hsConn struct {
	s        *Server
	br       *bufio.Reader
	bw       *bufio.Writer
	log      *slog.Logger
	noZeroes bool
	data     []byte // option data, reused between options
}

const connReadBuf = 32 << 10

var zeroPad [124]byte

// handshake runs the fixed newstyle handshake. It returns (nil, nil) when the
// client ended the session cleanly (NBD_OPT_ABORT, or closing between
// options) and the negotiated export when transmission begins.
func (s *Server) handshake(ctx context.Context, c net.Conn, log *slog.Logger) (*negotiated, error) {
	deadline := time.Now().Add(s.handshakeTimeout)
	if err := c.SetDeadline(deadline); err != nil {
		return nil, err
	}
	// Shutdown during the handshake interrupts blocked reads and writes.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	// Catalog lookups end with the handshake too.
	hctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	h := &hsConn{s: s, br: bufio.NewReaderSize(c, connReadBuf), bw: bufio.NewWriterSize(c, 4096), log: log}
	neg, err := h.run(hctx)
	if err != nil || neg == nil {
		return nil, err
	}
	if !stop() {
		return nil, ctx.Err() // shutdown raced with the end of the handshake
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	return neg, nil
}

// run speaks the handshake; ctx bounds catalog lookups.
func (h *hsConn) run(ctx context.Context) (*negotiated, error) {
	var b [18]byte
	binary.BigEndian.PutUint64(b[0:], nbdMagic)
	binary.BigEndian.PutUint64(b[8:], ihaveoptMagic)
	binary.BigEndian.PutUint16(b[16:], flagFixedNewstyle|flagNoZeroes)
	h.bw.Write(b[:18])
	if err := h.bw.Flush(); err != nil {
		return nil, fmt.Errorf("nbd: sending greeting: %w", err)
	}

	if _, err := io.ReadFull(h.br, b[:4]); err != nil {
		return nil, fmt.Errorf("nbd: reading client flags: %w", err)
	}
	cflags := binary.BigEndian.Uint32(b[:4])
	if cflags&^clientFlagsKnown != 0 {
		return nil, fmt.Errorf("nbd: client flags %#x carry unknown bits", cflags)
	}
	if cflags&clientFlagFixedNewstyle == 0 {
		return nil, errors.New("nbd: client does not speak fixed newstyle")
	}
	h.noZeroes = cflags&clientFlagNoZeroes != 0

	for n := 0; ; n++ {
		if _, err := io.ReadFull(h.br, b[:16]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, nil // client went away between options
			}
			return nil, fmt.Errorf("nbd: reading option: %w", err)
		}
		if m := binary.BigEndian.Uint64(b[0:]); m != ihaveoptMagic {
			return nil, fmt.Errorf("nbd: bad option magic %#x", m)
		}
		opt := binary.BigEndian.Uint32(b[8:])
		length := binary.BigEndian.Uint32(b[12:])
		if n >= maxOptions {
			return nil, fmt.Errorf("nbd: more than %d options", maxOptions)
		}
		if length > maxOptionLen {
			return nil, fmt.Errorf("nbd: option %s carries %d bytes, more than %d", optName(opt), length, maxOptionLen)
		}
		if cap(h.data) < int(length) {
			h.data = make([]byte, length)
		}
		data := h.data[:length]
		if _, err := io.ReadFull(h.br, data); err != nil {
			return nil, fmt.Errorf("nbd: reading option %s data: %w", optName(opt), err)
		}
		h.log.Debug("nbd: option", "opt", optName(opt), "len", length)

		neg, done, err := h.option(ctx, opt, data)
		switch {
		case err != nil:
			return nil, err
		case done && neg == nil:
			return nil, nil // NBD_OPT_ABORT; its ACK is already sent, or not wanted
		}
		if err := h.bw.Flush(); err != nil {
			return nil, fmt.Errorf("nbd: answering option %s: %w", optName(opt), err)
		}
		if done {
			return neg, nil
		}
	}
}

// option answers one option. done reports that the handshake is over: with
// neg set transmission begins, with neg nil the session ends.
func (h *hsConn) option(ctx context.Context, opt uint32, data []byte) (neg *negotiated, done bool, err error) {
	switch opt {
	case optExportName:
		return h.exportName(ctx, data)
	case optAbort:
		// The client may close without waiting for the ACK; a failure to
		// send it is no error.
		h.reply(opt, repAck, nil)
		h.bw.Flush()
		return nil, true, nil
	case optList:
		if len(data) != 0 {
			return nil, false, h.replyErr(opt, repErrInvalid, "NBD_OPT_LIST takes no data")
		}
		return nil, false, h.list(ctx)
	case optInfo, optGo:
		return h.infoGo(ctx, opt, data)
	default:
		return nil, false, h.replyErr(opt, repErrUnsup, "option not supported")
	}
}

// list answers NBD_OPT_LIST with the catalog's exports, skipping those
// whose name or description breaks the protocol's rules for strings.
func (h *hsConn) list(ctx context.Context) error {
	exports, err := h.s.catalog.List(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("nbd: NBD_OPT_LIST: listing exports: %w", err)
		}
		h.log.Warn("nbd: listing exports failed", "err", err)
		return h.replyErr(optList, repErrPlatform, errorMessage("listing exports failed: ", err))
	}
	for i := range exports {
		e := &exports[i]
		if err := checkListed(e); err != nil {
			h.log.Error("nbd: catalog listed a bad export; not shown", "err", err)
			continue
		}
		p := make([]byte, 4, 4+len(e.Name)+len(e.Description))
		binary.BigEndian.PutUint32(p, uint32(len(e.Name)))
		p = append(append(p, e.Name...), e.Description...)
		if err := h.reply(optList, repServer, p); err != nil {
			return err
		}
	}
	return h.reply(optList, repAck, nil)
}

// lookup asks the catalog for the export called name and checks what it
// returns; the export returned is the connection's own copy. A catalog
// error is returned as is; a bad export is logged and reported as an error
// that does not wrap ErrUnknownExport. A name no export can have (one that
// breaks the rules for strings) is unknown without asking the catalog.
func (h *hsConn) lookup(ctx context.Context, name string) (*Export, error) {
	if checkString(name) != nil {
		return nil, ErrUnknownExport
	}
	e, err := h.s.catalog.Export(ctx, name)
	if err != nil {
		return nil, err
	}
	if e.Name != name {
		err = fmt.Errorf("nbd: catalog returned export %.64q", e.Name)
	} else {
		err = checkExport(&e)
	}
	if err != nil {
		h.log.Error("nbd: catalog returned a bad export", "name", fmt.Sprintf("%.64q", name), "err", err)
		return nil, err
	}
	return &e, nil
}

// exportName answers NBD_OPT_EXPORT_NAME, which has no error reply: an
// unknown export or a failed lookup ends the session.
func (h *hsConn) exportName(ctx context.Context, data []byte) (*negotiated, bool, error) {
	if len(data) > maxStringLen {
		return nil, true, fmt.Errorf("nbd: NBD_OPT_EXPORT_NAME name of %d bytes", len(data))
	}
	e, err := h.lookup(ctx, string(data))
	switch {
	case errors.Is(err, ErrUnknownExport):
		return nil, true, fmt.Errorf("nbd: NBD_OPT_EXPORT_NAME for unknown export %.64q: %w", data, err)
	case err != nil:
		return nil, true, fmt.Errorf("nbd: NBD_OPT_EXPORT_NAME for export %.64q: lookup failed: %w", data, err)
	}
	neg := h.s.negotiate(e, h.br)
	var b [10]byte
	binary.BigEndian.PutUint64(b[0:], neg.size)
	binary.BigEndian.PutUint16(b[8:], neg.tflags)
	h.bw.Write(b[:])
	if !h.noZeroes {
		h.bw.Write(zeroPad[:])
	}
	return neg, true, nil
}

// infoGo answers NBD_OPT_INFO and NBD_OPT_GO. Data: 32-bit name length,
// name, 16-bit count of information requests, 16 bits each.
func (h *hsConn) infoGo(ctx context.Context, opt uint32, data []byte) (*negotiated, bool, error) {
	if len(data) < 6 {
		return nil, false, h.replyErr(opt, repErrInvalid, "option data too short")
	}
	nameLen := binary.BigEndian.Uint32(data)
	if uint64(nameLen) > uint64(len(data)-6) {
		return nil, false, h.replyErr(opt, repErrInvalid, "name length exceeds option data")
	}
	if nameLen > maxStringLen {
		return nil, false, h.replyErr(opt, repErrTooBig, "export name longer than 4096 bytes")
	}
	name := data[4 : 4+nameLen]
	rest := data[4+nameLen:]
	nreq := int(binary.BigEndian.Uint16(rest))
	reqs := rest[2:]
	if len(reqs) != 2*nreq {
		return nil, false, h.replyErr(opt, repErrInvalid, "information request count does not match option length")
	}
	wantName, wantDesc := false, false
	for i := 0; i < nreq; i++ {
		switch binary.BigEndian.Uint16(reqs[2*i:]) {
		case infoName:
			wantName = true
		case infoDescription:
			wantDesc = true
		}
	}
	e, err := h.lookup(ctx, string(name))
	switch {
	case err != nil && ctx.Err() != nil:
		// Handshake timeout or shutdown: no reply could be sent anyway.
		return nil, true, fmt.Errorf("nbd: %s: looking up export %.64q: %w", optName(opt), name, err)
	case errors.Is(err, ErrUnknownExport):
		return nil, false, h.replyErr(opt, repErrUnknown, "unknown export")
	case err != nil:
		// The protocol has no code for "try again later"; UNKNOWN means
		// "the requested export is not available", which it is not.
		h.log.Warn("nbd: export lookup failed", "opt", optName(opt), "name", fmt.Sprintf("%.64q", name), "err", err)
		return nil, false, h.replyErr(opt, repErrUnknown, errorMessage("export lookup failed: ", err))
	}
	neg := h.s.negotiate(e, h.br)

	var p [14]byte
	binary.BigEndian.PutUint16(p[0:], infoExport)
	binary.BigEndian.PutUint64(p[2:], neg.size)
	binary.BigEndian.PutUint16(p[10:], neg.tflags)
	if err := h.reply(opt, repInfo, p[:12]); err != nil {
		return nil, false, err
	}
	binary.BigEndian.PutUint16(p[0:], infoBlockSize)
	binary.BigEndian.PutUint32(p[2:], minBlockSize)
	binary.BigEndian.PutUint32(p[6:], preferredBlockSize)
	binary.BigEndian.PutUint32(p[10:], MaxRequestLen)
	if err := h.reply(opt, repInfo, p[:14]); err != nil {
		return nil, false, err
	}
	if wantName {
		if err := h.replyInfoString(opt, infoName, e.Name); err != nil {
			return nil, false, err
		}
	}
	if wantDesc && e.Description != "" {
		if err := h.replyInfoString(opt, infoDescription, e.Description); err != nil {
			return nil, false, err
		}
	}
	if err := h.reply(opt, repAck, nil); err != nil {
		return nil, false, err
	}
	if opt == optGo {
		return neg, true, nil
	}
	return nil, false, nil
}

func (h *hsConn) replyInfoString(opt uint32, typ uint16, v string) error {
	p := make([]byte, 2, 2+len(v))
	binary.BigEndian.PutUint16(p, typ)
	return h.reply(opt, repInfo, append(p, v...))
}

// reply buffers one option reply; the caller flushes.
func (h *hsConn) reply(opt, typ uint32, data []byte) error {
	var b [20]byte
	binary.BigEndian.PutUint64(b[0:], optReplyMagic)
	binary.BigEndian.PutUint32(b[8:], opt)
	binary.BigEndian.PutUint32(b[12:], typ)
	binary.BigEndian.PutUint32(b[16:], uint32(len(data)))
	h.bw.Write(b[:])
	_, err := h.bw.Write(data)
	return err
}

// maxMessageLen bounds the messages of error replies (the protocol's SHOULD
// for strings).
const maxMessageLen = 256

// errorMessage makes the message of an error reply from prefix and err:
// valid UTF-8 (invalid bytes become U+FFFD), without NUL, at most
// maxMessageLen bytes.
func errorMessage(prefix string, err error) string {
	msg := strings.Map(func(r rune) rune {
		if r == 0 {
			return -1
		}
		return r
	}, prefix+err.Error())
	if len(msg) > maxMessageLen {
		n := maxMessageLen
		for !utf8.RuneStart(msg[n]) {
			n--
		}
		msg = msg[:n]
	}
	return msg
}

// replyErr sends an error reply with a message for humans.
func (h *hsConn) replyErr(opt, typ uint32, msg string) error {
	h.log.Debug("nbd: option refused", "opt", optName(opt), "reply", fmt.Sprintf("%#x", typ), "msg", msg)
	return h.reply(opt, typ, []byte(msg))
}

// negotiate fixes the size and transmission flags of e for one connection.
// A read-only export advertises neither FUA, TRIM nor WRITE_ZEROES: all
// three would fail with EPERM.
func (s *Server) negotiate(e *Export, br *bufio.Reader) *negotiated {
	f := tflagHasFlags | tflagSendFlush
	if e.ReadOnly {
		f |= tflagReadOnly
	} else {
		f |= tflagSendFUA | tflagSendTrim | tflagSendWriteZeroes
	}
	if e.MultiConn {
		f |= tflagCanMultiConn
	}
	return &negotiated{export: e, size: e.Backend.Size(), tflags: f, br: br}
}
