package netio

import (
	"fmt"
	"slices"

	"github.com/cairnstore/cairn/core"
)

// Nodes that join a running cluster (DESIGN 2.13): the core learns their addresses from
// the authority (Output.Peers) and the runner adds them to the address books.

// addPeer adds a node that joined the running cluster to the address books of the node's
// transport and of its local clients (r.mu is held).
func (r *Runner) addPeer(e core.NodeEntry) {
	if slices.ContainsFunc(r.learned, func(x core.NodeEntry) bool { return x.Node == e.Node }) || len(r.learned) >= core.MaxNodes {
		return
	}
	r.learned = append(r.learned, e)
	if err := r.tr.AddPeer(e.Node, e.Address); err != nil {
		r.log.Warn("cannot add a joined node to the address book", "peer", e.Node, "err", err)
	}
	for _, cl := range r.locals {
		if err := cl.tr.AddPeer(e.Node, e.Address); err != nil {
			r.log.Warn("cannot add a joined node to a local client's address book", "peer", e.Node, "err", err)
		}
	}
}

// Cluster lists every storage node this node knows, as ID=ZONE@HOST:PORT (those listed at
// its start and those that joined since), and the authority cell's members: what a node
// joining with --join needs.
func (r *Runner) Cluster() (peers []string, authorities []core.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.cfg.Params
	for _, ni := range p.Nodes {
		hp := r.cfg.Transport.Peers[ni.Addr]
		if ni.Addr == p.Self && hp == "" {
			hp = r.cfg.Transport.Listen
		}
		peers = append(peers, fmt.Sprintf("%d=%d@%s", ni.Addr, ni.Zone, hp))
	}
	for _, e := range r.learned {
		peers = append(peers, fmt.Sprintf("%d=%d@%s", e.Node, e.Zone, e.Address))
	}
	return peers, slices.Clone(p.Authorities)
}
