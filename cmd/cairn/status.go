package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"text/tabwriter"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/netio"
)

const statusUsage = `Usage:
  cairn status [--admin URL,...] [--json]

Asks every node given in --admin for its status (GET /v1/status) and prints one row per
node: its id and zone, whether it answered (or the error), its place in the authority cell
(member, leader, term), how many volumes it is primary of, and its adaptive admission
rate. Exit status 1 if any node did not answer, so scripts can wait for a healthy cluster:

  until cairn status >/dev/null; do sleep 1; done

Examples:
  cairn status
  cairn status --admin http://10.0.0.1:8001,http://10.0.0.2:8001,http://10.0.0.3:8001 --json

Flags:
`

const statsUsage = `Usage:
  cairn stats [VOLUME] [--admin URL,...] [--json]

Asks every node given in --admin for its per-volume figures (GET /v1/stats) and prints one
row per node, volume and operation (read, write, flush): the operations measured, the
latency quantiles p50, p99 and p99.9 in microseconds (from arrival at the primary to its
answer), and the volume's admitted, throttled and busy counts on that node. A node keeps
figures for every volume it is or was primary of, since it started. VOLUME (a name or a
number) shows only that volume. Exit status 1 if any node did not answer.

Examples:
  cairn stats
  cairn stats db
  cairn stats --json | jq '.[].stats.volumes[].ops'

Flags:
`

// nodeAnswer is one node's answer (or failure) to a status or stats request.
type nodeAnswer struct {
	Admin  string            `json:"admin"`
	Error  string            `json:"error,omitempty"`
	Status *netio.StatusJSON `json:"status,omitempty"`
	Stats  *netio.StatsJSON  `json:"stats,omitempty"`
	reason string            // Error, short (for tables)
}

// shortReason says in a few words why a node did not answer.
func shortReason(err error) string {
	var ae *apiError
	var se *os.SyscallError
	var oe *net.OpError
	switch {
	case errors.As(err, &ae):
		return fmt.Sprintf("HTTP %d: %s", ae.code, ae.msg)
	case errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err):
		return "timed out"
	case errors.As(err, &se):
		return se.Err.Error()
	case errors.As(err, &oe) && oe.Err != nil:
		return oe.Err.Error()
	}
	return err.Error()
}

// askEach sends GET path to every admin address at once and decodes each answer.
func askEach(cl *adminClient, path string, decode func(i int, b []byte) error) []error {
	errs := make([]error, len(cl.urls))
	var wg sync.WaitGroup
	for i, u := range cl.urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := cl.callOne(context.Background(), u, "GET", path, nil)
			if err == nil {
				err = decode(i, b)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	return errs
}

func parseNodeCommand(name, usage string, args []string, stderr io.Writer) (*adminFlags, string, int) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	var af adminFlags
	af.register(fs)
	operand, err := parseCommand(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, "", 0
		}
		fmt.Fprintf(stderr, "%s: %v\n(see '%s --help')\n", name, err, name)
		return nil, "", 2
	}
	return &af, operand, -1
}

func statusMain(args []string, stdout, stderr io.Writer) int {
	af, operand, code := parseNodeCommand("cairn status", statusUsage, args, stderr)
	if code >= 0 {
		return code
	}
	if operand != "" {
		fmt.Fprintf(stderr, "cairn status: unexpected argument %q\n(see 'cairn status --help')\n", operand)
		return 2
	}
	cl, err := af.client()
	if err != nil {
		fmt.Fprintf(stderr, "cairn status: %v\n", err)
		return 2
	}
	out := make([]nodeAnswer, len(cl.urls))
	errs := askEach(cl, "/v1/status", func(i int, b []byte) error {
		var s netio.StatusJSON
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("unexpected answer: %w", err)
		}
		out[i].Status = &s
		return nil
	})
	failed := fillErrors(cl, out, errs)
	if af.json {
		b, _ := json.Marshal(out)
		printJSON(stdout, b)
	} else {
		tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tZONE\tADMIN\tSTATE\tAUTHORITY\tTERM\tPRIMARY OF\tRATE (ops/s)")
		for _, a := range out {
			if a.Status == nil {
				fmt.Fprintf(tw, "?\t?\t%s\tunreachable (%s)\t\t\t\t\n", a.Admin, a.reason)
				continue
			}
			s := a.Status
			role := "-"
			switch {
			case s.AuthorityLeader:
				role = "leader"
			case s.AuthorityMember:
				role = "member"
			}
			term := "-"
			if s.AuthorityMember {
				term = fmt.Sprint(s.AuthorityTerm)
			}
			primaries := 0
			for _, v := range s.Volumes {
				if v.Primary {
					primaries++
				}
			}
			fmt.Fprintf(tw, "%d\t%d\t%s\tup\t%s\t%s\t%d\t%d\n", s.Node, s.Zone, a.Admin, role, term, primaries, s.GlobalRate)
		}
		tw.Flush()
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "cairn status: %d of %d nodes did not answer\n", failed, len(out))
		return 1
	}
	return 0
}

func fillErrors(cl *adminClient, out []nodeAnswer, errs []error) int {
	failed := 0
	for i, err := range errs {
		out[i].Admin = cl.urls[i]
		if err != nil {
			out[i].Error, out[i].reason = err.Error(), shortReason(err)
			out[i].Status, out[i].Stats = nil, nil
			failed++
		}
	}
	return failed
}

func statsMain(args []string, stdout, stderr io.Writer) int {
	af, operand, code := parseNodeCommand("cairn stats", statsUsage, args, stderr)
	if code >= 0 {
		return code
	}
	var only core.VolumeID
	if operand != "" {
		id, err := netio.VolumeIDOf(operand)
		if err != nil {
			fmt.Fprintf(stderr, "cairn stats: %v\n", err)
			return 2
		}
		only = id
	}
	cl, err := af.client()
	if err != nil {
		fmt.Fprintf(stderr, "cairn stats: %v\n", err)
		return 2
	}
	out := make([]nodeAnswer, len(cl.urls))
	errs := askEach(cl, "/v1/stats", func(i int, b []byte) error {
		var s netio.StatsJSON
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("unexpected answer: %w", err)
		}
		if only != 0 {
			kept := s.Volumes[:0]
			for _, v := range s.Volumes {
				if core.VolumeID(v.ID) == only {
					kept = append(kept, v)
				}
			}
			s.Volumes = kept
		}
		out[i].Stats = &s
		return nil
	})
	failed := fillErrors(cl, out, errs)
	if af.json {
		b, _ := json.Marshal(out)
		printJSON(stdout, b)
	} else {
		names := volumeNames(cl)
		tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tVOLUME\tROLE\tOP\tCOUNT\tP50 µs\tP99 µs\tP99.9 µs\tADMITTED\tTHROTTLED\tBUSY")
		rows := 0
		for _, a := range out {
			if a.Stats == nil {
				continue
			}
			for _, v := range a.Stats.Volumes {
				role := "former primary"
				if v.Primary {
					role = "primary"
				}
				name := names[v.ID]
				if name == "" {
					name = fmt.Sprint(v.ID)
				}
				for _, o := range v.Ops {
					rows++
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", a.Stats.Node, name, role, o.Op, o.Count, o.P50, o.P99, o.P999,
						v.Admitted, v.Throttled, v.Busy)
				}
			}
		}
		tw.Flush()
		if rows == 0 {
			fmt.Fprintln(stdout, "no figures yet (a node keeps them for the volumes it is or was primary of)")
		}
		for _, a := range out {
			if a.Error != "" {
				fmt.Fprintf(stderr, "cairn stats: %s did not answer (%s)\n", a.Admin, a.reason)
			}
		}
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// volumeNames maps volume ids to names (best effort: without an answer, rows show ids).
func volumeNames(cl *adminClient) map[uint32]string {
	names := map[uint32]string{}
	var l netio.VolumesJSON
	if _, err := cl.get(context.Background(), "GET", "/v1/volumes", nil, &l); err == nil {
		for _, v := range l.Volumes {
			names[v.ID] = v.Name
		}
	}
	return names
}
