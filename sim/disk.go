package sim

import (
	"fmt"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/storage"
)

// disk runs a node's real storage engine over the crashable in-memory file system.
// The simulator completes the core's storage ops in order, after a latency: an append is
// written to the journal when issued (unsynced: a crash may lose or tear it) and synced
// when it completes; a checkpoint runs when it completes, and appends issued after it are
// written only then, so they land after the snapshot. A crash keeps synced data, tears
// or drops the rest (storage.MemFS), and recovery runs the engine's real recovery.
type disk struct {
	fs      *storage.MemFS
	e       *storage.Engine
	queue   []pendingOp // issued, not completed, in order
	pending int         // checkpoints in the queue
}

type pendingOp struct {
	op      core.StorageOp
	written bool
}

const dataDir = "node"

func newDisk(seed uint64) *disk {
	return &disk{fs: storage.NewMemFS(seed)}
}

// open opens the engine (recovery); the node's core then loads from it.
func (d *disk) open() error {
	e, err := storage.Open(d.fs, dataDir)
	if err != nil {
		return err
	}
	d.e, d.queue, d.pending = e, nil, 0
	return nil
}

func (d *disk) issue(op core.StorageOp) error {
	p := pendingOp{op: op}
	if op.Kind == core.OpCheckpoint {
		d.pending++
	} else if d.pending == 0 {
		if err := d.e.Append(op.Data); err != nil {
			return err
		}
		if err := d.e.Flush(); err != nil {
			return err
		}
		p.written = true
	}
	d.queue = append(d.queue, p)
	return nil
}

// complete carries out the oldest op durably.
func (d *disk) complete() (core.StorageOp, error) {
	p := d.queue[0]
	d.queue = d.queue[1:]
	switch p.op.Kind {
	case core.OpAppend:
		if !p.written {
			if err := d.e.Append(p.op.Data); err != nil {
				return p.op, err
			}
		}
		return p.op, d.e.Sync()
	case core.OpCheckpoint:
		d.pending--
		if err := d.e.Checkpoint(p.op.Data); err != nil {
			return p.op, err
		}
		// Appends issued after this checkpoint and before the next one go out now.
		for i := range d.queue {
			q := &d.queue[i]
			if q.op.Kind == core.OpCheckpoint {
				break
			}
			if err := d.e.Append(q.op.Data); err != nil {
				return p.op, err
			}
			q.written = true
		}
		return p.op, d.e.Flush()
	}
	return p.op, fmt.Errorf("sim: unknown storage op %d", p.op.Kind)
}

// crash loses everything volatile.
func (d *disk) crash() {
	d.fs.Crash()
	d.e, d.queue, d.pending = nil, nil, 0
}

// content returns a volume's visible block data (for the convergence check).
func (d *disk) content(vol core.VolumeID, blocks uint64) ([]byte, error) {
	buf := make([]byte, blocks*core.BlockSize)
	err := d.e.ReadBlocks(vol, 0, buf)
	return buf, err
}
