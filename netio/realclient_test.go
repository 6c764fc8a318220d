package netio

// Real NBD clients against a real three-node cluster (TCP, files, the real clock): the
// volume served by netio/nbd over netio.Volume, as `cairn attach` does. A missing tool
// skips, except under CI, where .ci/run installs qemu-utils and libnbd-bin.

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

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/internal/testutil"
	"github.com/cairnstore/cairn/netio/nbd"
)

func tool(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = t.TempDir() // fio leaves a verify-state file in its working directory
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestRealClientsOnCluster(t *testing.T) {
	testutil.NeedTool(t, "qemu-io", "qemu-utils")
	testutil.NeedTool(t, "nbdinfo", "libnbd-bin")
	testutil.NeedTool(t, "nbdcopy", "libnbd-bin")
	testutil.NeedTool(t, "fio", "fio")
	tc := newTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cl := tc.client(t, ctx, 1002, 20*time.Second)
	const blocks = (96 << 20) / core.BlockSize
	createVolume(t, ctx, cl, core.AuthRequest{Vol: 3, Blocks: blocks, RF: 2})
	srv, err := nbd.NewServer([]nbd.Export{{Name: "demo", Backend: NewVolume(cl, 3, blocks), MultiConn: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, l) }()
	defer func() { scancel(); <-done }()
	uri := "nbd://" + l.Addr().String() + "/demo"

	// nbdinfo: flush, FUA and trim advertised.
	var info struct {
		Exports []struct {
			Size     uint64 `json:"export-size"`
			CanFlush bool   `json:"can_flush"`
			CanFUA   bool   `json:"can_fua"`
			CanTrim  bool   `json:"can_trim"`
		} `json:"exports"`
	}
	if err := json.Unmarshal([]byte(tool(t, "nbdinfo", "--json", uri)), &info); err != nil || len(info.Exports) != 1 {
		t.Fatalf("nbdinfo --json: %v %+v", err, info)
	}
	if e := info.Exports[0]; e.Size != blocks*core.BlockSize || !e.CanFlush || !e.CanFUA || !e.CanTrim {
		t.Fatalf("nbdinfo: %+v", e)
	}
	// qemu-io: patterns, unaligned and multi-block, verified on read.
	out := tool(t, "qemu-io", "-f", "raw",
		"-c", "write -P 0xab 0 256k", "-c", "read -P 0xab 0 256k",
		"-c", "write -P 0x5 4095 3", "-c", "read -P 0x5 4095 3",
		"-c", "write -P 0x7c 1m 1234567", "-c", "read -P 0x7c 1m 1234567",
		"-c", "flush", uri)
	if strings.Contains(out, "Pattern verification failed") || strings.Count(out, "read ") != 3 {
		t.Fatalf("qemu-io:\n%s", out)
	}
	// nbdcopy: a random 64 MiB image in and out, byte-identical.
	dir := t.TempDir()
	in, back := filepath.Join(dir, "in.img"), filepath.Join(dir, "out.img")
	img := make([]byte, 64<<20)
	rand.Read(img)
	if err := os.WriteFile(in, img, 0o644); err != nil {
		t.Fatal(err)
	}
	tool(t, "nbdcopy", in, uri)
	tool(t, "nbdcopy", uri, back)
	got, err := os.ReadFile(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:len(img)], img) {
		t.Fatal("nbdcopy: the image read back differs from the one written")
	}
	// fio with its nbd engine: random 4 KiB writes at QD 32, verified with crc32c.
	out = tool(t, "fio", "--name=cairn", "--ioengine=nbd", "--uri="+uri, "--rw=randwrite", "--bs=4k", "--iodepth=32",
		"--size=16m", "--verify=crc32c", "--do_verify=1", "--verify_fatal=1", "--output-format=terse", "--terse-version=3")
	if f := strings.Split(strings.TrimSpace(out), ";"); len(f) < 5 || f[4] != "0" {
		t.Fatalf("fio reported errors (terse field 5 is the error count):\n%s", out)
	}
}
