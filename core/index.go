package core

import "github.com/google/btree"

// blockIndex maps each written block to the LSN that last wrote it, and orders blocks by
// that LSN so "every block written after LSN c" is a range scan. It always describes the
// block store's contents (not entries still waiting to be written).
type blockIndex struct {
	byBlock map[uint64]LSN
	byLSN   *btree.BTreeG[lsnBlock]
}

type lsnBlock struct {
	lsn   LSN
	block uint64
}

func lessLSNBlock(a, b lsnBlock) bool {
	if a.lsn != b.lsn {
		return a.lsn < b.lsn
	}
	return a.block < b.block
}

func newBlockIndex() *blockIndex {
	return &blockIndex{byBlock: map[uint64]LSN{}, byLSN: btree.NewG(16, lessLSNBlock)}
}

func (x *blockIndex) set(block uint64, lsn LSN) {
	if old, ok := x.byBlock[block]; ok {
		x.byLSN.Delete(lsnBlock{old, block})
	}
	x.byBlock[block] = lsn
	x.byLSN.ReplaceOrInsert(lsnBlock{lsn, block})
}

func (x *blockIndex) get(block uint64) LSN { return x.byBlock[block] }

// after calls fn for every block last written by an LSN greater than c, in LSN order.
func (x *blockIndex) after(c LSN, fn func(block uint64, lsn LSN)) {
	if c == ^LSN(0) {
		return
	}
	x.byLSN.AscendGreaterOrEqual(lsnBlock{c + 1, 0}, func(it lsnBlock) bool {
		fn(it.block, it.lsn)
		return true
	})
}

// afterWhile is after, stopping as soon as fn returns false.
func (x *blockIndex) afterWhile(c LSN, fn func(block uint64, lsn LSN) bool) {
	if c == ^LSN(0) {
		return
	}
	x.byLSN.AscendGreaterOrEqual(lsnBlock{c + 1, 0}, func(it lsnBlock) bool {
		return fn(it.block, it.lsn)
	})
}

// all returns the index in LSN order (deterministic).
func (x *blockIndex) all() []BlockImage {
	out := make([]BlockImage, 0, x.byLSN.Len())
	x.byLSN.Ascend(func(it lsnBlock) bool {
		out = append(out, BlockImage{Block: it.block, LSN: it.lsn})
		return true
	})
	return out
}

func (x *blockIndex) len() int { return x.byLSN.Len() }
