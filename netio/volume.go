package netio

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cairnstore/cairn/core"
)

// Volume serves one volume through a Client at byte granularity (the NBD backend):
// requests are split into chunks of at most maxChunkBlocks blocks, and partial blocks at
// either end are read, modified and written back. Overlapping read-modify-writes through
// one Volume are serialized; writers of the same block through different attachments see
// each other's whole-block writes only (as with any block device shared without a
// cluster file system).
type Volume struct {
	cl     *Client
	vol    core.VolumeID
	blocks uint64
	rmw    sync.Mutex // partial-block writes

	// Timeout bounds one request, all its chunks together: while the volume has no
	// primary (or none answers) the request fails after this long, and NBD answers EIO
	// instead of leaving the connection hanging. Zero leaves only the client's
	// per-operation timeout, which bounds each chunk.
	Timeout time.Duration
}

// bound applies Timeout to one request of ops client operations: a request of one
// operation passes the returned limit to the client instead (which needs no timer when
// the library takes the operation at once and would time it out no later).
func (v *Volume) bound(ctx context.Context, ops int) (context.Context, context.CancelFunc, time.Duration) {
	switch {
	case v.Timeout <= 0:
		return ctx, func() {}, 0
	case ops == 1:
		return ctx, func() {}, v.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, v.Timeout)
	return ctx, cancel, 0
}

// chunks is the number of client operations a read of n bytes at off makes (a write
// that is not block-aligned makes twice as many: read, then write).
func chunks(off, n uint64) int {
	return int((off%core.BlockSize + n + maxChunkBlocks*core.BlockSize - 1) / (maxChunkBlocks * core.BlockSize))
}

// maxChunkBlocks bounds one core request (1 MiB).
const maxChunkBlocks = 256

// NewVolume returns the backend for vol, whose size is blocks × 4 KiB.
func NewVolume(cl *Client, vol core.VolumeID, blocks uint64) *Volume {
	return &Volume{cl: cl, vol: vol, blocks: blocks}
}

// Size is the volume's size in bytes.
func (v *Volume) Size() uint64 { return v.blocks * core.BlockSize }

func (v *Volume) check(off, n uint64) error {
	if n > v.Size() || off > v.Size()-n {
		return fmt.Errorf("range [%d, %d) beyond the volume's %d bytes", off, off+n, v.Size())
	}
	return nil
}

// ReadAt fills p from byte offset off.
func (v *Volume) ReadAt(ctx context.Context, p []byte, off uint64) error {
	if err := v.check(off, uint64(len(p))); err != nil {
		return err
	}
	ctx, cancel, limit := v.bound(ctx, chunks(off, uint64(len(p))))
	defer cancel()
	for len(p) > 0 {
		first := off / core.BlockSize
		skip := off % core.BlockSize
		count := min((skip+uint64(len(p))+core.BlockSize-1)/core.BlockSize, maxChunkBlocks)
		data, err := v.cl.read(ctx, limit, v.vol, first, uint32(count))
		if err != nil {
			return err
		}
		n := copy(p, data[skip:])
		p, off = p[n:], off+uint64(n)
	}
	return nil
}

// WriteAt writes p at byte offset off. Every acknowledged write is already durable on
// every in-sync replica, so fua needs nothing more.
func (v *Volume) WriteAt(ctx context.Context, p []byte, off uint64, fua bool) error {
	if err := v.check(off, uint64(len(p))); err != nil {
		return err
	}
	ops := chunks(off, uint64(len(p)))
	if off%core.BlockSize != 0 || len(p)%core.BlockSize != 0 {
		ops *= 2
	}
	ctx, cancel, limit := v.bound(ctx, ops)
	defer cancel()
	for len(p) > 0 {
		first := off / core.BlockSize
		skip := off % core.BlockSize
		count := min((skip+uint64(len(p))+core.BlockSize-1)/core.BlockSize, maxChunkBlocks)
		span := count * core.BlockSize
		n := min(uint64(len(p)), span-skip)
		if skip == 0 && n == span {
			if err := v.cl.write(ctx, limit, v.vol, first, p[:n]); err != nil {
				return err
			}
		} else if err := v.modify(ctx, first, count, skip, p[:n]); err != nil {
			return err
		}
		p, off = p[n:], off+n
	}
	return nil
}

// modify reads the covering blocks, overlays part at skip and writes them back.
func (v *Volume) modify(ctx context.Context, first, count, skip uint64, part []byte) error {
	v.rmw.Lock()
	defer v.rmw.Unlock()
	buf, err := v.cl.Read(ctx, v.vol, first, uint32(count))
	if err != nil {
		return err
	}
	copy(buf[skip:], part)
	return v.cl.Write(ctx, v.vol, first, buf)
}

// Flush returns once every write logged before it is committed.
func (v *Volume) Flush(ctx context.Context) error {
	ctx, cancel, limit := v.bound(ctx, 1)
	defer cancel()
	return v.cl.flushVol(ctx, limit, v.vol)
}

// Trim writes zeros (the volume has no holes; trimmed ranges read as zeros).
func (v *Volume) Trim(ctx context.Context, off, length uint64, fua bool) error {
	return v.WriteZeroes(ctx, off, length, fua)
}

// WriteZeroes writes zeros over [off, off+length).
func (v *Volume) WriteZeroes(ctx context.Context, off, length uint64, fua bool) error {
	if err := v.check(off, length); err != nil {
		return err
	}
	ctx, cancel, _ := v.bound(ctx, 2) // more than one (WriteAt bounds each chunk again)
	defer cancel()
	zero := make([]byte, min(length, maxChunkBlocks*core.BlockSize))
	for length > 0 {
		n := min(length, uint64(len(zero)))
		if err := v.WriteAt(ctx, zero[:n], off, fua); err != nil {
			return err
		}
		off, length = off+n, length-n
	}
	return nil
}
