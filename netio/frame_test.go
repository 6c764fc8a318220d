package netio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"pgregory.net/rapid"
)

// frameOf is payload's frame as WriteFrame writes it.
func frameOf(payload []byte) []byte {
	var b bytes.Buffer
	if err := WriteFrame(&b, payload); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// Frames written back to back read back identically, with or without a reused buffer.
func TestFrameRoundTrip(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		payloads := rapid.SliceOfN(rapid.SliceOfN(rapid.Byte(), 0, 200_000), 1, 8).Draw(rt, "payloads")
		reuse := rapid.Bool().Draw(rt, "reuse")
		var stream bytes.Buffer
		for _, p := range payloads {
			if err := WriteFrame(&stream, p); err != nil {
				rt.Fatal(err)
			}
		}
		if got, want := stream.Len(), func() (n int) {
			for _, p := range payloads {
				n += frameHeader + len(p)
			}
			return
		}(); got != want {
			rt.Fatalf("stream has %d bytes, want %d", got, want)
		}
		var buf []byte
		for i, want := range payloads {
			got, err := ReadFrame(&stream, buf)
			if err != nil {
				rt.Fatalf("frame %d: %v", i, err)
			}
			if !bytes.Equal(got, want) {
				rt.Fatalf("frame %d: payload differs (%d bytes, want %d)", i, len(got), len(want))
			}
			if reuse {
				buf = got[:0]
			}
		}
		if _, err := ReadFrame(&stream, buf); err != io.EOF {
			rt.Fatalf("after the last frame: %v, want io.EOF", err)
		}
	})
}

// Any single flipped bit in the payload, magic or checksum is an ErrFrame.
func TestFrameBitFlip(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		payload := rapid.SliceOfN(rapid.Byte(), 1, 10_000).Draw(rt, "payload")
		f := frameOf(payload)
		// Every byte except the length field (bytes 4..7).
		pos := rapid.IntRange(0, len(f)-5).Draw(rt, "pos")
		if pos >= 4 {
			pos += 4
		}
		f[pos] ^= 1 << rapid.IntRange(0, 7).Draw(rt, "bit")
		_, err := ReadFrame(bytes.NewReader(f), nil)
		if !errors.Is(err, ErrFrame) {
			rt.Fatalf("flipped byte %d: %v, want ErrFrame", pos, err)
		}
	})
}

func TestFrameRejects(t *testing.T) {
	good := frameOf([]byte("hello, cairn"))
	mutate := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"bad magic", mutate(func(b []byte) { copy(b, "CRN2") }), ErrFrame},
		{"flipped payload bit", mutate(func(b []byte) { b[frameHeader+3] ^= 0x10 }), ErrFrame},
		{"bad checksum", mutate(func(b []byte) { b[8] ^= 0xff }), ErrFrame},
		{"oversize length", mutate(func(b []byte) { binary.BigEndian.PutUint32(b[4:], MaxFrame+1) }), ErrFrame},
		{"max length", mutate(func(b []byte) { binary.BigEndian.PutUint32(b[4:], 0xffffffff) }), ErrFrame},
		{"longer than the stream", mutate(func(b []byte) { binary.BigEndian.PutUint32(b[4:], MaxFrame) }), io.ErrUnexpectedEOF},
		{"truncated payload", good[:len(good)-1], io.ErrUnexpectedEOF},
		{"truncated header", good[:frameHeader-1], io.ErrUnexpectedEOF},
		{"header only", good[:frameHeader], io.ErrUnexpectedEOF},
		{"empty stream", nil, io.EOF},
	}
	for _, c := range cases {
		_, err := ReadFrame(bytes.NewReader(c.in), nil)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if err := WriteFrame(io.Discard, make([]byte, MaxFrame+1)); !errors.Is(err, ErrFrame) {
		t.Errorf("WriteFrame of an oversize payload: %v, want ErrFrame", err)
	}
	if err := WriteFrame(io.Discard, make([]byte, MaxFrame)); err != nil {
		t.Errorf("WriteFrame of a MaxFrame payload: %v", err)
	}
}

// A length field alone does not make ReadFrame allocate the length.
func TestFrameLengthDoesNotAllocate(t *testing.T) {
	huge := make([]byte, frameHeader)
	copy(huge, frameMagic)
	binary.BigEndian.PutUint32(huge[4:], 0xffffffff)
	claim := bytes.Clone(huge)
	binary.BigEndian.PutUint32(claim[4:], MaxFrame) // legal length, 100 bytes follow
	claim = append(claim, make([]byte, 100)...)

	const runs = 20
	for _, c := range []struct {
		name string
		in   []byte
		want error
	}{{"oversize", huge, ErrFrame}, {"claims MaxFrame", claim, io.ErrUnexpectedEOF}} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range runs {
			if _, err := ReadFrame(bytes.NewReader(c.in), nil); !errors.Is(err, c.want) {
				t.Fatalf("%s: %v, want %v", c.name, err, c.want)
			}
		}
		runtime.ReadMemStats(&after)
		if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 2*readChunk {
			t.Errorf("%s: %d bytes allocated per read, want at most %d", c.name, per, 2*readChunk)
		}
	}
}

// A large payload read without a buffer grows as it arrives and ends exactly sized.
func TestFrameLargePayload(t *testing.T) {
	payload := make([]byte, MaxFrame)
	for i := range payload {
		payload[i] = byte(i * 31)
	}
	got, err := ReadFrame(bytes.NewReader(frameOf(payload)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) || cap(got) > MaxFrame {
		t.Fatalf("payload differs or cap %d > MaxFrame", cap(got))
	}
}
