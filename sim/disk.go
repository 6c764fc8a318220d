package sim

import (
	"fmt"

	"github.com/cairnstore/cairn/core"
)

// disk is a crashable in-memory core.Storage. Journal appends and checkpoints become
// durable when the simulator completes them; block writes are volatile until a
// checkpoint completes. A crash keeps a random prefix of the operations in flight
// (a disk may persist what it never confirmed), drops the rest, and drops every
// block write since the last completed checkpoint.
type disk struct {
	snapshot []byte
	journal  [][]byte
	durable  map[blockKey][]byte // block data as of the last completed checkpoint
	volatile map[blockKey][]byte // block writes since
	inflight []core.StorageOp
}

type blockKey struct {
	vol   core.VolumeID
	block uint64
}

func newDisk() *disk {
	return &disk{durable: map[blockKey][]byte{}, volatile: map[blockKey][]byte{}}
}

func (d *disk) Load() ([]byte, [][]byte, error) {
	return d.snapshot, d.journal, nil
}

func (d *disk) ReadBlocks(vol core.VolumeID, block uint64, buf []byte) error {
	if len(buf)%core.BlockSize != 0 {
		return fmt.Errorf("sim: read of %d bytes", len(buf))
	}
	for i := 0; i*core.BlockSize < len(buf); i++ {
		k := blockKey{vol, block + uint64(i)}
		dst := buf[i*core.BlockSize : (i+1)*core.BlockSize]
		if b, ok := d.volatile[k]; ok {
			copy(dst, b)
		} else if b, ok := d.durable[k]; ok {
			copy(dst, b)
		} else {
			clear(dst)
		}
	}
	return nil
}

func (d *disk) WriteBlocks(vol core.VolumeID, block uint64, data []byte) error {
	if len(data)%core.BlockSize != 0 {
		return fmt.Errorf("sim: write of %d bytes", len(data))
	}
	for i := 0; i*core.BlockSize < len(data); i++ {
		b := make([]byte, core.BlockSize)
		copy(b, data[i*core.BlockSize:])
		d.volatile[blockKey{vol, block + uint64(i)}] = b
	}
	return nil
}

func (d *disk) issue(op core.StorageOp) { d.inflight = append(d.inflight, op) }

// complete makes the oldest in-flight op durable.
func (d *disk) complete() core.StorageOp {
	op := d.inflight[0]
	d.inflight = d.inflight[1:]
	d.apply(op)
	return op
}

func (d *disk) apply(op core.StorageOp) {
	switch op.Kind {
	case core.OpAppend:
		d.journal = append(d.journal, op.Data)
	case core.OpCheckpoint:
		for k, b := range d.volatile {
			d.durable[k] = b
		}
		clear(d.volatile)
		d.snapshot = op.Data
		d.journal = nil
	}
}

// crash keeps the first keep in-flight ops and loses the rest and all volatile blocks.
func (d *disk) crash(keep int) {
	for i := 0; i < keep && i < len(d.inflight); i++ {
		d.apply(d.inflight[i])
	}
	d.inflight = nil
	clear(d.volatile)
}

// content returns a volume's visible block data (for the convergence check).
func (d *disk) content(vol core.VolumeID, blocks uint64) []byte {
	buf := make([]byte, blocks*core.BlockSize)
	_ = d.ReadBlocks(vol, 0, buf)
	return buf
}
