package core

import (
	"fmt"
	"slices"
)

// BlockSize is the size of one volume block in bytes.
const BlockSize = 4096

// Addr names an endpoint: storage nodes and clients share one address space.
type Addr uint32

// VolumeID names a volume.
type VolumeID uint32

// Epoch is a volume's configuration sequence number, issued only by the authority.
type Epoch uint64

// LSN is the position of a write in a volume's history.
type LSN uint64

// Config is the authority's record for one volume.
type Config struct {
	Volume   VolumeID
	Blocks   uint64 // size in blocks
	RF       uint8
	Epoch    Epoch
	Primary  Addr
	InSync   []Addr // sorted; always contains Primary
	Replicas []Addr // sorted hosts, one per zone
	QoS      QoS    // admission limits the primary enforces
	// Disks: per replica (parallel to Replicas), the identity of the data directory that
	// holds it (DESIGN 2.12); 0 while none is recorded yet (a new volume before its
	// primary's first Renew). A node whose disk is not the recorded one holds nothing of
	// the volume: it never counts as in sync, is never promoted and never acts as primary.
	Disks []uint64
}

// QoS is a volume's provisioned performance (spec section 6). IOPS == 0 means the
// volume is not throttled (the other fields must then be zero too).
type QoS struct {
	IOPS         int64 // provisioned (baseline) operations per second
	BurstIOPS    int64 // highest rate while burst credits last (>= IOPS)
	BurstCredits int64 // burst bucket size in operations; starts full
	MBps         int64 // throughput limit in MiB/s; 0 = unlimited
}

// Clone returns a deep copy.
func (c Config) Clone() Config {
	c.InSync = slices.Clone(c.InSync)
	c.Replicas = slices.Clone(c.Replicas)
	c.Disks = slices.Clone(c.Disks)
	return c
}

// DiskOf is the disk identity recorded for replica a (0: none recorded, or not a replica).
func (c *Config) DiskOf(a Addr) uint64 {
	if i, ok := slices.BinarySearch(c.Replicas, a); ok && i < len(c.Disks) {
		return c.Disks[i]
	}
	return 0
}

// setDisk records d as replica a's disk (a must be a replica).
func (c *Config) setDisk(a Addr, d uint64) {
	i, ok := slices.BinarySearch(c.Replicas, a)
	if !ok {
		return
	}
	if len(c.Disks) != len(c.Replicas) {
		c.Disks = make([]uint64, len(c.Replicas))
	}
	c.Disks[i] = d
}

// addReplica adds a as a replica, not in sync, with no disk recorded.
func (c *Config) addReplica(a Addr) {
	i, ok := slices.BinarySearch(c.Replicas, a)
	if ok {
		return
	}
	if len(c.Disks) != len(c.Replicas) {
		c.Disks = make([]uint64, len(c.Replicas))
	}
	c.Replicas = slices.Insert(c.Replicas, i, a)
	c.Disks = slices.Insert(c.Disks, i, 0)
}

// dropReplica removes replica a (and its disk, and its place in the in-sync set).
func (c *Config) dropReplica(a Addr) {
	i, ok := slices.BinarySearch(c.Replicas, a)
	if !ok {
		return
	}
	c.Replicas = slices.Delete(c.Replicas, i, i+1)
	if i < len(c.Disks) {
		c.Disks = slices.Delete(c.Disks, i, i+1)
	}
	c.InSync = removeSorted(c.InSync, a)
}

// IsInSync reports whether a is in the in-sync set.
func (c *Config) IsInSync(a Addr) bool {
	_, ok := slices.BinarySearch(c.InSync, a)
	return ok
}

// IsReplica reports whether a hosts a replica.
func (c *Config) IsReplica(a Addr) bool {
	_, ok := slices.BinarySearch(c.Replicas, a)
	return ok
}

func (c Config) String() string {
	s := fmt.Sprintf("vol=%d e=%d p=%d isr=%v reps=%v", c.Volume, c.Epoch, c.Primary, c.InSync, c.Replicas)
	if slices.ContainsFunc(c.Disks, func(d uint64) bool { return d != 0 }) {
		s += fmt.Sprintf(" disks=%x", c.Disks)
	}
	return s
}

// check asserts the config's invariants.
func (c *Config) check() error {
	if !slices.IsSorted(c.InSync) || !slices.IsSorted(c.Replicas) {
		return fmt.Errorf("config %v: sets not sorted", c)
	}
	if !c.IsInSync(c.Primary) {
		return fmt.Errorf("config %v: primary not in sync", c)
	}
	if len(c.Disks) != 0 && len(c.Disks) != len(c.Replicas) {
		return fmt.Errorf("config %v: %d disks for %d replicas", c, len(c.Disks), len(c.Replicas))
	}
	for _, a := range c.InSync {
		if !c.IsReplica(a) {
			return fmt.Errorf("config %v: in-sync member %d is not a replica", c, a)
		}
	}
	return nil
}

func insertSorted(s []Addr, a Addr) []Addr {
	i, ok := slices.BinarySearch(s, a)
	if ok {
		return s
	}
	return slices.Insert(s, i, a)
}

func removeSorted(s []Addr, a Addr) []Addr {
	i, ok := slices.BinarySearch(s, a)
	if !ok {
		return s
	}
	return slices.Delete(s, i, i+1)
}

// Entry is one write in a volume's history: Data covers len(Data)/BlockSize blocks from Block.
type Entry struct {
	LSN    LSN
	Epoch  Epoch // epoch of the primary that created it
	Client uint64
	Req    uint64
	Oldest uint64 // the client's oldest unfinished request when it sent this one
	Block  uint64
	Data   []byte
}

// Count is the number of blocks the entry writes.
func (e *Entry) Count() uint64 { return uint64(len(e.Data) / BlockSize) }

// BlockImage is one block's content and the LSN that last wrote it.
type BlockImage struct {
	Block uint64
	LSN   LSN
	Data  []byte
}

// DedupRec remembers that a client's request took effect at an LSN.
type DedupRec struct {
	Client uint64
	Req    uint64
	LSN    LSN
	Oldest uint64 // requests of this client below Oldest are finished: never apply them
}

// Status is the outcome carried by replies.
type Status uint8

const (
	StatusOK          Status = iota
	StatusNotPrimary         // ask the node in Config (if any) or the authority
	StatusStaleEpoch         // the client's epoch is behind; Config carries the current one
	StatusUnavailable        // no lease or still reconciling: retry shortly
	StatusBusy               // queue full: retry later
	StatusInvalid            // bad request (out of range, misaligned)
	StatusConflict           // authority: compare-and-set failed; Config is current
	StatusNotFound           // unknown volume
	StatusIOError            // local storage failed
	StatusNotLeader          // authority: ask the member in Leader (or another member)
)

var statusNames = [...]string{"ok", "not-primary", "stale-epoch", "unavailable", "busy", "invalid", "conflict", "not-found", "io-error", "not-leader"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// CheckVolumeName reports whether s can be a volume's stored name: at most MaxVolumeName
// bytes of letters, digits, '-', '_' and '.'. The empty name (a numbered volume) is valid.
func CheckVolumeName(s string) error {
	if len(s) > MaxVolumeName {
		return fmt.Errorf("volume name %q longer than %d bytes", s, MaxVolumeName)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return fmt.Errorf("volume name %q: use letters, digits, '-', '_' and '.'", s)
		}
	}
	return nil
}
