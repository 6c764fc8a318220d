package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/netio"
)

const volumeUsage = `Usage:
  cairn volume create NAME --size SIZE [--rf N] [--iops N --burst-iops N --burst-credits N --mbps N]
  cairn volume list
  cairn volume show NAME
  cairn volume delete NAME
  cairn volume qos NAME --iops N [--burst-iops N --burst-credits N --mbps N]

Manages volumes through the nodes' admin HTTP API (any node forwards to the authority
cell). --admin lists the nodes' API addresses; when one does not answer (refused, timed
out) the next is tried. Without --admin: $CAIRN_ADMIN, else the three nodes of 'make run'.

create makes a volume of SIZE (like 1G, 512M or 4096K; a multiple of 4 KiB) with RF
replicas in distinct zones. NAME is letters, digits, '-', '_' and '.' (at most 64 bytes),
or a number below 2^31 for a numbered volume. Without QoS flags it is not throttled;
--iops etc. set its provisioned performance (DESIGN 2.9); qos changes them while the
volume serves (--iops 0: no longer throttled). delete removes the volume: its primary
stops serving at once and every node frees its blocks. The id of a deleted volume can be
created again once every node that held it has confirmed.

Output is a table; --json prints the API's JSON. Exit status: 0 done, 1 refused or
failed (the message says why), 2 bad usage.

Examples:
  cairn volume create db --size 100G --rf 3 --iops 3000 --burst-iops 6000 --burst-credits 5400000
  cairn volume list --admin http://10.0.0.1:8001,http://10.0.0.2:8001
  cairn volume show db --json
  cairn volume qos db --iops 500 --burst-iops 500
  cairn volume delete db

Flags:
`

// parseSize reads a volume size (see netio.ParseSize).
func parseSize(s string) (uint64, error) { return netio.ParseSize(s) }

func volumeMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		w := stderr
		if len(args) > 0 {
			w = stdout
		}
		fmt.Fprint(w, volumeUsage)
		newVolumeFlags(w).fs.PrintDefaults()
		return map[bool]int{true: 0, false: 2}[len(args) > 0]
	}
	sub := args[0]
	vf := newVolumeFlags(stderr)
	vf.fs.Init("cairn volume "+sub, flag.ContinueOnError)
	name, err := parseCommand(vf.fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "cairn volume %s: %v\n(see 'cairn volume --help')\n", sub, err)
		return 2
	}
	return vf.run(sub, name, stdout, stderr)
}

type volumeFlags struct {
	fs   *flag.FlagSet
	af   adminFlags
	size string
	rf   uint
	q    core.QoS
	set  map[string]bool // flags given on the command line
}

func newVolumeFlags(stderr io.Writer) *volumeFlags {
	vf := &volumeFlags{fs: flag.NewFlagSet("cairn volume", flag.ContinueOnError)}
	fs := vf.fs
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, volumeUsage); fs.PrintDefaults() }
	vf.af.register(fs)
	fs.StringVar(&vf.size, "size", "", "volume size (create), e.g. 100G, 512M")
	fs.UintVar(&vf.rf, "rf", 2, "replicas, each in its own zone (create)")
	fs.Int64Var(&vf.q.IOPS, "iops", 0, "provisioned IOPS (create, qos; 0: not throttled)")
	fs.Int64Var(&vf.q.BurstIOPS, "burst-iops", 0, "IOPS while burst credits last (default: --iops)")
	fs.Int64Var(&vf.q.BurstCredits, "burst-credits", 0, "burst bucket size in operations")
	fs.Int64Var(&vf.q.MBps, "mbps", 0, "throughput limit in MiB/s (0: none)")
	return vf
}

func (vf *volumeFlags) run(sub, name string, stdout, stderr io.Writer) int {
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "cairn volume %s: %s\n", sub, fmt.Sprintf(format, a...))
		return code
	}
	allowed := map[string][]string{
		"create": {"size", "rf", "iops", "burst-iops", "burst-credits", "mbps"},
		"qos":    {"iops", "burst-iops", "burst-credits", "mbps"},
		"list":   nil, "show": nil, "delete": nil,
	}
	ok, known := allowed[sub]
	if !known {
		return fail(2, "unknown subcommand (create, list, show, delete, qos; see 'cairn volume --help')")
	}
	vf.set = map[string]bool{}
	var misplaced string
	vf.fs.Visit(func(f *flag.Flag) { // in lexical order
		vf.set[f.Name] = true
		if f.Name != "admin" && f.Name != "timeout" && f.Name != "json" && !contains(ok, f.Name) && misplaced == "" {
			misplaced = f.Name
		}
	})
	if misplaced != "" {
		return fail(2, "--%s does not apply to %s", misplaced, sub)
	}
	if sub == "list" {
		if name != "" {
			return fail(2, "list takes no volume name")
		}
	} else if name == "" {
		return fail(2, "missing volume NAME")
	} else if _, err := netio.VolumeIDOf(name); err != nil {
		return fail(2, "%v", err)
	}
	var method, path string
	var body any
	switch sub {
	case "create":
		if vf.size == "" {
			return fail(2, "--size is required (like 1G, 512M)")
		}
		if _, err := parseSize(vf.size); err != nil {
			return fail(2, "%v (--size)", err)
		}
		if vf.rf < 1 || vf.rf > 5 {
			return fail(2, "--rf %d: want 1 to 5", vf.rf)
		}
		q, err := vf.q.Normalize()
		if err != nil {
			return fail(2, "%v", err)
		}
		method, path = "POST", "/v1/volumes"
		body = map[string]any{"name": name, "size": vf.size, "rf": vf.rf, "qos": q}
	case "qos":
		if !vf.set["iops"] {
			return fail(2, "--iops is required (0: not throttled)")
		}
		q, err := vf.q.Normalize()
		if err != nil {
			return fail(2, "%v", err)
		}
		method, path, body = "PUT", "/v1/volumes/"+url.PathEscape(name)+"/qos", q
	case "list":
		method, path = "GET", "/v1/volumes"
	case "show":
		method, path = "GET", "/v1/volumes/"+url.PathEscape(name)
	case "delete":
		method, path = "DELETE", "/v1/volumes/"+url.PathEscape(name)
	}
	cl, err := vf.af.client()
	if err != nil {
		return fail(2, "%v", err)
	}
	ctx := context.Background()
	if sub == "list" {
		var l netio.VolumesJSON
		b, err := cl.get(ctx, method, path, nil, &l)
		if err != nil {
			return fail(1, "%v", err)
		}
		if vf.af.json {
			printJSON(stdout, b)
		} else {
			printVolumes(stdout, l.Volumes)
		}
		return 0
	}
	var v netio.VolumeJSON
	b, err := cl.get(ctx, method, path, body, &v)
	if err != nil {
		return fail(1, "%v", err)
	}
	switch {
	case vf.af.json:
		printJSON(stdout, b)
	case sub == "delete":
		fmt.Fprintf(stdout, "volume %s deleted (its nodes free its blocks)\n", v.Name)
	default:
		printVolumes(stdout, []netio.VolumeJSON{v})
	}
	return 0
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// qosText describes a volume's QoS in one cell.
func qosText(q core.QoS) string {
	if q.IOPS == 0 {
		return "unthrottled"
	}
	s := fmt.Sprintf("%d IOPS", q.IOPS)
	if q.BurstIOPS > q.IOPS {
		s += fmt.Sprintf(", burst %d (%d credits)", q.BurstIOPS, q.BurstCredits)
	}
	if q.MBps > 0 {
		s += fmt.Sprintf(", %d MiB/s", q.MBps)
	}
	return s
}

func addrList(a []core.Addr) string {
	var parts []string
	for _, x := range a {
		parts = append(parts, fmt.Sprint(uint32(x)))
	}
	return strings.Join(parts, ",")
}

func printVolumes(w io.Writer, vols []netio.VolumeJSON) {
	if len(vols) == 0 {
		fmt.Fprintln(w, "no volumes")
		return
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tSIZE\tRF\tSTATE\tEPOCH\tPRIMARY\tIN SYNC\tREPLICAS\tQOS")
	for _, v := range vols {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%d\t%d\t%s\t%s\t%s\n", v.Name, v.ID, mib(v.SizeMiB), v.RF, v.State, v.Epoch, v.Primary,
			addrList(v.InSync), addrList(v.Replicas), qosText(v.QoS))
	}
	tw.Flush()
}
