package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/internal/testutil"
	"github.com/cairnstore/cairn/netio"
)

// Issue 14's reproduction on real processes: an RF 2 volume holds data; one replica's data
// directory is deleted and its node started again with the same command line. Before disks
// had identities the node was listed in sync again within seconds, was promoted when the
// other replica died, and served zeros with success. Now the primary rebuilds it (a copy of
// the whole volume) and grows it back in under its new disk, after which it may take over
// and serves every block as written; and with the other replica down as well, the wiped
// node is never promoted, not even when a new cell leader pushes it the configuration.
//
// Five nodes: the authority cell is nodes 1-3, and the volume is placed on nodes 4 and 5
// (small volumes are created until one lands there), so both replicas can be down while
// the cell answers.
func TestWipedReplicaNeverServesWhatItLost(t *testing.T) {
	c := newCluster(t, 5)
	var v volumeJSON
	for i := 0; ; i++ {
		if i == 60 {
			t.Fatal("no volume placed on nodes 4 and 5 in 60 creates")
		}
		v = c.createVolume(fmt.Sprintf("w%d", i), "16M", 2)
		if slices.Equal(v.Replicas, []uint32{4, 5}) {
			break
		}
	}
	name, id := v.Name, core.VolumeID(v.ID)
	deadline := time.Now().Add(20 * time.Second)
	for v = c.volume(name); len(v.InSync) < 2 || v.Disks[0] == "" || v.Disks[1] == ""; v = c.volume(name) {
		if time.Now().After(deadline) {
			t.Fatalf("volume %s not in sync with its disks recorded: %+v", name, v)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cl := c.client(t, 1300, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	// 4 MiB of data in 256 KiB writes, every block its own pattern.
	const blocks, per = 1024, 64
	data := make([]byte, blocks*core.BlockSize)
	for b := range blocks {
		copy(data[b*core.BlockSize:], bytes.Repeat([]byte(fmt.Sprintf("block %5d ", b)), core.BlockSize/11))
	}
	for b := 0; b < blocks; b += per {
		if err := cl.Write(ctx, id, uint64(b), data[b*core.BlockSize:(b+per)*core.BlockSize]); err != nil {
			t.Fatalf("write at block %d: %v", b, err)
		}
	}
	p := int(v.Primary)
	s := 9 - p // the other one of 4 and 5
	readAll := func(what string) {
		t.Helper()
		for b := 0; b < blocks; b += per {
			got, err := cl.Read(ctx, id, uint64(b), per)
			if err != nil {
				t.Fatalf("%s: read at block %d: %v", what, b, err)
			}
			if !bytes.Equal(got, data[b*core.BlockSize:(b+per)*core.BlockSize]) {
				t.Fatalf("%s: blocks %d..%d differ from what was written (%q...)", what, b, b+per-1, got[:16])
			}
		}
	}
	// wipe loses node n's disk. The same command line is refused (the cluster records
	// replicas there); the operator then says it is a replacement (--wiped).
	wipe := func(n int) {
		t.Helper()
		c.nodes[n-1].signal(t, syscall.SIGKILL)
		if err := os.RemoveAll(filepath.Join(c.dir, fmt.Sprintf("node%d", n))); err != nil {
			t.Fatal(err)
		}
		c.start(n - 1)
		deadline := time.Now().Add(20 * time.Second)
		for !c.nodes[n-1].exited() {
			if time.Now().After(deadline) {
				t.Fatalf("node %d started on an empty data directory where the cluster expects its replicas", n)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if out := c.nodes[n-1].tail(); !strings.Contains(out, "start it again with --wiped") {
			t.Fatalf("node %d refused the empty directory without saying what to do:\n%s", n, out)
		}
		if _, err := os.Stat(filepath.Join(c.dir, fmt.Sprintf("node%d", n), "cairn-node.json")); err == nil {
			t.Fatalf("node %d claimed the directory it refused", n)
		}
		c.start(n-1, "--wiped")
		c.waitHealthy(n - 1)
	}
	// rebuilt waits until node n is in sync again under a disk other than old.
	rebuilt := func(n int, old string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for v = c.volume(name); len(v.InSync) < 2 || v.Disks[diskIdx(n)] == old || v.Disks[diskIdx(n)] == ""; v = c.volume(name) {
			if time.Now().After(deadline) {
				t.Fatalf("the wiped replica %d was not rebuilt within 60 s: %+v", n, v)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("node %d rebuilt: %+v", n, v)
	}

	// 1. The operator's reproduction: the secondary's disk is lost while the primary runs.
	// It is rebuilt under its new disk; then the primary dies and the rebuilt node serves
	// every block as written.
	wipe(s)
	rebuilt(s, v.Disks[diskIdx(s)])
	c.nodes[p-1].signal(t, syscall.SIGKILL)
	readAll("after failing over to the rebuilt replica")
	if now := c.volume(name); now.Primary != uint32(s) {
		t.Fatalf("reads served, but the primary is %d, not the rebuilt node %d", now.Primary, s)
	}
	c.start(p - 1)
	c.waitHealthy(p - 1)
	p, s = s, p
	deadline = time.Now().Add(30 * time.Second)
	for v = c.volume(name); len(v.InSync) < 2; v = c.volume(name) {
		if time.Now().After(deadline) {
			t.Fatalf("the restarted node did not rejoin: %+v", v)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// 2. Both replicas go down and the secondary's disk is lost; it comes back empty while
	// the primary stays down. A new cell leader pushes every configuration, so the wiped
	// node learns it is listed in the in-sync set: it must not take over.
	oldDisk := v.Disks[diskIdx(s)]
	c.nodes[p-1].signal(t, syscall.SIGKILL)
	wipe(s)
	leader := c.cellLeader()
	c.nodes[leader-1].signal(t, syscall.SIGKILL)
	c.start(leader - 1)
	c.waitHealthy(leader - 1)
	time.Sleep(5 * time.Second) // several fail timeouts, probes and leases
	if now := c.volume(name); now.Primary != uint32(p) {
		t.Fatalf("the volume changed primary while its only intact replica was down: %+v", now)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 2*time.Second)
	got, err := cl.Read(short, id, 0, 1)
	cancelShort()
	if err == nil {
		t.Fatalf("a read succeeded with the only intact replica down: %q", got[:16])
	}
	// The replica with the data returns: it serves, rebuilds the wiped one, grows it back
	// in; then it dies and the rebuilt node serves everything.
	c.start(p - 1)
	c.waitHealthy(p - 1)
	rebuilt(s, oldDisk)
	c.nodes[p-1].signal(t, syscall.SIGKILL)
	readAll("after failing over to the node rebuilt while its peer was down")
}

// diskIdx is node n's position among the volume's replicas [4 5].
func diskIdx(n int) int { return n - 4 }

// cellLeader is the node that leads the authority cell (nodes 1-3), waiting up to 10 s.
func (c *cluster) cellLeader() int {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for i := range min(3, len(c.nodes)) {
			var st netio.StatusJSON
			if !c.nodes[i].exited() && getJSON(c.admin[i], "/v1/status", time.Second, &st) == nil && st.AuthorityLeader {
				return i + 1
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatal("no authority leader within 10 s")
	return 0
}

// A replica host's disk is lost while fio writes and verifies (crc32c) two volumes, RF 2 and
// RF 3, through their primaries' nodes: four nodes in three zones. The node comes back with
// --wiped; fio goes on without an error, both volumes are back to full RF with the node
// in sync under its new disk, a second fio pass (verify only) reads every block back as
// written, and, once the nodes are stopped, every replica's block file holds the same data.
func TestRebuildUnderFio(t *testing.T) {
	testutil.NeedTool(t, "fio", "fio")
	c := newClusterWith(t, clusterOptions{nodes: 4, nbd: true})
	vols := []volumeJSON{c.createVolume("two", "64M", 2), c.createVolume("three", "64M", 3)}
	// The victim hosts the RF 3 volume and is the primary of neither.
	victim := 0
	for _, r := range vols[1].Replicas {
		if r != vols[0].Primary && r != vols[1].Primary {
			victim = int(r)
		}
	}
	jobs := make([][]string, len(vols))
	fios := make([]*exec.Cmd, len(vols))
	outs := make([]*strings.Builder, len(vols))
	for i, v := range vols {
		deadline := time.Now().Add(20 * time.Second)
		for v = c.volume(v.Name); v.State != "healthy" || slices.Contains(v.Disks, ""); v = c.volume(v.Name) {
			if time.Now().After(deadline) {
				t.Fatalf("volume %s not healthy: %+v", v.Name, v)
			}
			time.Sleep(50 * time.Millisecond)
		}
		vols[i] = v
		jobs[i] = []string{"--name=" + v.Name, "--ioengine=nbd", "--uri=nbd://" + c.nbd[v.Primary-1] + "/" + v.Name,
			"--rw=randwrite", "--bs=4k", "--size=32m", "--iodepth=8", "--verify=crc32c", "--verify_fatal=1",
			"--randseed=" + fmt.Sprint(11+i), "--output-format=terse"}
		fios[i] = exec.Command("fio", jobs[i]...)
		outs[i] = &strings.Builder{}
		fios[i].Stdout, fios[i].Stderr = outs[i], outs[i]
		if err := fios[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	c.nodes[victim-1].signal(t, syscall.SIGKILL)
	if err := os.RemoveAll(filepath.Join(c.dir, fmt.Sprintf("node%d", victim))); err != nil {
		t.Fatal(err)
	}
	c.start(victim-1, "--wiped")
	c.waitHealthy(victim - 1)
	for i, f := range fios {
		if err := f.Wait(); err != nil {
			t.Fatalf("fio on %s with node %d's disk lost: %v\n%s", vols[i].Name, victim, err, outs[i])
		}
	}
	for _, v := range vols {
		old := v
		deadline := time.Now().Add(60 * time.Second)
		for {
			v = c.volume(old.Name)
			i := slices.Index(v.Replicas, uint32(victim))
			if v.State == "healthy" && (i < 0 || (v.Disks[i] != "" && v.Disks[i] != old.Disks[i])) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("volume %s not back to full RF with node %d rebuilt within 60 s: %+v", v.Name, victim, v)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("%s back to full RF: %+v", v.Name, v)
	}
	for i := range vols {
		sh(t, append([]string{"fio"}, append(jobs[i], "--verify_only")...)...)
	}
	c.stopAll()
	c.sameReplicas(vols, 64<<20)
}

// stopAll stops every running node with SIGTERM and waits for each to exit.
func (c *cluster) stopAll() {
	c.t.Helper()
	for _, p := range c.nodes {
		if !p.exited() {
			p.signal(c.t, syscall.SIGTERM)
		}
	}
	for i, p := range c.nodes {
		deadline := time.Now().Add(20 * time.Second)
		for !p.exited() {
			if time.Now().After(deadline) {
				c.t.Fatalf("node %d did not stop within 20 s of SIGTERM", i+1)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// sameReplicas: every replica of each volume (of size bytes) has a block file holding
// the same data (the nodes are stopped).
func (c *cluster) sameReplicas(vols []volumeJSON, size int) {
	c.t.Helper()
	for _, v := range vols {
		var ref []byte
		for _, r := range v.Replicas {
			b, err := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("node%d", r), "node", "blocks", fmt.Sprintf("vol-%08d.dat", v.ID)))
			if err != nil && !errors.Is(err, fs.ErrNotExist) { // (never written: all zeros)
				c.t.Fatalf("%s on node %d: %v", v.Name, r, err)
			}
			slots := size / core.BlockSize * (core.BlockSize + 8) // slots: block, CRC32C, magic
			if len(b) > slots {
				c.t.Fatalf("%s on node %d: block file of %d bytes, more than %d", v.Name, r, len(b), slots)
			}
			b = append(b, make([]byte, slots-len(b))...) // never-written slots past the end read as zeros
			if ref == nil {
				ref = b
			} else if !bytes.Equal(ref, b) {
				c.t.Fatalf("%s: node %d's replica differs from node %d's", v.Name, r, v.Replicas[0])
			}
		}
	}
}
