// Command cairn is Cairn's one binary: the simulator today; the node daemon and the
// operator commands join it as they are built.
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
  cairn volume create|show NAME   manage volumes
  cairn attach VOLUME   serve a volume to local NBD clients
  cairn bench [flags]   measure a volume (or etcd) with random reads and writes
  cairn help            show this help

Run 'cairn sim --help' or 'cairn node --help' for their flags.
`

func main() {
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
