// Package testutil holds helpers the packages' tests share: loopback ports and the
// external tools the real-client tests drive.
package testutil

import (
	"net"
	"os"
	"os/exec"
	"testing"
)

// FreePorts returns n loopback addresses that were free a moment ago.
func FreePorts(t testing.TB, n int) []string {
	t.Helper()
	var out []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return out
}

// NeedTool skips the test when tool is not on PATH, except under CI (CI set), where
// .ci/run installs the Debian package pkg and a missing tool fails the test.
func NeedTool(t testing.TB, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not on PATH; CI must have it (.ci/run installs Debian package %s)", tool, pkg)
	}
	t.Skipf("%s is not on PATH (apt-get install -y %s)", tool, pkg)
}
