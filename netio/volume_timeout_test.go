package netio

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/internal/testutil"
)

// Volume.Timeout bounds every request, whatever the client's own operation timeout: with
// no cluster answering, single-block reads and writes (more of them than the library
// takes at once, so some wait for room), a multi-chunk read and a flush all fail within
// the volume's timeout: with a client timeout far longer, and with one as long (where
// an operation the library took at once needs no timer of its own, but one that waited
// for room does).
func TestVolumeTimeout(t *testing.T) {
	for _, c := range []struct{ op, vol time.Duration }{{30 * time.Second, 300 * time.Millisecond}, {time.Second, time.Second}} {
		t.Run(fmt.Sprintf("client%v/volume%v", c.op, c.vol), func(t *testing.T) { testVolumeTimeout(t, c.op, c.vol) })
	}
}

func testVolumeTimeout(t *testing.T, opTimeout, timeout time.Duration) {
	dead := testutil.FreePorts(t, 1)[0] // nothing listens
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := NewClient(ctx, ClientConfig{ID: 1000, Session: 1, Authorities: []core.Addr{1}, Peers: map[core.Addr]string{1: dead},
		OpTimeout: opTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	v := NewVolume(cl, 5, 1024)
	v.Timeout = timeout
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 48 {
		wg.Go(func() {
			buf := make([]byte, core.BlockSize)
			if i%2 == 0 {
				errs <- v.ReadAt(ctx, buf, uint64(i)*core.BlockSize)
			} else {
				errs <- v.WriteAt(ctx, buf, uint64(i)*core.BlockSize, false)
			}
		})
	}
	wg.Go(func() { errs <- v.ReadAt(ctx, make([]byte, 2<<20), 0) })
	wg.Go(func() { errs <- v.Flush(ctx) })
	wg.Wait()
	took := time.Since(start)
	close(errs)
	for err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrUnknown) {
			t.Fatalf("a request with no cluster: %v, want a timeout", err)
		}
	}
	// Operations that waited for room would fail a whole client timeout later.
	if took > timeout+timeout/2 {
		t.Fatalf("50 requests with a %v timeout took %v", timeout, took)
	}
	t.Logf("50 requests with a %v timeout (client: %v) failed after %v", timeout, opTimeout, took)
}

// ClientConfig.MaxInFlight: with no cluster answering, 64 reads all go to the library at
// once when it allows 64, while the default takes 32 and keeps the rest waiting in order.
func TestClientMaxInFlight(t *testing.T) {
	dead := testutil.FreePorts(t, 1)[0] // nothing listens
	for _, c := range []struct{ max, waiting int }{{0, 32}, {64, 0}} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cl, err := NewClient(ctx, ClientConfig{ID: 1000, Session: 1, Authorities: []core.Addr{1}, Peers: map[core.Addr]string{1: dead},
			OpTimeout: 5 * time.Second, MaxInFlight: c.max})
		if err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for i := range 64 {
			wg.Go(func() { _, _ = cl.Read(rctx, 5, uint64(i), 1) })
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			cl.mu.Lock()
			submitted, waiting := len(cl.waiting), len(cl.backlog)
			cl.mu.Unlock()
			if submitted+waiting == 64 {
				if waiting != c.waiting {
					t.Fatalf("MaxInFlight %d: %d operations wait for room, want %d", c.max, waiting, c.waiting)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("MaxInFlight %d: only %d of 64 reads reached the client", c.max, submitted+waiting)
			}
			time.Sleep(time.Millisecond)
		}
		rcancel()
		wg.Wait()
		cl.Close()
		cancel()
	}
}
