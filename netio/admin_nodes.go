package netio

import (
	"net/http"
	"strconv"

	"github.com/cairnstore/cairn/core"
)

// The node table on the admin API (DESIGN 2.13): list the storage nodes with their state,
// drain one (its replicas are copied elsewhere, then leave it), or remove one that is gone
// for good (its replicas are replaced at once).

// NodeJSON is one storage node as the API shows it.
type NodeJSON struct {
	ID       uint32 `json:"id"`
	Zone     uint32 `json:"zone"`
	State    string `json:"state"` // up, down, draining, removed
	Disk     string `json:"disk,omitempty"`
	SilentMs uint64 `json:"silent_ms"` // since the authority's leader last heard its beat
	Replicas uint32 `json:"replicas"`
}

// NodesJSON is GET /v1/nodes.
type NodesJSON struct {
	Nodes []NodeJSON `json:"nodes"`
}

func nodeJSON(e core.NodeEntry) NodeJSON {
	n := NodeJSON{ID: uint32(e.Node), Zone: e.Zone, State: core.NodeStateName(e.State), SilentMs: e.SilentMs, Replicas: e.Replicas}
	if e.Disk != 0 {
		n.Disk = strconv.FormatUint(e.Disk, 16)
	}
	return n
}

// ClusterJSON is GET /v1/cluster: what a node joining with --join needs.
type ClusterJSON struct {
	Peers       []string    `json:"peers"` // every storage node this node knows, ID=ZONE@HOST:PORT
	Authorities []core.Addr `json:"authorities"`
}

func (a *Admin) cluster(w http.ResponseWriter, req *http.Request) {
	peers, auth := a.r.Cluster()
	writeJSON(w, http.StatusOK, ClusterJSON{Peers: peers, Authorities: auth})
}

func (a *Admin) listNodes(w http.ResponseWriter, req *http.Request) {
	rep := a.ask(w, req, core.AuthRequest{Op: core.OpListNodes})
	if rep == nil {
		return
	}
	if rep.Status != core.StatusOK {
		fail(w, http.StatusServiceUnavailable, "the authority did not list the nodes: %v", rep.Status)
		return
	}
	out := NodesJSON{Nodes: []NodeJSON{}}
	for _, e := range rep.Nodes {
		out.Nodes = append(out.Nodes, nodeJSON(e))
	}
	writeJSON(w, http.StatusOK, out)
}

// nodeOp drains or removes the node named in the path.
func (a *Admin) nodeOp(op core.AuthOp) http.HandlerFunc {
	verb := map[core.AuthOp]string{core.OpDrainNode: "drain", core.OpRemoveNode: "remove"}[op]
	return func(w http.ResponseWriter, req *http.Request) {
		id, err := strconv.ParseUint(req.PathValue("id"), 10, 32)
		if err != nil || id == 0 {
			fail(w, http.StatusBadRequest, "node %q: want a node id (a positive number)", req.PathValue("id"))
			return
		}
		rep := a.ask(w, req, core.AuthRequest{Op: op, Node: core.Addr(id)})
		if rep == nil {
			return
		}
		switch rep.Status {
		case core.StatusOK:
			state := map[core.AuthOp]string{core.OpDrainNode: "draining", core.OpRemoveNode: "removed"}[op]
			writeJSON(w, http.StatusOK, NodeJSON{ID: uint32(id), State: state})
		case core.StatusNotFound:
			fail(w, http.StatusNotFound, "no node %d in the cluster", id)
		case core.StatusConflict:
			fail(w, http.StatusConflict, "cannot %s node %d: some volume it hosts would have no zone left for a replica (a volume needs RF zones with nodes that stay); add a node in another zone first", verb, id)
		default:
			fail(w, http.StatusServiceUnavailable, "%s node %d: %v", verb, id, rep.Status)
		}
	}
}
