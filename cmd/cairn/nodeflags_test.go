package main

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/core"
)

func parseNode(args ...string) (*nodeConfig, error) {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return parseNodeFlags(fs, args)
}

const threePeers = "1=0@127.0.0.1:7001,2=1@127.0.0.1:7002,3=2@127.0.0.1:7003"

func TestNodeFlagsValid(t *testing.T) {
	c, err := parseNode("--id", "2", "--peers", threePeers, "--data-dir", "/tmp/x")
	if err != nil {
		t.Fatal(err)
	}
	if c.id != 2 || c.zone != 1 || c.listen != "127.0.0.1:7002" || !slices.Equal(c.authorities, []core.Addr{1, 2, 3}) {
		t.Fatalf("config %+v", c)
	}
	p := c.params()
	p.Disk = 1 // (the runner takes it from the data directory)
	if err := p.Validate(); err != nil || p.Self != 2 || len(p.Nodes) != 3 {
		t.Fatalf("params %+v: %v", p, err)
	}
	c, err = parseNode("--id", "1", "--peers", threePeers+",4=0@127.0.0.1:7004", "--data-dir", "d", "--authorities", "1,2,3", "--wiped")
	if err != nil || !c.wiped || !c.params().Wiped {
		t.Fatalf("wiped: %+v %v", c, err)
	}
	c, err = parseNode("--id", "1", "--peers", threePeers, "--data-dir", "d", "--nbd", "127.0.0.1:10811", "--nbd-timeout", "3s")
	if err != nil || c.nbd != "127.0.0.1:10811" || c.nbdTimeout.Seconds() != 3 {
		t.Fatalf("nbd: %+v %v", c, err)
	}
}

// Every bad input gets an error that says what is wrong.
func TestNodeFlagsRejected(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--peers", threePeers, "--data-dir", "d"}, "--id"},
		{[]string{"--id", "9", "--peers", threePeers, "--data-dir", "d"}, "does not list this node"},
		{[]string{"--id", "1", "--peers", "1=0@nohost", "--data-dir", "d"}, "bad address"},
		{[]string{"--id", "1", "--peers", "1@127.0.0.1:1", "--data-dir", "d"}, "ID=ZONE@HOST:PORT"},
		{[]string{"--id", "1", "--peers", threePeers + ",1=3@127.0.0.1:9", "--data-dir", "d"}, "listed twice"},
		{[]string{"--id", "1", "--peers", threePeers}, "--data-dir"},
		{[]string{"--id", "1", "--peers", threePeers, "--data-dir", "d", "--authorities", "1,2"}, "1, 3 or 5"},
		{[]string{"--id", "1", "--peers", threePeers, "--data-dir", "d", "--authorities", "1,2,7"}, "not in --peers"},
		{[]string{"--id", "1", "--peers", threePeers, "--data-dir", "d", "--zone", "5"}, "disagrees"},
		{[]string{"--id", "1", "--peers", threePeers, "--data-dir", "d", "--log-level", "loud"}, "--log-level"},
		{[]string{"--id", "1", "--peers", threePeers, "--data-dir", "d", "extra"}, "unexpected"},
		{[]string{"--id", "1", "--peers", threePeers, "--data-dir", "d", "--nbd", "10809"}, "--nbd"},
		{[]string{"--id", "1", "--peers", threePeers, "--data-dir", "d", "--nbd", "127.0.0.1:1", "--nbd-timeout", "0s"}, "--nbd-timeout"},
	}
	for _, tc := range cases {
		_, err := parseNode(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one mentioning %q", tc.args, err, tc.want)
		}
	}
}

func TestDefaultAuthorities(t *testing.T) {
	peers, _ := parsePeers("5=2@h:1,4=1@h:1,3=0@h:1,2=0@h:1,6=3@h:1")
	if got := defaultAuthorities(peers); !slices.Equal(got, []core.Addr{2, 4, 5}) {
		t.Fatalf("default authorities %v, want the lowest id of zones 0, 1, 2", got)
	}
}
