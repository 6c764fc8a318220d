package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/netio"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{"1G": 1 << 30, "512M": 512 << 20, "4096K": 4096 << 10, "8192": 8192, "2GiB": 2 << 30} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-1G", "1000", "1.5G", "2P", "G"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func TestVolumeID(t *testing.T) {
	if id, err := volumeID("7"); err != nil || id != 7 {
		t.Fatalf("numeric: %d %v", id, err)
	}
	a, _ := volumeID("demo")
	b, _ := volumeID("demo")
	c, _ := volumeID("other")
	if a != b || a == c || a < 1<<31 {
		t.Fatalf("names: %d %d %d", a, b, c)
	}
	for _, bad := range []string{"", "0", "2147483648"} {
		if _, err := volumeID(bad); err == nil {
			t.Errorf("volumeID(%q) accepted", bad)
		}
	}
}

func TestParseAdminURLs(t *testing.T) {
	got, err := parseAdminURLs(" http://a:1, b:2 ,https://c:3/")
	if err != nil || strings.Join(got, " ") != "http://a:1 http://b:2 https://c:3" {
		t.Fatalf("parseAdminURLs: %v %v", got, err)
	}
	for _, bad := range []string{"", ",", "ftp://a:1", "http://", "http://a:1/v1", "http://a:1?x=1"} {
		if _, err := parseAdminURLs(bad); err == nil {
			t.Errorf("parseAdminURLs(%q) accepted", bad)
		}
	}
}

// cli runs the binary's entry point and returns its exit status and outputs.
func cli(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// deadAddr is an address where nothing listens (connection refused).
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return "http://" + a
}

// A fake admin API with canned answers: the CLI's requests, tables, JSON, error messages
// and exit codes, and its moving on to the next address when one refuses connections.
func TestVolumeCLIAgainstCannedAPI(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	vol := netio.VolumeJSON{Name: "db", ID: 2700000000, SizeMiB: 100 << 10, RF: 3, Epoch: 4, Primary: 2, InSync: []core.Addr{1, 2, 3},
		Replicas: []core.Addr{1, 2, 3}, QoS: core.QoS{IOPS: 3000, BurstIOPS: 6000, BurstCredits: 5400000, MBps: 125}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" "+string(body))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == "POST" && strings.Contains(string(body), `"name":"taken"`):
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, `{"error":"volume \"taken\" already exists"}`)
		case r.Method == "POST":
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(vol)
		case r.URL.Path == "/v1/volumes":
			json.NewEncoder(w).Encode(netio.VolumesJSON{Volumes: []netio.VolumeJSON{vol, {Name: "7", ID: 7, SizeMiB: 64, RF: 1, Epoch: 1,
				Primary: 1, InSync: []core.Addr{1}, Replicas: []core.Addr{1}}}})
		case r.URL.Path == "/v1/volumes/nosuch":
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":"no volume \"nosuch\""}`)
		case r.URL.Path == "/v1/volumes/garbage":
			fmt.Fprint(w, `[1,2`)
		default:
			json.NewEncoder(w).Encode(vol)
		}
	}))
	defer srv.Close()
	admin := "--admin=" + deadAddr(t) + "," + srv.URL // the first refuses: the second answers

	code, out, errs := cli("volume", "create", "db", "--size", "100G", "--rf", "3", "--iops", "3000", "--burst-iops", "6000",
		"--burst-credits", "5400000", "--mbps", "125", admin)
	if code != 0 || !strings.Contains(out, "NAME") || !strings.Contains(out, "100 GiB") ||
		!strings.Contains(out, "3000 IOPS, burst 6000 (5400000 credits), 125 MiB/s") || !strings.Contains(out, "1,2,3") {
		t.Fatalf("create: %d\n%s\n%s", code, out, errs)
	}
	if want := `POST /v1/volumes {"name":"db","qos":{"IOPS":3000,"BurstIOPS":6000,"BurstCredits":5400000,"MBps":125},"rf":3,"size":"100G"}`; seen[0] != want {
		t.Fatalf("create sent %q, want %q", seen[0], want)
	}
	// Flags before the name work too.
	if code, out, errs = cli("volume", "create", "--size", "1G", "db", admin); code != 0 || !strings.Contains(out, "db") {
		t.Fatalf("create with flags first: %d %s %s", code, out, errs)
	}
	if code, out, errs = cli("volume", "list", admin); code != 0 || strings.Count(out, "\n") != 3 || !strings.Contains(out, "unthrottled") ||
		!strings.Contains(out, "64 MiB") {
		t.Fatalf("list: %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = cli("volume", "list", "--json", admin)
	var l netio.VolumesJSON
	if code != 0 || json.Unmarshal([]byte(out), &l) != nil || len(l.Volumes) != 2 || l.Volumes[0].Name != "db" {
		t.Fatalf("list --json: %d %s", code, out)
	}
	if code, out, _ = cli("volume", "show", "db", admin); code != 0 || !strings.Contains(out, "2700000000") {
		t.Fatalf("show: %d %s", code, out)
	}
	if code, out, _ = cli("volume", "delete", "db", admin); code != 0 || !strings.Contains(out, "volume db deleted") {
		t.Fatalf("delete: %d %s", code, out)
	}
	if code, _, _ = cli("volume", "qos", "db", "--iops", "500", admin); code != 0 || seen[len(seen)-1] != `PUT /v1/volumes/db/qos {"IOPS":500,"BurstIOPS":500,"BurstCredits":0,"MBps":0}` {
		t.Fatalf("qos: %d, sent %q", code, seen[len(seen)-1])
	}
	// Failures the API reports: exit 1 with its message.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"volume", "create", "taken", "--size", "1G"}, `volume "taken" already exists`},
		{[]string{"volume", "show", "nosuch"}, `no volume "nosuch"`},
		{[]string{"volume", "show", "garbage"}, "not what this cairn expects"},
	} {
		code, out, errs := cli(append(c.args, admin)...)
		if code != 1 || !strings.Contains(errs, c.want) || out != "" {
			t.Errorf("%v: %d %q %q; want exit 1 saying %q", c.args, code, out, errs, c.want)
		}
	}
	// Nothing answers: exit 1, saying so.
	if code, _, errs = cli("volume", "list", "--admin", deadAddr(t)+","+deadAddr(t)); code != 1 || !strings.Contains(errs, "no admin API answered") {
		t.Fatalf("no node up: %d %s", code, errs)
	}
	// Bad usage: exit 2 before any request.
	n := len(seen)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"volume", "create", "db"}, "--size is required"},
		{[]string{"volume", "create", "db", "--size", "1000"}, "multiple of 4 KiB"},
		{[]string{"volume", "create", "db", "--size", "1G", "--rf", "9"}, "--rf 9"},
		{[]string{"volume", "create", "bad name", "--size", "1G"}, "volume name"},
		{[]string{"volume", "create", "db", "--size", "1G", "--iops", "100", "--burst-iops", "50"}, "IOPS"},
		{[]string{"volume", "show"}, "missing volume NAME"},
		{[]string{"volume", "show", "db", "--size", "1G"}, "--size does not apply to show"},
		{[]string{"volume", "list", "db"}, "list takes no volume name"},
		{[]string{"volume", "qos", "db"}, "--iops is required"},
		{[]string{"volume", "frobnicate", "db"}, "unknown subcommand"},
		{[]string{"volume", "show", "db", "extra"}, "unexpected arguments"},
		{[]string{"volume", "show", "db", "--no-such-flag"}, "not defined"},
		{[]string{"status", "extra"}, "unexpected argument"},
		{[]string{"stats", "bad name"}, "volume name"},
	} {
		code, _, errs := cli(append(c.args, admin)...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: %d %q; want exit 2 saying %q", c.args, code, errs, c.want)
		}
	}
	if code, _, errs := cli("volume", "show", "db", "--admin", "ftp://x"); code != 2 || !strings.Contains(errs, "--admin") {
		t.Errorf("a bad --admin: %d %q", code, errs)
	}
	if len(seen) != n {
		t.Fatalf("bad usage sent requests: %v", seen[n:])
	}
	for _, args := range [][]string{{"volume", "--help"}, {"volume", "create", "--help"}, {"status", "--help"}, {"stats", "-h"}} {
		code, out, errs := cli(args...)
		if code != 0 || !strings.Contains(out+errs, "Examples:") || !strings.Contains(out+errs, "-admin") {
			t.Errorf("%v: %d, no help with examples and flags:\n%s%s", args, code, out, errs)
		}
	}
	if code, _, errs := cli("volume"); code != 2 || !strings.Contains(errs, "Usage:") {
		t.Errorf("volume without a subcommand: %d %s", code, errs)
	}
}

// realCluster runs three nodes in three zones in this process, each with its admin API on
// an httptest server, and returns their admin URLs and the address book.
func realCluster(t *testing.T) ([]string, map[core.Addr]string) {
	t.Helper()
	var ls []net.Listener
	book := map[core.Addr]string{}
	var infos []core.NodeInfo
	auth := []core.Addr{1, 2, 3}
	for i := range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		book[core.Addr(i+1)] = l.Addr().String()
		infos = append(infos, core.NodeInfo{Addr: core.Addr(i + 1), Zone: uint32(i)})
	}
	for _, l := range ls {
		l.Close()
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var urls []string
	for i := range 3 {
		self := core.Addr(i + 1)
		peers := map[core.Addr]string{}
		for a, s := range book {
			if a != self {
				peers[a] = s
			}
		}
		r, err := netio.NewRunner(netio.RunnerConfig{Params: core.DefaultParams(self, uint32(i), auth, infos), DataDir: filepath.Join(t.TempDir(), fmt.Sprint("n", i+1)),
			Log: quiet, Transport: netio.TransportConfig{Listen: book[self], Peers: peers, Log: quiet}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		cl, err := netio.NewClient(ctx, netio.ClientConfig{ID: 0x7000_0000 + self, Session: uint64(time.Now().UnixNano()) + uint64(i),
			Authorities: auth, Peers: book, Log: quiet})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(netio.NewAdmin(r, cl))
		t.Cleanup(func() {
			srv.Close()
			cl.Close()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("node %d: %v", self, err)
			}
		})
		urls = append(urls, srv.URL)
	}
	return urls, book
}

// The operator commands against three real nodes in this process: create, list, show,
// qos, status, stats and delete, each through the admin API.
func TestVolumeCLIRealCluster(t *testing.T) {
	urls, book := realCluster(t)
	admin := "--admin=" + strings.Join(urls, ",")
	var code int
	var out, errs string
	for range 50 { // the cell elects its first leader (the API answers 503 until then)
		if code, out, errs = cli("volume", "create", "db", "--size", "64M", "--rf", "3", "--json", admin); code == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var v netio.VolumeJSON
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.Name != "db" || v.SizeMiB != 64 || len(v.Replicas) != 3 {
		t.Fatalf("create: %d %s %s", code, out, errs)
	}
	if code, out, errs = cli("volume", "create", "7", "--size", "4M", "--rf", "1", admin); code != 0 {
		t.Fatalf("create a numbered volume: %d %s %s", code, out, errs)
	}
	if code, _, errs = cli("volume", "create", "db", "--size", "64M", admin); code != 1 || !strings.Contains(errs, `already exists`) {
		t.Fatalf("create twice: %d %s", code, errs)
	}
	code, out, errs = cli("volume", "list", admin)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[1], "7 ") || !strings.HasPrefix(lines[2], "db ") {
		t.Fatalf("list: %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs = cli("volume", "qos", "db", "--iops", "5000", "--burst-iops", "8000", "--burst-credits", "100000", admin); code != 0 ||
		!strings.Contains(out, "5000 IOPS, burst 8000") {
		t.Fatalf("qos: %d %s %s", code, out, errs)
	}
	if code, out, _ = cli("volume", "show", "db", admin); code != 0 || !strings.Contains(out, "5000 IOPS") || !strings.Contains(out, "64 MiB") {
		t.Fatalf("show: %d %s", code, out)
	}
	code, out, errs = cli("status", admin)
	if code != 0 || strings.Count(out, " up ") != 3 || strings.Count(out, "leader") != 1 {
		t.Fatalf("status: %d\n%s\n%s", code, out, errs)
	}
	// One more address that nothing answers: the row says so and the exit status is 1.
	if code, out, errs = cli("status", admin+","+deadAddr(t)); code != 1 || !strings.Contains(out, "unreachable") ||
		!strings.Contains(errs, "1 of 4 nodes did not answer") {
		t.Fatalf("status with a node down: %d\n%s\n%s", code, out, errs)
	}
	// Traffic on db, then its figures.
	cl, err := netio.NewClient(context.Background(), netio.ClientConfig{ID: 5000, Session: uint64(time.Now().UnixNano()),
		Authorities: []core.Addr{1, 2, 3}, Peers: book, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 10 {
		if err := cl.Write(ctx, core.VolumeID(v.ID), uint64(i), bytes.Repeat([]byte{1}, core.BlockSize)); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	code, out, errs = cli("stats", "db", admin)
	found := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 11 && f[1] != "db" {
			t.Fatalf("stats db shows volume %s:\n%s", f[1], out)
		}
		if len(f) == 11 && f[0] == fmt.Sprint(v.Primary) && f[2] == "primary" && f[3] == "write" && f[4] == "10" && f[5] != "0" {
			found = true
		}
	}
	if code != 0 || !found || !strings.Contains(out, "P99.9") {
		t.Fatalf("stats db: %d (no row of 10 writes on the primary, node %d)\n%s\n%s", code, v.Primary, out, errs)
	}
	code, out, _ = cli("stats", "--json", admin)
	var answers []nodeAnswer
	if code != 0 || json.Unmarshal([]byte(out), &answers) != nil || len(answers) != 3 {
		t.Fatalf("stats --json: %d %s", code, out)
	}
	writes := uint64(0)
	for _, a := range answers {
		for _, vs := range a.Stats.Volumes {
			if vs.ID == v.ID && vs.Primary {
				writes += vs.Ops[core.ClassWrite].Count
			}
		}
	}
	if writes < 10 {
		t.Fatalf("stats --json counts %d writes on db's primary, want at least 10:\n%s", writes, out)
	}
	if code, out, errs = cli("volume", "delete", "db", admin); code != 0 || !strings.Contains(out, "deleted") {
		t.Fatalf("delete: %d %s %s", code, out, errs)
	}
	if err := cl.Write(ctx, core.VolumeID(v.ID), 0, bytes.Repeat([]byte{1}, core.BlockSize)); err == nil || !strings.Contains(err.Error(), "not-found") {
		t.Fatalf("a write after the delete: %v; want not-found", err)
	}
	if code, _, errs = cli("volume", "show", "db", admin); code != 1 || !strings.Contains(errs, `no volume "db"`) {
		t.Fatalf("show after delete: %d %s", code, errs)
	}
	if code, _, errs = cli("volume", "delete", "db", admin); code != 1 || !strings.Contains(errs, `no volume "db"`) {
		t.Fatalf("delete twice: %d %s", code, errs)
	}
}
