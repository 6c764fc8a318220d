package netio

import (
	"bytes"
	"testing"

	"github.com/cairnstore/cairn/core"
)

// A member far behind catches up in parts of at most Params.MaxSyncBlocks blocks (DESIGN
// 2.5): every catch-up message a node can send, with the largest MaxSyncBlocks Validate
// accepts and the widest field values, fits one transport frame.
func TestSyncMessagesFitAFrame(t *testing.T) {
	p := core.DefaultParams(1, 0, []core.Addr{1}, nil)
	p.Disk = 1
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	maxK := core.MaxDataBytes / core.BlockSize
	for _, k := range []int{p.MaxSyncBlocks, maxK} {
		q := p
		q.MaxSyncBlocks = k
		if err := q.Validate(); err != nil {
			t.Fatalf("MaxSyncBlocks %d: %v", k, err)
		}
		images := make([]core.BlockImage, k)
		for i := range images {
			images[i] = core.BlockImage{Block: ^uint64(0) - uint64(i), LSN: ^core.LSN(0), Data: bytes.Repeat([]byte{0xff}, core.BlockSize)}
		}
		big := ^uint64(0)
		part := &core.SyncPart{Vol: 1<<32 - 1, Epoch: core.Epoch(big), ReqBase: core.LSN(big), Round: big, Cursor: big,
			Base: core.LSN(big), Start: core.LSN(big), Upto: core.LSN(big), Next: big, End: true, Blocks: images}
		// The final Sync also carries the deduplication table: 64 requests for each of 256
		// client sessions.
		dedup := make([]core.DedupRec, 64*256)
		for i := range dedup {
			dedup[i] = core.DedupRec{Client: big - uint64(i/64), Req: big - uint64(i), LSN: core.LSN(big), Oldest: big}
		}
		final := &core.Sync{Vol: 1<<32 - 1, Epoch: core.Epoch(big), From: core.LSN(big), Upto: core.LSN(big),
			UptoEpoch: core.Epoch(big), Commit: core.LSN(big), Blocks: images, Dedup: dedup, ReqBase: core.LSN(big), Round: big}
		for _, m := range []core.Message{part, final} {
			payload := core.Encode(nil, m)
			if len(payload) > MaxFrame {
				t.Fatalf("MaxSyncBlocks %d: a %T encodes to %d bytes, above MaxFrame %d", k, m, len(payload), MaxFrame)
			}
			var buf bytes.Buffer
			if err := WriteFrame(&buf, payload); err != nil {
				t.Fatalf("MaxSyncBlocks %d: %T: %v", k, m, err)
			}
			got, err := ReadFrame(&buf, nil)
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("MaxSyncBlocks %d: %T did not survive a frame: %v", k, m, err)
			}
			if _, err := core.Decode(got); err != nil {
				t.Fatalf("MaxSyncBlocks %d: %T: %v", k, m, err)
			}
			t.Logf("MaxSyncBlocks %d: %T of %d bytes (MaxFrame %d)", k, m, len(payload), MaxFrame)
		}
	}
	q := p
	q.MaxSyncBlocks = maxK + 1
	if q.Validate() == nil {
		t.Fatalf("Validate accepts MaxSyncBlocks %d: a part could exceed a frame", q.MaxSyncBlocks)
	}
}
