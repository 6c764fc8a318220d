package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/cairnstore/cairn/netio"
)

const nodeAdminUsage = `Usage:
  cairn node list
  cairn node drain ID
  cairn node remove ID

Manages the cluster's storage nodes through the admin HTTP API (like 'cairn volume';
--admin as there).

list shows every node: its zone, its state as the authority sees it (up; down: no beat
for a few seconds, its replicas stay until --replace-after; draining; removed), how long
since its last beat, and how many replicas it hosts.

drain ID moves every replica off node ID while the volumes serve I/O: for each volume a
node in a zone the volume does not use is copied in full and grown in first, then the
node leaves the volume (a primary hands over to another in-sync replica). The node hosts
nothing new. When 'cairn node list' shows it with 0 replicas it may be shut down.

remove ID says node ID is gone for good (a dead machine, a lost disk you will not bring
back): its replicas are replaced at once on other nodes instead of after --replace-after,
and it never hosts a replica again. A node that is down is replaced without this, after
--replace-after; remove just does not wait.

Both refuse (exit 1, and change nothing) when some volume on the node would be left
without enough zones for its RF: add a node in another zone first.

Examples:
  cairn node list
  cairn node drain 4
  cairn node remove 2 --json

Flags:
`

// nodeAdminMain runs 'cairn node list|drain|remove'.
func nodeAdminMain(sub string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cairn node "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, nodeAdminUsage); fs.PrintDefaults() }
	var af adminFlags
	af.register(fs)
	operand, err := parseCommand(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "cairn node %s: %v\n(see 'cairn node list --help')\n", sub, err)
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "cairn node %s: %s\n", sub, fmt.Sprintf(format, a...))
		return code
	}
	var method, path string
	switch sub {
	case "list":
		if operand != "" {
			return fail(2, "list takes no node id")
		}
		method, path = "GET", "/v1/nodes"
	case "drain", "remove":
		id, err := strconv.ParseUint(operand, 10, 32)
		if err != nil || id == 0 {
			return fail(2, "want a node id (a positive number), got %q", operand)
		}
		method, path = "POST", fmt.Sprintf("/v1/nodes/%d/drain", id)
		if sub == "remove" {
			method, path = "DELETE", fmt.Sprintf("/v1/nodes/%d", id)
		}
	}
	cl, err := af.client()
	if err != nil {
		return fail(2, "%v", err)
	}
	ctx := context.Background()
	if sub == "list" {
		var l netio.NodesJSON
		b, err := cl.get(ctx, method, path, nil, &l)
		if err != nil {
			return fail(1, "%v", err)
		}
		if af.json {
			printJSON(stdout, b)
			return 0
		}
		tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tZONE\tSTATE\tLAST BEAT\tREPLICAS\tDISK")
		for _, n := range l.Nodes {
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s ago\t%d\t%s\n", n.ID, n.Zone, n.State, time.Duration(n.SilentMs)*time.Millisecond, n.Replicas, n.Disk)
		}
		tw.Flush()
		return 0
	}
	var n netio.NodeJSON
	b, err := cl.get(ctx, method, path, nil, &n)
	if err != nil {
		return fail(1, "%v", err)
	}
	if af.json {
		printJSON(stdout, b)
		return 0
	}
	if sub == "drain" {
		fmt.Fprintf(stdout, "node %d draining: its replicas are being copied elsewhere ('cairn node list' shows it with 0 replicas when done)\n", n.ID)
	} else {
		fmt.Fprintf(stdout, "node %d removed: its replicas are being replaced on other nodes ('cairn volume list' shows the progress)\n", n.ID)
	}
	return 0
}
