package netio

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cairnstore/cairn/core"
)

// A member that missed more data than one transport frame holds (12 MiB with frames of
// MaxFrame ≈ 9 MiB) catches up over real TCP in parts of MaxSyncBlocks (DESIGN 2.5) and
// rejoins the in-sync set; before parts existed the one Sync was dropped by the transport
// and the member never came back.
func TestRunnerCatchUpBeyondAFrame(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 12 MiB through three real nodes")
	}
	tc := newTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cl := tc.client(t, ctx, 1000, 10*time.Second)
	const blocks, behind, chunk = 4096, 3072, 64
	rep := createVolume(t, ctx, cl, core.AuthRequest{Vol: 1, Blocks: blocks, RF: 3})
	if rep.Status != core.StatusOK && rep.Status != core.StatusConflict {
		t.Fatalf("create volume: %+v", rep)
	}
	cfg := rep.Config
	data := func(b uint64, gen byte) []byte {
		out := make([]byte, chunk*core.BlockSize)
		for i := range out {
			out[i] = byte(b) ^ byte(i>>12) ^ gen
		}
		return out
	}
	if err := cl.Write(ctx, 1, 0, data(0, 1)); err != nil {
		t.Fatalf("first write: %v", err)
	}
	lag := cfg.Replicas[0]
	if lag == cfg.Primary {
		lag = cfg.Replicas[1]
	}
	li := int(lag) - 1
	tc.stop(t, li)
	for b := uint64(0); b < behind; b += chunk {
		if err := cl.Write(ctx, 1, b, data(b, 2)); err != nil {
			t.Fatalf("write at %d: %v", b, err)
		}
	}
	tc.start(t, li)
	deadline := time.Now().Add(60 * time.Second)
	for {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		rep, err := cl.Admin(actx, core.AuthRequest{Op: core.OpGetConfig, Vol: 1})
		acancel()
		if err == nil && rep.Status == core.StatusOK && slices.Contains(rep.Config.InSync, lag) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member %d did not rejoin the in-sync set within 60 s (last config %v, err %v)", lag, rep, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var st core.NodeStats
	if err := tc.runners[li].Do(ctx, func(n *core.Node) { st = n.Stats() }); err != nil {
		t.Fatal(err)
	}
	if st.SyncPartsApplied < behind/1024 || st.SyncSeriesDone == 0 {
		t.Fatalf("member applied %d parts and completed %d multi-part catch-ups; want at least %d and 1",
			st.SyncPartsApplied, st.SyncSeriesDone, behind/1024)
	}
	for b := uint64(0); b < behind; b += chunk {
		got, err := cl.Read(ctx, 1, b, chunk)
		if err != nil || !bytes.Equal(got, data(b, 2)) {
			t.Fatalf("read at %d: %v (equal %v)", b, err, bytes.Equal(got, data(b, 2)))
		}
	}
	t.Logf("member %d: %d parts applied, %d multi-part catch-ups", lag, st.SyncPartsApplied, st.SyncSeriesDone)
}
