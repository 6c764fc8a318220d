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
	"time"
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
	if err := c.SetDeadline(time.Now().Add(s.handshakeTimeout)); err != nil {
		return nil, err
	}
	// Shutdown during the handshake interrupts blocked reads and writes.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()

	h := &hsConn{s: s, br: bufio.NewReaderSize(c, connReadBuf), bw: bufio.NewWriterSize(c, 4096), log: log}
	neg, err := h.run()
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

func (h *hsConn) run() (*negotiated, error) {
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

		neg, done, err := h.option(opt, data)
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
func (h *hsConn) option(opt uint32, data []byte) (neg *negotiated, done bool, err error) {
	switch opt {
	case optExportName:
		return h.exportName(data)
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
		for i := range h.s.exports {
			e := &h.s.exports[i]
			p := make([]byte, 4, 4+len(e.Name)+len(e.Description))
			binary.BigEndian.PutUint32(p, uint32(len(e.Name)))
			p = append(append(p, e.Name...), e.Description...)
			if err := h.reply(opt, repServer, p); err != nil {
				return nil, false, err
			}
		}
		return nil, false, h.reply(opt, repAck, nil)
	case optInfo, optGo:
		return h.infoGo(opt, data)
	default:
		return nil, false, h.replyErr(opt, repErrUnsup, "option not supported")
	}
}

// exportName answers NBD_OPT_EXPORT_NAME, which has no error reply: an
// unknown export ends the session.
func (h *hsConn) exportName(data []byte) (*negotiated, bool, error) {
	if len(data) > maxStringLen {
		return nil, true, fmt.Errorf("nbd: NBD_OPT_EXPORT_NAME name of %d bytes", len(data))
	}
	e := h.s.byName[string(data)]
	if e == nil {
		return nil, true, fmt.Errorf("nbd: NBD_OPT_EXPORT_NAME for unknown export %.64q", data)
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
func (h *hsConn) infoGo(opt uint32, data []byte) (*negotiated, bool, error) {
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
	e := h.s.byName[string(name)]
	if e == nil {
		return nil, false, h.replyErr(opt, repErrUnknown, "unknown export")
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
