package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/netio"
	"github.com/cairnstore/cairn/netio/nbd"
)

const nodeUsage = `Usage:
  cairn node --id N --peers ID=ZONE@HOST:PORT,... --data-dir DIR [flags]
  cairn node --id N --zone Z --listen HOST:PORT --data-dir DIR --join ADMIN_HOST:PORT[,...] [flags]
  cairn node list | drain ID | remove ID   (see 'cairn node list --help')

Runs one storage node: it serves its replicas, replicates to its peers and, when it is
listed in --authorities, is a member of the authority cell. Every flag can also be set
with the environment variable named in its help (CAIRN_ID, CAIRN_PEERS, ...).

The node stops cleanly on SIGTERM or Ctrl-C: storage work in flight completes first.
Every write it acknowledged is already durable on every in-sync replica.

Example (a three-node cluster on one machine, one command per node):
  cairn node --id 1 --peers 1=0@127.0.0.1:7001,2=1@127.0.0.1:7002,3=2@127.0.0.1:7003 --data-dir data/n1
  cairn node --id 2 --peers ...same list... --data-dir data/n2
  cairn node --id 3 --peers ...same list... --data-dir data/n3

--peers lists the nodes of a new cluster. A node added to a running cluster uses --join
instead, with the admin API address of any of its nodes: it learns the nodes and the
authority cell from there, asks the authority to admit it (an id already in use is
refused: the node stops with a message), and every node learns its address. It then
takes open replica slots like any node ('cairn node list' shows it). Example:
  cairn node --id 4 --zone 1 --listen 10.0.0.4:7001 --data-dir data/n4 --join 10.0.0.1:8001

With --nbd HOST:PORT the node also serves every volume of the cluster over NBD, by name
(nbd://HOST:PORT/NAME), for qemu, fio, nbdcopy or nbdfuse. Connect to the node that is
the volume's primary ('cairn volume show NAME'): a read then crosses no network hop
and no other process, and a write goes from there straight to the other replicas. Any
node serves any volume, forwarding to the primary. When a node goes away, its NBD clients lose their connection and must
reconnect to another node; 'cairn attach' instead keeps its clients' connections
across failovers, at the cost of one more process.

A node whose disk was lost starts again with the same command line on an empty
--data-dir: the directory gets a new disk identity, and each volume's primary copies
the whole volume to it before it counts as a replica again ('cairn volume show NAME':
STATE degraded until then). A node that stays silent past --replace-after (or that
'cairn node remove' names) has its replicas replaced on nodes in zones the volumes do
not use: the first such node to ask gets the slot and is copied in full. Add --wiped when the node is a member of the authority cell
(or a new machine replaces a member), so it rejoins the cell under a new identity
instead of voting as the member it was.

Flags:
`

func nodeMain(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "list" || args[0] == "drain" || args[0] == "remove") {
		return nodeAdminMain(args[0], args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("cairn node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, nodeUsage); fs.PrintDefaults() }
	c, err := parseNodeFlags(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "cairn node: %v\n(see 'cairn node --help')\n", err)
		return 2
	}
	log := newLogger(stderr, c.logLevel, c.logFormat)
	peers := map[core.Addr]string{}
	for _, p := range c.peers {
		if p.id != c.id {
			peers[p.id] = p.addr
		}
	}
	if !c.wiped && !netio.DataDirClaimed(c.dataDir) {
		// A new data directory: refuse it if the cluster records replicas on this node (a
		// lost disk must be started as one, --wiped), before it claims the directory.
		if err := checkNewDataDir(c, peers, log); err != nil {
			log.Error("cannot start", "err", err)
			return 1
		}
	}
	r, err := netio.NewRunner(netio.RunnerConfig{Params: c.params(), DataDir: c.dataDir, Log: log,
		Transport: netio.TransportConfig{Listen: c.listen, Peers: peers}})
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// The node stops after the NBD server has answered the requests in flight.
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	stopNBD := func() {}
	if c.admin != "off" || c.nbd != "" {
		book := map[core.Addr]string{}
		for _, p := range c.peers {
			book[p.id] = p.addr
		}
		// The node's own client (admin API, NBD) reaches the node in memory. Every NBD
		// connection shares it: it takes as many operations at once as a client may.
		cl, err := netio.NewClient(ctx, netio.ClientConfig{ID: 0x7000_0000 + c.id, Session: uint64(time.Now().UnixNano()),
			Authorities: c.authorities, Peers: book, OpTimeout: c.nbdTimeout, MaxInFlight: 64, Log: log, Node: r})
		if err != nil {
			log.Error("cannot start the node's client", "err", err)
			return 1
		}
		defer cl.Close()
		if c.admin != "off" {
			stopAdmin, err := serveAdmin(c, r, cl, log)
			if err != nil {
				log.Error("cannot listen for the admin API", "addr", c.admin, "err", err)
				return 1
			}
			defer stopAdmin()
		}
		if c.nbd != "" {
			if stopNBD, err = serveNBD(c, cl, log); err != nil {
				log.Error("cannot serve NBD", "addr", c.nbd, "err", err)
				return 1
			}
		}
	}
	go func() {
		<-ctx.Done()
		stopNBD()
		stopRun()
	}()
	defer stopNBD()
	if err := r.Run(runCtx); err != nil {
		log.Error("node failed", "err", err)
		return 1
	}
	return 0
}

// serveAdmin starts the HTTP admin API; the returned function stops it.
func serveAdmin(c *nodeConfig, r *netio.Runner, cl *netio.Client, log *slog.Logger) (func(), error) {
	l, err := net.Listen("tcp", c.admin)
	if err != nil {
		return nil, err
	}
	var h http.Handler = netio.NewAdmin(r, cl)
	if c.pprof {
		h = withPprof(h)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(l) }()
	log.Info("admin API", "addr", l.Addr().String(), "metrics", "http://"+l.Addr().String()+"/metrics")
	return func() { hs.Close() }, nil
}

// serveNBD serves every volume over NBD through the node's client; the returned function
// stops it, letting requests in flight finish (it may be called more than once).
func serveNBD(c *nodeConfig, cl *netio.Client, log *slog.Logger) (func(), error) {
	srv, err := nbd.NewCatalogServer(netio.NewExports(cl, c.nbdTimeout), log)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", c.nbd)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ctx, l); err != nil {
			log.Error("NBD server stopped", "err", err)
		}
	}()
	log.Info("serving volumes over NBD", "addr", l.Addr().String(), "example", "nbd://"+l.Addr().String()+"/VOLUME")
	return func() { cancel(); <-done }, nil
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated by parseNodeFlags
	o := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

// newDataDirWait bounds how long a node on a new data directory waits for the authority
// cell to say whether it expects data on the node (a brand-new cluster's cell may not be
// up yet: then nothing is refused).
const newDataDirWait = 3 * time.Second

func checkNewDataDir(c *nodeConfig, peers map[core.Addr]string, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), newDataDirWait+time.Second)
	defer cancel()
	cl, err := netio.NewClient(ctx, netio.ClientConfig{ID: 0x7000_0000 + c.id, Session: uint64(time.Now().UnixNano()),
		Authorities: c.authorities, Peers: peers, Log: newLogger(io.Discard, "error", "text")})
	if err != nil {
		return fmt.Errorf("ask the cluster about the new data directory: %w", err)
	}
	defer cl.Close()
	if err := netio.CheckNewDataDir(ctx, cl, c.id, newDataDirWait); err != nil {
		return err
	}
	log.Info("new data directory: the cluster records no replicas on this node (or its authority cell is not up yet: a new cluster)",
		"dir", c.dataDir)
	return nil
}
