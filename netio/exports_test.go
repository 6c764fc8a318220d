package netio

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/netio/nbd"
)

// The NBD catalog of a cluster's volumes: a volume is found by name (here its number)
// and listed, an unknown one is nbd.ErrUnknownExport, and every connection to a volume
// shares one backend, so partial-block writes from two connections to the same block
// are read-modify-written one at a time and neither is lost.
func TestExports(t *testing.T) {
	tc := newTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := tc.client(t, ctx, 1000, 10*time.Second)
	if rep := createVolume(t, ctx, cl, core.AuthRequest{Vol: 7, Blocks: 64, RF: 2}); rep.Status != core.StatusOK {
		t.Fatalf("create volume: %+v", rep)
	}
	x := NewExports(cl, 5*time.Second)
	a, err := x.Export(ctx, "7")
	if err != nil || a.Name != "7" || a.Backend.Size() != 64*core.BlockSize || !a.MultiConn {
		t.Fatalf("export 7: %+v %v", a, err)
	}
	b, err := x.Export(ctx, "7")
	if err != nil || b.Backend != a.Backend {
		t.Fatalf("a second connection got another backend (%v)", err)
	}
	if _, err := x.Export(ctx, "8"); !errors.Is(err, nbd.ErrUnknownExport) {
		t.Fatalf("export 8 (no such volume): %v", err)
	}
	if _, err := x.Export(ctx, "no/such"); !errors.Is(err, nbd.ErrUnknownExport) {
		t.Fatalf("an invalid name: %v", err)
	}
	list, err := x.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "7" {
		t.Fatalf("list: %+v %v", list, err)
	}

	// Two connections write the two halves of block 0, 512 bytes at a time, 40 times each.
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i, e := range []nbd.Export{a, b} {
		wg.Go(func() {
			for n := range 40 {
				part := bytes.Repeat([]byte{byte(16*i + n%16)}, 512)
				if err := e.Backend.WriteAt(ctx, part, uint64(i)*2048, false); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := make([]byte, core.BlockSize)
	if err := a.Backend.ReadAt(ctx, got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:512], bytes.Repeat([]byte{39 % 16}, 512)) || !bytes.Equal(got[2048:2560], bytes.Repeat([]byte{16 + 39%16}, 512)) {
		t.Fatalf("a partial write was lost: block 0 holds %x at 0 and %x at 2048", got[0], got[2048])
	}
}
