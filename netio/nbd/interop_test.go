package nbd

// Interoperability with real NBD clients: nbdinfo and nbdcopy (Debian
// package libnbd-bin) and qemu-io (qemu-utils). A missing tool skips the
// test, except under CI (CI set in the environment), where .ci/run installs
// both packages and a missing tool is a failure.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func requireTool(t *testing.T, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not on PATH; CI must have it (.ci/run installs Debian package %s)", tool, pkg)
	}
	t.Skipf("%s is not on PATH: skipping the interoperability test (install it with: apt-get install -y %s)", tool, pkg)
}

// serveLoopback serves srv on 127.0.0.1 until the test ends and returns
// the nbd:// URI prefix.
func serveLoopback(t *testing.T, srv *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not stop")
		}
	})
	return "nbd://" + l.Addr().String() + "/"
}

func runTool(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

type nbdinfoJSON struct {
	Protocol string `json:"protocol"`
	Exports  []struct {
		Name         string `json:"export-name"`
		Description  string `json:"description"`
		Size         uint64 `json:"export-size"`
		ReadOnly     bool   `json:"is_read_only"`
		CanFlush     bool   `json:"can_flush"`
		CanFUA       bool   `json:"can_fua"`
		CanTrim      bool   `json:"can_trim"`
		CanZero      bool   `json:"can_zero"`
		CanMultiConn bool   `json:"can_multi_conn"`
		BlockMin     uint64 `json:"block_size_minimum"`
		BlockPref    uint64 `json:"block_size_preferred"`
		BlockMax     uint64 `json:"block_size_maximum"`
	} `json:"exports"`
}

func interopServer(t *testing.T) (*memBackend, string) {
	disk := newMem(16 << 20)
	srv := newTestServer(t,
		Export{Name: "disk", Description: "test disk", Backend: disk},
		Export{Name: "ro", Backend: newMem(1 << 20), ReadOnly: true},
		Export{Name: "multi", Backend: newMem(4096), MultiConn: true},
	)
	return disk, serveLoopback(t, srv)
}

func TestNbdinfo(t *testing.T) {
	requireTool(t, "nbdinfo", "libnbd-bin")
	_, uri := interopServer(t)

	var info nbdinfoJSON
	if err := json.Unmarshal([]byte(runTool(t, "nbdinfo", "--json", uri+"disk")), &info); err != nil {
		t.Fatal(err)
	}
	if info.Protocol != "newstyle-fixed" || len(info.Exports) != 1 {
		t.Fatalf("nbdinfo: %+v", info)
	}
	e := info.Exports[0]
	if e.Name != "disk" || e.Size != 16<<20 || !e.CanFlush || !e.CanFUA || !e.CanTrim || !e.CanZero || e.ReadOnly || e.CanMultiConn {
		t.Fatalf("nbdinfo disk: %+v", e)
	}
	if e.BlockMin != 1 || e.BlockPref != 4096 || e.BlockMax != 32<<20 {
		t.Fatalf("nbdinfo block sizes: %+v", e)
	}

	if err := json.Unmarshal([]byte(runTool(t, "nbdinfo", "--json", uri+"ro")), &info); err != nil {
		t.Fatal(err)
	}
	if e := info.Exports[0]; e.Size != 1<<20 || !e.ReadOnly || e.CanTrim || e.CanZero || e.CanFUA {
		t.Fatalf("nbdinfo ro: %+v", e)
	}
	if err := json.Unmarshal([]byte(runTool(t, "nbdinfo", "--json", uri+"multi")), &info); err != nil {
		t.Fatal(err)
	}
	if e := info.Exports[0]; !e.CanMultiConn {
		t.Fatalf("nbdinfo multi: %+v", e)
	}

	list := runTool(t, "nbdinfo", "--list", uri)
	for _, want := range []string{`export="disk"`, "description: test disk", `export="ro"`, `export="multi"`} {
		if !strings.Contains(list, want) {
			t.Errorf("nbdinfo --list lacks %q:\n%s", want, list)
		}
	}
	if err := json.Unmarshal([]byte(runTool(t, "nbdinfo", "--list", "--json", uri)), &info); err != nil {
		t.Fatal(err)
	}
	if len(info.Exports) != 3 {
		t.Fatalf("nbdinfo --list --json: %d exports", len(info.Exports))
	}

	// An unknown export is refused, not hung on.
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "nbdinfo", uri+"nope").CombinedOutput(); err == nil {
		t.Fatalf("nbdinfo of an unknown export succeeded:\n%s", out)
	}
}

func TestQemuIO(t *testing.T) {
	requireTool(t, "qemu-io", "qemu-utils")
	disk, uri := interopServer(t)
	out := runTool(t, "qemu-io", "-f", "raw", "--discard=unmap",
		"-c", "write -P 0xab 0 65536", "-c", "read -P 0xab 0 65536",
		"-c", "write -P 0x5 4095 3", "-c", "read -P 0x5 4095 3",
		"-c", "write -z 131072 65536", "-c", "read -P 0 131072 65536",
		"-c", "discard 0 4096", "-c", "flush",
		uri+"disk")
	if strings.Contains(out, "Pattern verification failed") || strings.Contains(out, "error") {
		t.Fatalf("qemu-io:\n%s", out)
	}
	want := bytes.Repeat([]byte{0xab}, 65536)
	copy(want[4095:], []byte{5, 5, 5})
	clear(want[:4096]) // discarded after; the in-memory backend zeroes
	if got := disk.snapshot(0, 65536); !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && got[i] == want[i] {
			i++
		}
		t.Fatalf("backend contents differ from what qemu-io wrote, first at %d: %#x, want %#x\n%s", i, got[i], want[i], out)
	}
	if disk.flushes.Load() == 0 {
		t.Fatal("qemu-io flush did not reach the backend")
	}
}

func TestNbdcopy(t *testing.T) {
	requireTool(t, "nbdcopy", "libnbd-bin")
	disk, uri := interopServer(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	data := make([]byte, 16<<20)
	rand.Read(data)
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	// Many requests in flight from a real client, both ways.
	runTool(t, "nbdcopy", "--requests=32", "--flush", src, uri+"disk")
	if !bytes.Equal(disk.snapshot(0, len(data)), data) {
		t.Fatal("nbdcopy to the server: backend contents differ")
	}
	dst := filepath.Join(dir, "dst.img")
	runTool(t, "nbdcopy", "--requests=32", uri+"disk", dst)
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("nbdcopy from the server: contents differ")
	}
}
