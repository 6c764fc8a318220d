package netio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/cairnstore/cairn/core"
)

// Frame layout on the wire:
//
//	magic "CRN1" (4 bytes) | length uint32 BE | crc32c(payload) uint32 BE | payload
//
// The payload is core.Encode output, or (only as a connection's first frame) a hello.
// A zero-length payload is a keepalive; core.Decode never accepts one.
const (
	frameMagic  = "CRN1"
	frameHeader = 12

	// MaxFrame bounds a frame's payload: a message with MaxDataBytes of block data plus
	// room for its other fields.
	MaxFrame = core.MaxDataBytes + 1<<20

	// readChunk is how much ReadFrame allocates ahead of the bytes that have arrived,
	// so a length field alone cannot make it allocate MaxFrame.
	readChunk = 64 << 10
)

// ErrFrame is wrapped by every framing error: bad magic, a length over MaxFrame, or a
// checksum mismatch. A truncated frame is io.ErrUnexpectedEOF instead.
var ErrFrame = errors.New("netio: bad frame")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// setHeader fills h with the header of a frame carrying payload.
func setHeader(h []byte, payload []byte) {
	copy(h, frameMagic)
	binary.BigEndian.PutUint32(h[4:], uint32(len(payload)))
	binary.BigEndian.PutUint32(h[8:], crc32.Checksum(payload, castagnoli))
}

// putHeader fills in the header of f, a frame whose payload follows frameHeader
// reserved bytes, and returns f.
func putHeader(f []byte) []byte {
	setHeader(f, f[frameHeader:])
	return f
}

// appendFrame appends the whole frame carrying payload to dst.
func appendFrame(dst, payload []byte) []byte {
	var h [frameHeader]byte
	setHeader(h[:], payload)
	return append(append(dst, h[:]...), payload...)
}

// WriteFrame writes one frame carrying payload. It makes two writes (header, payload):
// give it a buffered writer.
func WriteFrame(w io.Writer, payload []byte) error {
	if len(payload) > MaxFrame {
		return fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrFrame, len(payload), MaxFrame)
	}
	h := make([]byte, frameHeader)
	setHeader(h, payload)
	if _, err := w.Write(h); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// ReadFrame reads one frame and returns its payload, which lives in buf when buf has the
// capacity (so it is valid until buf is reused) and in a new slice otherwise. At the end
// of the stream it returns io.EOF, or io.ErrUnexpectedEOF inside a frame. It allocates
// at most readChunk bytes ahead of the payload bytes that have actually arrived, and
// never a buffer over MaxFrame.
func ReadFrame(r io.Reader, buf []byte) ([]byte, error) {
	var h [frameHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	if string(h[:4]) != frameMagic {
		return nil, fmt.Errorf("%w: magic %q", ErrFrame, h[:4])
	}
	n := binary.BigEndian.Uint32(h[4:])
	if n > MaxFrame {
		return nil, fmt.Errorf("%w: length %d exceeds %d", ErrFrame, n, MaxFrame)
	}
	p, err := readPayload(r, buf, int(n))
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if sum, want := crc32.Checksum(p, castagnoli), binary.BigEndian.Uint32(h[8:]); sum != want {
		return nil, fmt.Errorf("%w: checksum %08x, header says %08x", ErrFrame, sum, want)
	}
	return p, nil
}

// readPayload reads n bytes into buf if it can hold them, else into a slice that grows
// (doubling, at least readChunk at a time) only as the bytes arrive.
func readPayload(r io.Reader, buf []byte, n int) ([]byte, error) {
	if n <= cap(buf) {
		p := buf[:n]
		_, err := io.ReadFull(r, p)
		return p, err
	}
	p := buf[:0]
	for len(p) < n {
		want := min(n, max(2*len(p), readChunk))
		if cap(p) < want {
			np := make([]byte, len(p), want)
			copy(np, p)
			p = np
		}
		got, err := io.ReadFull(r, p[len(p):want])
		p = p[:len(p)+got]
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}
