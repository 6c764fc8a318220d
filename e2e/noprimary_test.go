package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/testutil"
)

// A volume whose only replica is down: an NBD read waits at most attach's --timeout and
// fails with EIO, and the connection is not left hanging. Once the node restarts from
// its data directory, the same attach serves the write it acknowledged before the
// SIGKILL.
func TestNoPrimaryGivesEIOThenRecovers(t *testing.T) {
	testutil.NeedTool(t, "qemu-io", "qemu-utils")
	c := newCluster(t, 3)
	v := c.createVolume("lonely", "64M", 1)
	uri, _ := c.attach("lonely", "--timeout", "3s")
	out := sh(t, "qemu-io", "-f", "raw", "-c", "write -P 0x5a 1m 64k", "-c", "read -P 0x5a 1m 64k", uri)
	if strings.Contains(out, "failed") || strings.Count(out, "read ") != 1 {
		t.Fatalf("qemu-io before the kill:\n%s", out)
	}
	host := int(v.Primary) - 1
	c.nodes[host].signal(t, syscall.SIGKILL)

	start := time.Now()
	out, _ = try("qemu-io", "-f", "raw", "-c", "read -P 0x5a 1m 64k", uri)
	took := time.Since(start)
	if !strings.Contains(out, "Input/output error") {
		t.Fatalf("read with no primary: want EIO, got:\n%s", out)
	}
	// qemu-io's open makes one request of its own, which waits its 3 s too (three reads
	// take 12 s): about 6 s in all, far below a hang.
	if took < 5*time.Second || took > 15*time.Second {
		t.Fatalf("read with no primary failed after %v; want about 6 s (two requests of 3 s)", took)
	}
	t.Logf("read with no primary failed with EIO after %v:\n%s", took.Round(time.Millisecond), out)

	c.start(host)
	c.waitHealthy(host)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ = try("qemu-io", "-f", "raw", "-c", "read -P 0x5a 1m 64k", uri)
		if !strings.Contains(out, "failed") && strings.Count(out, "read ") == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted node does not serve the acknowledged write within 30 s:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
