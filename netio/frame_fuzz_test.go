package netio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// FuzzReadFrame reads frames from arbitrary bytes: it must not panic, must return either
// a payload or an error that is ErrFrame, io.EOF or io.ErrUnexpectedEOF, must never
// return more than it was given, and a payload it accepts re-encodes to the same bytes.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{})
	f.Add(appendFrame(nil, nil))
	f.Add(appendFrame(nil, []byte("payload")))
	f.Add(appendFrame(appendFrame(nil, []byte("one")), helloPayload(7, 42)))
	huge := appendFrame(nil, []byte("x"))
	binary.BigEndian.PutUint32(huge[4:], 0xffffffff)
	f.Add(huge)
	f.Add([]byte("CRN1\x00\x90\x00\x00\x00\x00\x00\x00abc"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		var buf []byte
		consumed := 0
		for i := 0; ; i++ {
			p, err := ReadFrame(r, buf)
			if err != nil {
				if !errors.Is(err, ErrFrame) && err != io.EOF && err != io.ErrUnexpectedEOF {
					t.Fatalf("frame %d: unexpected error %v", i, err)
				}
				return
			}
			if len(p) > len(data) || cap(p) > MaxFrame {
				t.Fatalf("frame %d: payload len %d cap %d from %d input bytes", i, len(p), cap(p), len(data))
			}
			n := frameHeader + len(p)
			if !bytes.Equal(appendFrame(nil, p), data[consumed:consumed+n]) {
				t.Fatalf("frame %d: accepted payload does not re-encode to its input", i)
			}
			consumed += n
			buf = p[:0]
		}
	})
}
