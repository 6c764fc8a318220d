// Command cairn is Cairn's one binary: the simulator, the node daemon, NBD attach and
// the operator commands (volume, status, stats) over the nodes' admin API.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `cairn — replicated block storage you can replay from one seed.

Usage:
  cairn sim [flags]     run the deterministic simulator (one seed or a campaign)
  cairn node [flags]    run a storage node (and authority member)
  cairn volume create|list|show|delete|qos   manage volumes (through the admin API)
  cairn status          every node's state: reachable, authority role, primaries
  cairn stats [VOLUME]  per-volume latency quantiles and admission counts, per node
  cairn attach VOLUME   serve a volume to local NBD clients
  cairn bench [flags]   measure a volume (or etcd) with random reads and writes
  cairn help            show this help

Run 'cairn COMMAND --help' for a command's flags and examples. The operator commands
(volume, status, stats) talk to the nodes' admin API: --admin or $CAIRN_ADMIN, by default
the three nodes of 'make run' (http://127.0.0.1:8001,8002,8003).

Profiling: with CAIRN_PPROF=HOST:PORT any command also serves Go's profiler there
(e.g. go tool pprof http://HOST:PORT/debug/pprof/profile?seconds=10); cairn node has
--pprof to serve it on its admin API instead.
`

func main() {
	if addr := os.Getenv("CAIRN_PPROF"); addr != "" {
		if err := servePprof(addr); err != nil {
			fmt.Fprintf(os.Stderr, "cairn: CAIRN_PPROF=%s: %v\n", addr, err)
			os.Exit(2)
		}
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "sim":
		return simMain(args[1:], stdout, stderr)
	case "node":
		return nodeMain(args[1:], stdout, stderr)
	case "volume":
		return volumeMain(args[1:], stdout, stderr)
	case "attach":
		return attachMain(args[1:], stdout, stderr)
	case "status":
		return statusMain(args[1:], stdout, stderr)
	case "stats":
		return statsMain(args[1:], stdout, stderr)
	case "bench":
		return benchMain(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "cairn: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
