package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairnstore/cairn/core"
)

// nodeConfig is what `cairn node` needs, from flags or CAIRN_* environment variables.
type nodeConfig struct {
	id           core.Addr
	zone         uint32
	listen       string
	admin        string // the HTTP admin API (JSON, /metrics, /healthz)
	nbd          string // serve every volume over NBD here ("" off)
	nbdTimeout   time.Duration
	dataDir      string
	peers        []peer // every storage node, this one included
	authorities  []core.Addr
	wiped        bool
	pprof        bool // serve Go's profiler under /debug/pprof/ on the admin listener
	logLevel     string
	logFormat    string
	replaceAfter time.Duration
	maxReMirrors int
	copyMBps     int64
	join         bool // joining a running cluster (--join): the core asks the authority to admit it
}

type peer struct {
	id   core.Addr
	zone uint32
	addr string
}

// parsePeers reads "ID=ZONE@HOST:PORT,..." (every storage node of the cluster).
func parsePeers(s string) ([]peer, error) {
	var out []peer
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		idPart, rest, ok := strings.Cut(item, "=")
		zonePart, addr, ok2 := strings.Cut(rest, "@")
		if !ok || !ok2 {
			return nil, fmt.Errorf("peer %q: want ID=ZONE@HOST:PORT (for example 1=0@10.0.0.1:7001)", item)
		}
		id, err := strconv.ParseUint(idPart, 10, 32)
		if err != nil || id == 0 || id >= 999 {
			return nil, fmt.Errorf("peer %q: node id must be a number from 1 to 998", item)
		}
		zone, err := strconv.ParseUint(zonePart, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("peer %q: zone must be a number", item)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("peer %q: bad address: %v", item, err)
		}
		if slices.ContainsFunc(out, func(p peer) bool { return p.id == core.Addr(id) }) {
			return nil, fmt.Errorf("peer %q: node %d listed twice", item, id)
		}
		out = append(out, peer{id: core.Addr(id), zone: uint32(zone), addr: addr})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--peers is empty: list every storage node as ID=ZONE@HOST:PORT")
	}
	return out, nil
}

// parseIDs reads "1,2,3".
func parseIDs(s string) ([]core.Addr, error) {
	var out []core.Addr
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.ParseUint(f, 10, 32)
		if err != nil || v == 0 {
			return nil, fmt.Errorf("authority member %q: want a node id", f)
		}
		if slices.Contains(out, core.Addr(v)) {
			return nil, fmt.Errorf("authority member %d listed twice", v)
		}
		out = append(out, core.Addr(v))
	}
	slices.Sort(out)
	return out, nil
}

// defaultAuthorities: the lowest node id of each of the first three zones (by zone number).
func defaultAuthorities(peers []peer) []core.Addr {
	byZone := map[uint32]core.Addr{}
	for _, p := range peers {
		if cur, ok := byZone[p.zone]; !ok || p.id < cur {
			byZone[p.zone] = p.id
		}
	}
	zones := make([]uint32, 0, len(byZone))
	for z := range byZone {
		zones = append(zones, z)
	}
	slices.Sort(zones)
	var out []core.Addr
	for _, z := range zones[:min(3, len(zones))] {
		out = append(out, byZone[z])
	}
	slices.Sort(out)
	return out
}

// envDefault is the CAIRN_* environment variable's value, or def.
func envDefault(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func parseNodeFlags(fs *flag.FlagSet, args []string) (*nodeConfig, error) {
	var idS, zoneS, peersS, authS, joinS string
	c := &nodeConfig{}
	wipedEnv, err := strconv.ParseBool(envDefault("CAIRN_WIPED", "false"))
	if err != nil {
		return nil, fmt.Errorf("CAIRN_WIPED=%q: want true or false", os.Getenv("CAIRN_WIPED"))
	}
	fs.StringVar(&idS, "id", envDefault("CAIRN_ID", ""), "this node's `ID` (1-998; env CAIRN_ID)")
	fs.StringVar(&zoneS, "zone", envDefault("CAIRN_ZONE", ""), "this node's availability `ZONE` number (env CAIRN_ZONE; default: its zone in --peers)")
	fs.StringVar(&c.listen, "listen", envDefault("CAIRN_LISTEN", ""), "`HOST:PORT` for peers and clients (env CAIRN_LISTEN; default: its address in --peers)")
	fs.StringVar(&c.admin, "admin", envDefault("CAIRN_ADMIN", ""), "`HOST:PORT` of the HTTP admin API, /metrics and /healthz (env CAIRN_ADMIN; default: the listen host, port + 1000; \"off\" disables it)")
	fs.StringVar(&c.nbd, "nbd", envDefault("CAIRN_NODE_NBD", ""), "`HOST:PORT` to serve every volume of the cluster over NBD, by name, e.g. nbd://HOST:PORT/NAME (env CAIRN_NODE_NBD; default off). Fastest on the volume's primary: no extra process and no hop to the primary")
	fs.DurationVar(&c.nbdTimeout, "nbd-timeout", 10*time.Second, "with --nbd: an NBD request still waiting for the volume after this long (no primary) fails with EIO")
	fs.StringVar(&c.dataDir, "data-dir", envDefault("CAIRN_DATA_DIR", ""), "`DIR` holding this node's journal and blocks (env CAIRN_DATA_DIR)")
	fs.StringVar(&peersS, "peers", envDefault("CAIRN_PEERS", ""), "every storage node as `ID=ZONE@HOST:PORT,...` (env CAIRN_PEERS)")
	fs.StringVar(&joinS, "join", envDefault("CAIRN_JOIN", ""), "join a running cluster instead of --peers: the admin API `HOST:PORT[,...]` of any of its nodes (needs --zone and --listen; env CAIRN_JOIN)")
	fs.StringVar(&authS, "authorities", envDefault("CAIRN_AUTHORITIES", ""), "authority cell members as `IDS` (3 or 5, one per zone; env CAIRN_AUTHORITIES; default: the lowest id of each of the first three zones)")
	fs.BoolVar(&c.wiped, "wiped", wipedEnv, "this node's disk was lost (or a new machine replaces it): its volumes are rebuilt onto the new disk, and an authority member rejoins the cell under a new identity; without it, a new data directory where the cluster records replicas is refused (env CAIRN_WIPED)")
	fs.DurationVar(&c.replaceAfter, "replace-after", 5*time.Minute, "a replica whose node has been silent this long is replaced on another node (copied in full there); 'cairn node remove' replaces at once")
	fs.Int64Var(&c.copyMBps, "remirror-mbps", 256, "MiB/s of block data this node sends, as a primary, to replicas it copies or catches up (all of them together); 0: no limit. Lower it when re-mirroring slows clients too much")
	fs.IntVar(&c.maxReMirrors, "max-remirrors", 4, "with this node leading the authority cell: volumes copied to a new replica at once, cluster-wide (the rest wait, riskiest first)")
	fs.BoolVar(&c.pprof, "pprof", false, "also serve Go's profiler (net/http/pprof) under /debug/pprof/ on the admin API, e.g. go tool pprof http://ADMIN/debug/pprof/profile?seconds=10")
	fs.StringVar(&c.logLevel, "log-level", envDefault("CAIRN_LOG_LEVEL", "info"), "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", envDefault("CAIRN_LOG_FORMAT", "text"), "text or json")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	id, err := strconv.ParseUint(idS, 10, 32)
	if err != nil || id == 0 || id >= 999 {
		return nil, fmt.Errorf("--id %q: want this node's id, 1 to 998", idS)
	}
	c.id = core.Addr(id)
	if joinS != "" {
		if peersS != "" {
			return nil, fmt.Errorf("--join and --peers exclude each other: a joining node learns the cluster's nodes from --join")
		}
		if _, err := strconv.ParseUint(zoneS, 10, 32); err != nil || c.listen == "" {
			return nil, fmt.Errorf("--join needs --zone (a number) and --listen (the HOST:PORT its peers reach it at)")
		}
		var auth string
		if peersS, auth, err = joinPeers(joinS, c.id, zoneS, c.listen, 10*time.Second); err != nil {
			return nil, err
		}
		if authS == "" {
			authS = auth
		}
		c.join = true
	}
	if c.peers, err = parsePeers(peersS); err != nil {
		return nil, err
	}
	i := slices.IndexFunc(c.peers, func(p peer) bool { return p.id == c.id })
	if i < 0 {
		return nil, fmt.Errorf("--peers does not list this node (%d): every node's --peers lists all nodes, itself included", c.id)
	}
	c.zone = c.peers[i].zone
	if zoneS != "" {
		z, err := strconv.ParseUint(zoneS, 10, 32)
		if err != nil || uint32(z) != c.peers[i].zone {
			return nil, fmt.Errorf("--zone %q disagrees with --peers (zone %d for node %d)", zoneS, c.peers[i].zone, c.id)
		}
	}
	if c.listen == "" {
		c.listen = c.peers[i].addr
	}
	if _, _, err := net.SplitHostPort(c.listen); err != nil {
		return nil, fmt.Errorf("--listen %q: %v", c.listen, err)
	}
	if c.admin == "" {
		host, port, _ := net.SplitHostPort(c.listen)
		p, err := strconv.Atoi(port)
		if err != nil || p+1000 > 65535 {
			return nil, fmt.Errorf("--admin: cannot derive it from --listen %q; give it", c.listen)
		}
		c.admin = net.JoinHostPort(host, strconv.Itoa(p+1000))
	}
	if c.admin != "off" {
		if _, _, err := net.SplitHostPort(c.admin); err != nil {
			return nil, fmt.Errorf("--admin %q: %v", c.admin, err)
		}
	}
	if c.nbd != "" {
		if _, _, err := net.SplitHostPort(c.nbd); err != nil {
			return nil, fmt.Errorf("--nbd %q: want HOST:PORT: %v", c.nbd, err)
		}
	}
	if c.nbdTimeout <= 0 {
		return nil, fmt.Errorf("--nbd-timeout %v: want a positive duration", c.nbdTimeout)
	}
	if c.replaceAfter < 10*time.Second {
		return nil, fmt.Errorf("--replace-after %v: want at least 10s (a node restarting must not lose its replicas)", c.replaceAfter)
	}
	if c.copyMBps < 0 || c.copyMBps > 1<<20 {
		return nil, fmt.Errorf("--remirror-mbps %d: want 0 (no limit) to %d", c.copyMBps, 1<<20)
	}
	if c.maxReMirrors < 1 || c.maxReMirrors > 1024 {
		return nil, fmt.Errorf("--max-remirrors %d: want 1 to 1024", c.maxReMirrors)
	}
	if c.dataDir == "" {
		return nil, fmt.Errorf("--data-dir is required: the directory holding this node's journal and blocks")
	}
	if authS == "" {
		c.authorities = defaultAuthorities(c.peers)
	} else if c.authorities, err = parseIDs(authS); err != nil {
		return nil, err
	}
	for _, a := range c.authorities {
		if !slices.ContainsFunc(c.peers, func(p peer) bool { return p.id == a }) {
			return nil, fmt.Errorf("authority member %d is not in --peers", a)
		}
	}
	if n := len(c.authorities); n != 1 && n != 3 && n != 5 {
		return nil, fmt.Errorf("the authority cell needs 1, 3 or 5 members (got %d: %v); 3 or 5 survive a member's loss", n, c.authorities)
	}
	switch c.logLevel {
	case "debug", "info", "warn", "error":
	default:
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.logLevel)
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return nil, fmt.Errorf("--log-format %q: want text or json", c.logFormat)
	}
	return c, nil
}

// params builds the core's parameters from the configuration.
func (c *nodeConfig) params() core.Params {
	var infos []core.NodeInfo
	for _, p := range c.peers {
		infos = append(infos, core.NodeInfo{Addr: p.id, Zone: p.zone})
	}
	p := core.DefaultParams(c.id, c.zone, c.authorities, infos)
	p.Wiped = c.wiped
	// A checkpoint syncs every dirty block file and rolls the journal: on real disks,
	// eight times fewer than the simulator's 512 records (recovery replays at most this
	// many records, about 17 MiB of 4 KiB writes).
	p.CheckpointEvery = 4096
	// A secondary starts its health check after half a lease of silence instead of more
	// than one: it cannot be promoted before its promise runs out anyway, and the
	// authority's probe keeps a live primary in place. The simulator draws this value
	// (sim/config.go) among others, so its safety is checked on every such seed.
	p.FailTimeout = p.Lease / 2
	// The authority cell elects a new leader after 10-20 ticks of silence: with 25 ms
	// ticks (heartbeats among the cell's members 40 times a second) a failover whose
	// primary's process was also the cell's leader waits 250-500 ms for the election
	// instead of 500-1000 ms. The simulator draws this value too.
	p.RaftTick = 25 * core.Millisecond
	p.ReplaceAfter = int64(c.replaceAfter)
	p.GrantTimeout = min(p.GrantTimeout, p.ReplaceAfter)
	p.MaxReMirrors = c.maxReMirrors
	p.CopyRate = c.copyMBps << 20
	p.Join, p.Address = c.join, c.listen
	return p
}
