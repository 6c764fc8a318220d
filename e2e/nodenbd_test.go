package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/testutil"
)

// Every node serves every volume over NBD (cairn node --nbd), found by name when a client
// connects: a volume created after the nodes started is served; a write through the
// primary's node reads back through the other nodes' (which forward to the primary); a
// listing shows the volumes; an unknown name is refused with a reason; and a node under
// NBD load stops cleanly on SIGTERM, answering the requests in flight first.
func TestNodeServesNBD(t *testing.T) {
	testutil.NeedTool(t, "qemu-io", "qemu-utils")
	testutil.NeedTool(t, "nbdinfo", "libnbd-bin")
	testutil.NeedTool(t, "fio", "fio")
	c := newClusterWith(t, clusterOptions{nodes: 3, nbd: true})
	v := c.createVolume("alpha", "64M", 2)
	uri := func(i int, name string) string { return "nbd://" + c.nbd[i] + "/" + name }
	p := int(v.Primary) - 1

	out := sh(t, "qemu-io", "-f", "raw", "-c", "write -P 0x3c 0 1m", "-c", "write -P 0x5d 3000 5000", "-c", "read -P 0x3c 0 3000", uri(p, "alpha"))
	if strings.Contains(out, "failed") {
		t.Fatalf("qemu-io through the primary's node:\n%s", out)
	}
	for i := range c.nodes {
		out := sh(t, "qemu-io", "-f", "raw", "-c", "read -P 0x3c 0 3000", "-c", "read -P 0x5d 3000 5000", "-c", "read -P 0x3c 8000 1040384", uri(i, "alpha"))
		if strings.Contains(out, "failed") || strings.Count(out, "read ") != 3 {
			t.Fatalf("qemu-io through node %d:\n%s", i+1, out)
		}
	}

	c.createVolume("beta", "16M", 3) // after the NBD servers started
	for i := range c.nodes {
		if got := strings.TrimSpace(sh(t, "nbdinfo", "--size", uri(i, "beta"))); got != fmt.Sprint(16<<20) {
			t.Fatalf("node %d: size of beta %q, want %d", i+1, got, 16<<20)
		}
	}
	list := sh(t, "nbdinfo", "--list", "nbd://"+c.nbd[0])
	if !strings.Contains(list, `export="alpha"`) || !strings.Contains(list, `export="beta"`) || !strings.Contains(list, "RF 3") {
		t.Fatalf("nbdinfo --list:\n%s", list)
	}
	if out, err := try("nbdinfo", "--size", uri(1, "nosuch")); err == nil || !strings.Contains(out, "nosuch") {
		t.Fatalf("nbdinfo of an unknown volume: err %v\n%s", err, out)
	}

	// SIGTERM the primary's node under NBD load: it exits 0, promptly.
	fio := exec.Command("fio", "--name=load", "--ioengine=nbd", "--uri="+uri(p, "alpha"), "--rw=randwrite", "--bs=4k",
		"--iodepth=8", "--size=32m", "--time_based", "--runtime=60", "--output-format=terse")
	if err := fio.Start(); err != nil {
		t.Fatal(err)
	}
	defer fio.Process.Kill()
	time.Sleep(2 * time.Second)
	start := time.Now()
	c.nodes[p].signal(t, syscall.SIGTERM)
	took := time.Since(start)
	if c.nodes[p].err != nil {
		t.Fatalf("node %d exited with %v after SIGTERM under NBD load\n%s", p+1, c.nodes[p].err, c.nodes[p].tail())
	}
	if took > 5*time.Second {
		t.Fatalf("node %d took %v to stop under NBD load, want under 5 s", p+1, took)
	}
	t.Logf("node %d stopped %v after SIGTERM under NBD load", p+1, took.Round(time.Millisecond))
	_ = fio.Wait()
}

// fio writes through the primary's node (the local route) and verifies every block while
// a secondary is SIGKILLed and later restarted: the writes ride through the primary
// dropping it from the in-sync set, nothing fails, and a second pass after the restart
// (verify only) reads back every block as written.
func TestNodeNBDSurvivesSecondaryKill(t *testing.T) {
	testutil.NeedTool(t, "fio", "fio")
	c := newClusterWith(t, clusterOptions{nodes: 3, nbd: true})
	v := c.createVolume("gamma", "64M", 3)
	p := int(v.Primary) - 1
	victim := (p + 1) % 3
	job := []string{"--name=v", "--ioengine=nbd", "--uri=nbd://" + c.nbd[p] + "/gamma", "--rw=randwrite", "--bs=4k",
		"--size=24m", "--iodepth=8", "--verify=crc32c", "--verify_fatal=1", "--randseed=7", "--output-format=terse"}
	fio := exec.Command("fio", job...)
	out := &strings.Builder{}
	fio.Stdout, fio.Stderr = out, out
	if err := fio.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	c.nodes[victim].signal(t, syscall.SIGKILL)
	if err := fio.Wait(); err != nil {
		t.Fatalf("fio with node %d killed: %v\n%s", victim+1, err, out)
	}
	c.start(victim)
	c.waitHealthy(victim)
	again := sh(t, append([]string{"fio"}, append(job, "--verify_only")...)...)
	t.Logf("write+verify with node %d SIGKILLed, then verify-only after its restart: both passed\n%s%s", victim+1, out, again)
}
