package nbd

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkRandIO: 4 KiB random reads or writes over loopback TCP against
// the in-memory backend, with 1 or 32 requests in flight. ops/s counts
// completed requests.
func BenchmarkRandIO(b *testing.B) {
	for _, op := range []string{"read", "write"} {
		for _, qd := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/QD%d", op, qd), func(b *testing.B) { benchRandIO(b, op == "write", qd) })
		}
	}
}

func benchRandIO(b *testing.B, write bool, qd int) {
	const size, bs = 64 << 20, 4096
	srv := newTestServer(b, Export{Name: "d", Backend: newMem(size)})
	c, _ := startServer(b, srv)
	cl, err := newClient(b, c, 3)
	if err != nil {
		b.Fatal(err)
	}
	if rs, err := cl.opt(optGo, infoData("d")); err != nil || rs[len(rs)-1].typ != repAck {
		b.Fatalf("GO: %v", err)
	}
	c.SetDeadline(time.Now().Add(2 * time.Minute)) // bounds a stuck run

	tokens := make(chan struct{}, qd)
	recvErr := make(chan error, 1)
	go func() {
		var hdr [replyHeaderLen]byte
		payload := make([]byte, bs)
		for range b.N {
			if _, err := io.ReadFull(cl.br, hdr[:]); err != nil {
				recvErr <- err
				return
			}
			if e := binary.BigEndian.Uint32(hdr[4:]); e != 0 {
				recvErr <- fmt.Errorf("reply error %s", errnoName(e))
				return
			}
			if !write {
				if _, err := io.ReadFull(cl.br, payload); err != nil {
					recvErr <- err
					return
				}
			}
			<-tokens
		}
		recvErr <- nil
	}()

	rng := rand.New(rand.NewPCG(1, 2))
	bw := bufio.NewWriterSize(c, 256<<10)
	data := pattern(3, bs)
	req := make([]byte, requestHeaderLen)
	cmd := cmdRead
	if write {
		cmd = cmdWrite
	}
	b.SetBytes(bs)
	b.ResetTimer()
	for i := range b.N {
		select {
		case tokens <- struct{}{}:
		default: // the window is full: push out what is buffered, then wait
			if err := bw.Flush(); err != nil {
				b.Fatal(err)
			}
			tokens <- struct{}{}
		}
		binary.BigEndian.PutUint32(req[0:], requestMagic)
		binary.BigEndian.PutUint16(req[4:], 0)
		binary.BigEndian.PutUint16(req[6:], cmd)
		binary.BigEndian.PutUint64(req[8:], uint64(i))
		binary.BigEndian.PutUint64(req[16:], uint64(rng.IntN(size/bs))*bs)
		binary.BigEndian.PutUint32(req[24:], bs)
		bw.Write(req)
		if write {
			bw.Write(data)
		}
		if qd == 1 {
			bw.Flush()
		}
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := <-recvErr; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}
