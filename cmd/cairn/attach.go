package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os/signal"
	"syscall"
	"time"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/netio"
	"github.com/cairnstore/cairn/netio/nbd"
)

const attachUsage = `Usage:
  cairn attach VOLUME --peers ID=ZONE@HOST:PORT,... [--nbd HOST:PORT] [flags]

Serves a volume to local NBD clients (qemu, qemu-io, nbdinfo, nbdcopy, fio, nbdfuse) and
follows the volume's failovers: its clients keep their connection while the volume moves to
a new primary. VOLUME is a volume number or a name. Stop with Ctrl-C.

Nodes started with --nbd serve every volume themselves, one process and one network hop
fewer (fastest on the volume's primary), but their clients must reconnect elsewhere when
that node goes away ('cairn node --help').

A request waits at most --timeout for the volume (a failover takes about 1 s); after
that the NBD client gets EIO and the connection stays usable. Out-of-range requests get
EINVAL at once.

Example:
  cairn attach demo --peers 1=0@127.0.0.1:7001,2=1@127.0.0.1:7002,3=2@127.0.0.1:7003
  qemu-io -f raw -c 'write -P 0xab 0 64k' -c 'read -P 0xab 0 64k' nbd://127.0.0.1:10809/demo

Flags:
`

// volumeID maps a volume argument (a number or a name) to its id.
func volumeID(s string) (core.VolumeID, error) { return netio.VolumeIDOf(s) }

// clusterFlags are the flags every command that talks to a cluster shares.
type clusterFlags struct {
	peers, auth string
	timeout     time.Duration
}

func (c *clusterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.peers, "peers", envDefault("CAIRN_PEERS", ""), "every storage node as `ID=ZONE@HOST:PORT,...` (env CAIRN_PEERS)")
	fs.StringVar(&c.auth, "authorities", envDefault("CAIRN_AUTHORITIES", ""), "authority cell members `IDS` (default: the lowest id of each of the first three zones)")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "give up on one request after this long (attach: the NBD client gets EIO)")
}

// connect starts a client to the cluster.
func (c *clusterFlags) connect(ctx context.Context) (*netio.Client, error) {
	peers, err := parsePeers(c.peers)
	if err != nil {
		return nil, err
	}
	auth := defaultAuthorities(peers)
	if c.auth != "" {
		if auth, err = parseIDs(c.auth); err != nil {
			return nil, err
		}
	}
	book := map[core.Addr]string{}
	for _, p := range peers {
		book[p.id] = p.addr
	}
	id := core.Addr(1000 + rand.N(uint32(1<<30)))
	return netio.NewClient(ctx, netio.ClientConfig{ID: id, Session: rand.Uint64(), Authorities: auth, Peers: book,
		OpTimeout: c.timeout, Log: newLogger(io.Discard, "error", "text")})
}

// admin sends an authority request, retrying while the cell elects a leader.
func admin(ctx context.Context, cl *netio.Client, r core.AuthRequest, limit time.Duration) (*core.AuthReply, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	rep, err := cl.Admin(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("the authority cell did not answer within %v (are a majority of its members up?): %w", limit, err)
	}
	return rep, nil
}

func attachMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cairn attach", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, attachUsage); fs.PrintDefaults() }
	var cf clusterFlags
	cf.register(fs)
	listen := fs.String("nbd", envDefault("CAIRN_NBD", "127.0.0.1:10809"), "`HOST:PORT` to serve NBD on")
	// Flags may come before or after VOLUME.
	var vol string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		vol, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if vol == "" && fs.NArg() > 0 {
		vol = fs.Arg(0)
	}
	id, err := volumeID(vol)
	if err == nil {
		_, _, err = net.SplitHostPort(*listen)
	}
	if err != nil {
		fmt.Fprintf(stderr, "cairn attach: %v\n(see 'cairn attach --help')\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	cl, err := cf.connect(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "cairn attach: %v\n", err)
		return 2
	}
	defer cl.Close()
	rep, err := admin(ctx, cl, core.AuthRequest{Op: core.OpGetConfig, Vol: id}, 30*time.Second)
	if err != nil {
		fmt.Fprintf(stderr, "cairn attach: %v\n", err)
		return 1
	}
	if rep.Status != core.StatusOK {
		fmt.Fprintf(stderr, "cairn attach: volume %s: %v\n", vol, rep.Status)
		return 1
	}
	backend := netio.NewVolume(cl, id, rep.Config.Blocks)
	backend.Timeout = cf.timeout
	srv, err := nbd.NewServer([]nbd.Export{{Name: vol, Description: fmt.Sprintf("cairn volume %s (%d MiB)", vol, backend.Size()>>20), Backend: backend, MultiConn: true}}, nil)
	if err != nil {
		fmt.Fprintf(stderr, "cairn attach: %v\n", err)
		return 1
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "cairn attach: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "volume %s (%d MiB) attached at nbd://%s/%s\n", vol, backend.Size()>>20, l.Addr(), vol)
	if err := srv.Serve(ctx, l); err != nil && ctx.Err() == nil {
		fmt.Fprintf(stderr, "cairn attach: %v\n", err)
		return 1
	}
	return 0
}
