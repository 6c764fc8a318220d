package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/netio"
)

const volumeUsage = `Usage:
  cairn volume create NAME --size SIZE [--rf N] [--iops N --burst-iops N --burst-credits N --mbps N] --peers ...
  cairn volume show NAME --peers ...

create makes a volume of SIZE (like 1G, 512M or 4096K; a multiple of 4 KiB) with RF
replicas in distinct zones. Without QoS flags it is not throttled; --iops etc. set its
provisioned performance (see DESIGN 2.9).

Flags:
`

// parseSize reads a volume size (see netio.ParseSize).
func parseSize(s string) (uint64, error) { return netio.ParseSize(s) }

func volumeMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, volumeUsage)
		return map[bool]int{true: 0, false: 2}[len(args) > 0]
	}
	sub := args[0]
	fs := flag.NewFlagSet("cairn volume "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, volumeUsage); fs.PrintDefaults() }
	var cf clusterFlags
	cf.register(fs)
	size := fs.String("size", "", "volume size (create), e.g. 1G")
	rf := fs.Uint("rf", 2, "replicas, each in its own zone (create)")
	var q core.QoS
	fs.Int64Var(&q.IOPS, "iops", 0, "provisioned IOPS (0: not throttled)")
	fs.Int64Var(&q.BurstIOPS, "burst-iops", 0, "IOPS while burst credits last (default: --iops)")
	fs.Int64Var(&q.BurstCredits, "burst-credits", 0, "burst bucket size in operations")
	fs.Int64Var(&q.MBps, "mbps", 0, "throughput limit in MiB/s (0: none)")
	rest := args[1:]
	var name string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		name, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "cairn volume %s: %s\n", sub, fmt.Sprintf(format, a...))
		return code
	}
	id, err := volumeID(name)
	if err != nil {
		return fail(2, "%v", err)
	}
	req := core.AuthRequest{Vol: id}
	switch sub {
	case "create":
		b, err := parseSize(*size)
		if err != nil {
			return fail(2, "%v (--size)", err)
		}
		if *rf < 1 || *rf > 5 {
			return fail(2, "--rf %d: want 1 to 5", *rf)
		}
		if q, err = q.Normalize(); err != nil {
			return fail(2, "%v", err)
		}
		req.Op, req.Blocks, req.RF, req.QoS = core.OpCreateVolume, b/core.BlockSize, uint8(*rf), q
	case "show":
		req.Op = core.OpGetConfig
	default:
		return fail(2, "unknown subcommand (create, show)")
	}
	ctx := context.Background()
	cl, err := cf.connect(ctx)
	if err != nil {
		return fail(2, "%v", err)
	}
	defer cl.Close()
	rep, err := admin(ctx, cl, req, 30*time.Second)
	if err != nil {
		return fail(1, "%v", err)
	}
	switch {
	case sub == "create" && rep.Status == core.StatusConflict:
		return fail(1, "volume %s already exists: %v", name, rep.Config)
	case rep.Status == core.StatusInvalid:
		return fail(1, "the authority refused it (not enough zones for --rf %d?)", *rf)
	case rep.Status != core.StatusOK:
		return fail(1, "volume %s: %v", name, rep.Status)
	}
	c := rep.Config
	fmt.Fprintf(stdout, "volume %s: %d MiB, RF %d, epoch %d, primary node %d, in sync %v, replicas %v, qos %+v\n",
		name, c.Blocks*core.BlockSize>>20, c.RF, c.Epoch, c.Primary, c.InSync, c.Replicas, c.QoS)
	return 0
}
