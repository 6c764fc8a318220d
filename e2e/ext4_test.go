package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/testutil"
)

// needKernel skips where the machine cannot mount a file system made by the test: it
// takes root, /dev/fuse (nbdfuse) and loop devices. These are properties of the machine,
// not packages, so they skip under CI as well (and say so).
func needKernel(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting ext4 on a loop device needs root")
	}
	for _, dev := range []string{"/dev/fuse", "/dev/loop-control"} {
		if _, err := os.Stat(dev); err != nil {
			t.Skipf("%s is missing: this machine cannot mount the test's file system", dev)
		}
	}
}

// sh runs a command with a bounded time and fails the test on error.
func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := try(args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	return string(out), err
}

// blockStack is the kernel's view of a volume: nbdfuse exposes the NBD export as a file,
// a loop device makes it a block device.
type blockStack struct {
	t       *testing.T
	fuseDir string
	fuse    *proc
	loop    string
}

func openStack(t *testing.T, dir, uri string, size int64) *blockStack {
	t.Helper()
	s := &blockStack{t: t, fuseDir: filepath.Join(dir, "fuse")}
	if err := os.MkdirAll(s.fuseDir, 0o755); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(s.fuseDir, "disk")
	s.fuse = startProc(t, "nbdfuse", filepath.Join(dir, "nbdfuse.log"), "nbdfuse", disk, uri)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if fi, err := os.Stat(disk); err == nil && fi.Size() == size {
			break
		}
		if s.fuse.exited() || time.Now().After(deadline) {
			s.close()
			t.Fatalf("nbdfuse did not expose %s within 30 s: %v\n%s", disk, s.fuse.err, s.fuse.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.loop = strings.TrimSpace(sh(t, "losetup", "--find", "--show", disk))
	return s
}

// close detaches the loop device and unmounts nbdfuse (idempotent).
func (s *blockStack) close() {
	if s.loop != "" {
		if out, err := try("losetup", "--detach", s.loop); err != nil {
			s.t.Errorf("losetup --detach %s: %v %s", s.loop, err, out)
		}
		s.loop = ""
	}
	if s.fuse != nil && !s.fuse.exited() {
		_, _ = try("umount", s.fuseDir)
		select {
		case <-s.fuse.done:
		case <-time.After(15 * time.Second):
			s.fuse.signal(s.t, syscall.SIGKILL)
			_, _ = try("umount", "-l", s.fuseDir)
		}
	}
}

// A real file system on a volume: ext4 made through nbdfuse and a loop device, files
// written, unmounted, fsck clean; the primary's process is SIGKILLed and the volume
// fails over under the same `cairn attach`; the whole client stack is rebuilt (so no
// page cache hides the volume), fsck is still clean, the files are intact, and the file
// system takes new files on the new primary.
func TestExt4SurvivesPrimaryKill(t *testing.T) {
	needKernel(t)
	testutil.NeedTool(t, "nbdfuse", "libnbd-bin")
	testutil.NeedTool(t, "mkfs.ext4", "e2fsprogs")
	testutil.NeedTool(t, "fsck.ext4", "e2fsprogs")
	testutil.NeedTool(t, "losetup", "mount")
	const size = 256 << 20
	c := newCluster(t, 3)
	v := c.createVolume("fs", "256M", 2)
	uri, attach := c.attach("fs", "--timeout", "60s")
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	mounted := false
	umount := func() {
		if mounted {
			sh(t, "umount", mnt)
			mounted = false
		}
	}
	stack := openStack(t, dir, uri, size)
	t.Cleanup(func() {
		if mounted {
			_, _ = try("umount", "-l", mnt)
		}
		stack.close()
	})
	sh(t, "mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", stack.loop)
	sh(t, "mount", "-t", "ext4", stack.loop, mnt)
	mounted = true
	files := writeFiles(t, mnt, "before", 24)
	umount()
	sh(t, "sync")
	sh(t, "fsck.ext4", "-f", "-n", stack.loop)
	stack.close()

	// The primary dies without warning.
	old := v.Primary
	start := time.Now()
	c.nodes[old-1].signal(t, syscall.SIGKILL)

	stack = openStack(t, dir, uri, size)
	sh(t, "fsck.ext4", "-f", "-n", stack.loop)
	t.Logf("fsck after SIGKILL of primary node %d finished %v later", old, time.Since(start).Round(time.Millisecond))
	sh(t, "mount", "-t", "ext4", stack.loop, mnt)
	mounted = true
	checkFiles(t, mnt, files)
	more := writeFiles(t, mnt, "after", 8)
	umount()
	sh(t, "sync")
	sh(t, "fsck.ext4", "-f", "-n", stack.loop)
	sh(t, "mount", "-t", "ext4", "-o", "ro", stack.loop, mnt)
	mounted = true
	checkFiles(t, mnt, files)
	checkFiles(t, mnt, more)
	umount()
	stack.close()

	now := c.volume("fs")
	if now.Primary == old || now.Epoch <= v.Epoch {
		t.Fatalf("no failover: before %+v, after %+v", v, now)
	}
	if attach.exited() {
		t.Fatalf("cairn attach exited: %v", attach.err)
	}
	t.Logf("primary moved from node %d to node %d (epoch %d -> %d)", old, now.Primary, v.Epoch, now.Epoch)
}

// writeFiles writes n files of 1 KiB to 2 MiB of random bytes (some in a subdirectory)
// and returns their SHA-256 sums by relative path.
func writeFiles(t *testing.T, root, prefix string, n int) map[string][32]byte {
	t.Helper()
	sums := map[string][32]byte{}
	if err := os.MkdirAll(filepath.Join(root, prefix), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		size := 1<<10 + (i*397<<10)%(2<<20)
		data := make([]byte, size)
		rand.Read(data)
		rel := fmt.Sprintf("%s-%02d.bin", prefix, i)
		if i%2 == 1 {
			rel = filepath.Join(prefix, rel)
		}
		if err := os.WriteFile(filepath.Join(root, rel), data, 0o644); err != nil {
			t.Fatal(err)
		}
		sums[rel] = sha256.Sum256(data)
	}
	return sums
}

func checkFiles(t *testing.T, root string, sums map[string][32]byte) {
	t.Helper()
	for rel, want := range sums {
		data, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		if sha256.Sum256(data) != want {
			t.Fatalf("%s: content differs from what was written", rel)
		}
	}
}
