package netio

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairnstore/cairn/core"
)

// identityFile marks a data directory as one node's and names its disk.
const identityFile = "cairn-node.json"

type identity struct {
	Node uint32 `json:"node"`
	Zone uint32 `json:"zone"`
	// Disk is the directory's identity, random when the directory is first claimed: a
	// replica is (node, disk), so a wiped directory comes back as a new disk that holds
	// nothing (DESIGN 2.12). Written as a string: JSON numbers lose 64-bit precision.
	Disk string `json:"disk"`
}

// claimDataDir refuses a data directory that belongs to another node, marks a new one, and
// returns its disk identity (created with the mark; a directory marked before disks had
// identities gets one now).
func claimDataDir(dir string, self core.Addr, zone uint32) (uint64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("data directory %s: %w", dir, err)
	}
	p := filepath.Join(dir, identityFile)
	b, err := os.ReadFile(p)
	var id identity
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &id); err != nil {
			return 0, fmt.Errorf("data directory %s: unreadable %s: %w", dir, identityFile, err)
		}
		if id.Node != uint32(self) {
			return 0, fmt.Errorf("data directory %s belongs to node %d, not node %d: give each node its own --data-dir", dir, id.Node, self)
		}
		if d, err := parseDisk(id.Disk); err == nil {
			return d, nil
		} else if id.Disk != "" {
			return 0, fmt.Errorf("data directory %s: %s: %w", dir, identityFile, err)
		}
	case errors.Is(err, os.ErrNotExist):
		id = identity{Node: uint32(self), Zone: zone}
	default:
		return 0, fmt.Errorf("data directory %s: %w", dir, err)
	}
	d, err := newDisk()
	if err != nil {
		return 0, fmt.Errorf("data directory %s: disk identity: %w", dir, err)
	}
	id.Disk = fmt.Sprintf("%016x", d)
	b, _ = json.Marshal(id)
	if err := writeDurably(dir, identityFile, b); err != nil {
		return 0, fmt.Errorf("data directory %s: %w", dir, err)
	}
	return d, nil
}

func parseDisk(s string) (uint64, error) {
	var d uint64
	if _, err := fmt.Sscanf(s, "%016x", &d); err != nil || len(s) != 16 || d == 0 {
		return 0, fmt.Errorf("bad disk identity %q", s)
	}
	return d, nil
}

// newDisk draws a nonzero random disk identity.
func newDisk() (uint64, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		if d := binary.LittleEndian.Uint64(b[:]); d != 0 {
			return d, nil
		}
	}
}

// writeDurably writes name in dir through a synced temporary file, renamed into place,
// and syncs the directory: after a crash the file is whole or absent.
func writeDurably(dir, name string, b []byte) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// DataDirClaimed reports whether dir already holds a node's identity file: false for a new
// (or wiped) data directory.
func DataDirClaimed(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, identityFile))
	return err == nil
}

// ErrDiskLost is returned when the cluster records replicas on this node, which an empty
// data directory cannot hold.
var ErrDiskLost = errors.New("the cluster expects data on this node")

// CheckNewDataDir asks the authority cell, before a node starts on a new data directory,
// whether the cluster records replicas on that node: then the directory is a lost disk,
// not a new node, and the node must be started as a replacement (--wiped), so that its
// replicas are rebuilt from the other copies and, if it is an authority member, it
// rejoins the cell under a new identity. It returns an error wrapping ErrDiskLost that
// names the volumes. A cell that does not answer within wait (a brand-new cluster whose
// members are starting) is taken as "no replicas": nothing is refused.
func CheckNewDataDir(ctx context.Context, cl *Client, self core.Addr, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	vols, err := listVolumes(ctx, cl)
	if err != nil {
		if errors.Is(err, errBadListing) {
			return err
		}
		return nil // no answer: a new cluster
	}
	var names []string
	for _, e := range vols {
		if e.Config.IsReplica(self) && e.Config.DiskOf(self) != 0 {
			names = append(names, displayName(e.Name, e.Config.Volume))
		}
	}
	if len(names) == 0 {
		return nil
	}
	shown := names[:min(len(names), 8)]
	more := ""
	if len(names) > len(shown) {
		more = fmt.Sprintf(" and %d more", len(names)-len(shown))
	}
	return fmt.Errorf("%w: its data directory is new, but node %d holds replicas of %d volume(s) (%s%s): "+
		"if its disk was lost, start it again with --wiped: each volume's primary then copies the volume to it, "+
		"and it rejoins the authority cell under a new identity; if --data-dir points at the wrong directory, fix it",
		ErrDiskLost, self, len(names), strings.Join(shown, ", "), more)
}
