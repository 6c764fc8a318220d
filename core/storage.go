package core

// Storage is what a node needs from its disk. The core defines it; the simulator and
// the storage package implement it.
//
// Block reads and writes are synchronous and have page-cache semantics: a write is
// visible at once and becomes durable at the next completed checkpoint. Journal appends
// and checkpoints are asynchronous effects (Output.Ops) that the driver executes in the
// order issued and reports back with Node.StorageDone, also in that order. An append is
// complete only when it is durable. A checkpoint makes every block write issued before it
// durable and replaces the journal with its snapshot record.
//
// DeleteVolume drops every block of a volume (its storage is freed): reads of it return
// zeros at once, and the deletion is durable at the next completed checkpoint, like a
// write. Deleting a volume that has no blocks is not an error.
//
// After a crash, Load returns the last durable snapshot and the durable journal records
// after it, in order; the node replays them onto the block store.
type Storage interface {
	Load() (snapshot []byte, records [][]byte, err error)
	ReadBlocks(vol VolumeID, block uint64, buf []byte) error
	WriteBlocks(vol VolumeID, block uint64, data []byte) error
	DeleteVolume(vol VolumeID) error
}

// OpKind is the kind of a storage effect.
type OpKind uint8

// Storage effect kinds.
const (
	OpAppend     OpKind = iota + 1 // append Data to the journal, durably
	OpCheckpoint                   // sync block data, then make Data the journal's first and only record
)

// StorageOp is a storage effect. Seq numbers are consecutive from 1 per node incarnation.
type StorageOp struct {
	Seq  uint64
	Kind OpKind
	Data []byte
}
