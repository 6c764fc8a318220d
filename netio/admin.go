package netio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/metrics"
)

// Admin is a node's HTTP API (JSON): volumes (create, list, show, delete, change QoS)
// through the authority cell, the node's status and per-volume figures, /metrics
// (Prometheus) and /healthz. Every bad input gets a 4xx with a message; a change is one
// compare-and-set at the authority, so nothing is half-applied.
type Admin struct {
	r   *Runner
	cl  *Client
	mux *http.ServeMux
}

// NewAdmin builds the API for a running node; cl talks to the authority cell.
func NewAdmin(r *Runner, cl *Client) *Admin {
	a := &Admin{r: r, cl: cl, mux: http.NewServeMux()}
	a.mux.HandleFunc("GET /healthz", a.healthz)
	a.mux.Handle("GET /metrics", metrics.Handler(metrics.NewCollector(a.stats)))
	a.mux.HandleFunc("GET /v1/status", a.status)
	a.mux.HandleFunc("GET /v1/stats", a.nodeStats)
	a.mux.HandleFunc("GET /v1/volumes", a.list)
	a.mux.HandleFunc("POST /v1/volumes", a.create)
	a.mux.HandleFunc("GET /v1/volumes/{name}", a.show)
	a.mux.HandleFunc("DELETE /v1/volumes/{name}", a.remove)
	a.mux.HandleFunc("PUT /v1/volumes/{name}/qos", a.setQoS)
	a.mux.HandleFunc("GET /v1/nodes", a.listNodes)
	a.mux.HandleFunc("GET /v1/cluster", a.cluster)
	a.mux.HandleFunc("POST /v1/nodes/{id}/drain", a.nodeOp(core.OpDrainNode))
	a.mux.HandleFunc("DELETE /v1/nodes/{id}", a.nodeOp(core.OpRemoveNode))
	return a
}

// ServeHTTP serves the API.
func (a *Admin) ServeHTTP(w http.ResponseWriter, req *http.Request) { a.mux.ServeHTTP(w, req) }

const adminTimeout = 10 * time.Second

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}

func (a *Admin) stats() core.NodeStats {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var s core.NodeStats
	if err := a.r.Do(ctx, func(n *core.Node) { s = n.Stats() }); err != nil {
		return core.NodeStats{Self: a.r.cfg.Params.Self}
	}
	return s
}

func (a *Admin) healthz(w http.ResponseWriter, req *http.Request) {
	ctx, cancel := context.WithTimeout(req.Context(), time.Second)
	defer cancel()
	if err := a.r.Do(ctx, func(*core.Node) {}); err != nil {
		fail(w, http.StatusServiceUnavailable, "the node did not answer within 1 s")
		return
	}
	w.Write([]byte("ok\n"))
}

// VolumeJSON is a volume as the API shows it.
type VolumeJSON struct {
	Name     string      `json:"name"` // the stored name (a numbered volume: its number)
	ID       uint32      `json:"id"`
	SizeMiB  uint64      `json:"size_mib"`
	RF       uint8       `json:"rf"`
	Epoch    uint64      `json:"epoch"`
	Primary  uint32      `json:"primary"`
	InSync   []core.Addr `json:"in_sync"`
	Replicas []core.Addr `json:"replicas"`
	QoS      core.QoS    `json:"qos"`
	// Disks: per replica (as Replicas), the identity of the disk the authority recorded for
	// it, in hex ("" before the primary's first Renew). A wiped disk comes back under a new
	// one once it has been rebuilt (DESIGN 2.12).
	Disks []string `json:"disks"`
	// State: "healthy" (every replica in sync) or "degraded" (fewer in-sync replicas than
	// the RF: one is down, catching up or being rebuilt).
	State string `json:"state"`
}

// VolumesJSON is GET /v1/volumes.
type VolumesJSON struct {
	Volumes []VolumeJSON `json:"volumes"`
}

// displayName is how the API names a volume: its stored name, or its number.
func displayName(stored string, id core.VolumeID) string {
	if stored == "" {
		return fmt.Sprint(uint32(id))
	}
	return stored
}

func volumeJSON(stored string, c core.Config) VolumeJSON {
	v := VolumeJSON{Name: displayName(stored, c.Volume), ID: uint32(c.Volume), SizeMiB: c.Blocks * core.BlockSize >> 20, RF: c.RF,
		Epoch: uint64(c.Epoch), Primary: uint32(c.Primary), InSync: c.InSync, Replicas: c.Replicas, QoS: c.QoS, State: "healthy"}
	for _, r := range c.Replicas {
		d := ""
		if x := c.DiskOf(r); x != 0 {
			d = fmt.Sprintf("%016x", x)
		}
		v.Disks = append(v.Disks, d)
	}
	if len(c.InSync) < int(c.RF) {
		v.State = "degraded"
	}
	return v
}

// ask sends r to the cell; a failure is answered (503) and reported as nil.
func (a *Admin) ask(w http.ResponseWriter, req *http.Request, r core.AuthRequest) *core.AuthReply {
	ctx, cancel := context.WithTimeout(req.Context(), adminTimeout)
	defer cancel()
	rep, err := a.cl.Admin(ctx, r)
	if err != nil {
		fail(w, http.StatusServiceUnavailable, "the authority cell did not answer within %v (is a majority of its members up?): %v", adminTimeout, err)
		return nil
	}
	return rep
}

// authority sends r (about the volume the operator called name) to the cell and maps
// its answer to HTTP.
func (a *Admin) authority(w http.ResponseWriter, req *http.Request, name string, r core.AuthRequest, okCode int) {
	rep := a.ask(w, req, r)
	if rep == nil {
		return
	}
	switch rep.Status {
	case core.StatusOK:
		if r.Op == core.OpGetConfig && r.Name != "" && rep.Name != r.Name {
			// The id is another volume's, whose name hashes alike: not the one asked for.
			fail(w, http.StatusNotFound, "no volume %q", name)
			return
		}
		writeJSON(w, okCode, volumeJSON(rep.Name, rep.Config))
	case core.StatusNotFound:
		fail(w, http.StatusNotFound, "no volume %q", name)
	case core.StatusConflict:
		if r.Op == core.OpCreateVolume {
			if rep.Name != r.Name {
				fail(w, http.StatusConflict, "volume name %q collides with volume %q (both map to id %d; a rare hash collision): choose another name",
					name, displayName(rep.Name, rep.Config.Volume), uint32(rep.Config.Volume))
				return
			}
			fail(w, http.StatusConflict, "volume %q already exists", name)
			return
		}
		fail(w, http.StatusConflict, "volume %q changed meanwhile (epoch %d); retry", name, rep.Config.Epoch)
	case core.StatusInvalid:
		fail(w, http.StatusBadRequest, "the authority refused the request for volume %q (not enough zones for its RF, or bad QoS)", name)
	case core.StatusUnavailable:
		if r.Op == core.OpCreateVolume {
			fail(w, http.StatusServiceUnavailable, "volume %q was deleted and a host that held it has not yet confirmed; retry when every node is up", name)
			return
		}
		fail(w, http.StatusServiceUnavailable, "volume %q: the authority is not ready; retry", name)
	default:
		fail(w, http.StatusServiceUnavailable, "volume %q: %v", name, rep.Status)
	}
}

type createRequest struct {
	Name string   `json:"name"`
	Size string   `json:"size"` // "1G", "512M", bytes
	RF   uint8    `json:"rf"`
	QoS  core.QoS `json:"qos"`
}

// decode reads a JSON body strictly (unknown fields are errors), at most 64 KiB.
func decode(w http.ResponseWriter, req *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		fail(w, http.StatusBadRequest, "bad JSON body: %v", err)
		return false
	}
	return true
}

// volumeRef maps a volume argument to its id and the name the authority stores for it
// (empty for a numbered volume).
func volumeRef(s string) (core.VolumeID, string, error) {
	id, err := VolumeIDOf(s)
	if err != nil {
		return 0, "", err
	}
	if id < 1<<31 {
		return id, "", nil
	}
	return id, s, nil
}

func (a *Admin) create(w http.ResponseWriter, req *http.Request) {
	var c createRequest
	if !decode(w, req, &c) {
		return
	}
	id, stored, err := volumeRef(c.Name)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	size, err := ParseSize(c.Size)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	if c.RF == 0 {
		c.RF = 2
	}
	if c.RF > 5 {
		fail(w, http.StatusBadRequest, "rf %d: want 1 to 5", c.RF)
		return
	}
	q, err := c.QoS.Normalize()
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	a.authority(w, req, c.Name, core.AuthRequest{Op: core.OpCreateVolume, Vol: id, Blocks: size / core.BlockSize, RF: c.RF, QoS: q, Name: stored},
		http.StatusCreated)
}

func (a *Admin) list(w http.ResponseWriter, req *http.Request) {
	ctx, cancel := context.WithTimeout(req.Context(), adminTimeout)
	defer cancel()
	list, err := listVolumes(ctx, a.cl)
	switch {
	case errors.Is(err, errBadListing):
		fail(w, http.StatusInternalServerError, "listing volumes: %v", err)
		return
	case err != nil:
		fail(w, http.StatusServiceUnavailable, "listing volumes: %v", err)
		return
	}
	out := VolumesJSON{Volumes: make([]VolumeJSON, 0, len(list))}
	for _, e := range list {
		out.Volumes = append(out.Volumes, volumeJSON(e.Name, e.Config))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *Admin) nameOf(w http.ResponseWriter, req *http.Request) (string, core.VolumeID, string, bool) {
	name := req.PathValue("name")
	id, stored, err := volumeRef(name)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return "", 0, "", false
	}
	return name, id, stored, true
}

func (a *Admin) show(w http.ResponseWriter, req *http.Request) {
	if name, id, stored, ok := a.nameOf(w, req); ok {
		a.authority(w, req, name, core.AuthRequest{Op: core.OpGetConfig, Vol: id, Name: stored}, http.StatusOK)
	}
}

func (a *Admin) remove(w http.ResponseWriter, req *http.Request) {
	if name, id, stored, ok := a.nameOf(w, req); ok {
		a.authority(w, req, name, core.AuthRequest{Op: core.OpDeleteVolume, Vol: id, Name: stored}, http.StatusOK)
	}
}

func (a *Admin) setQoS(w http.ResponseWriter, req *http.Request) {
	name, id, stored, ok := a.nameOf(w, req)
	if !ok {
		return
	}
	var q core.QoS
	if !decode(w, req, &q) {
		return
	}
	q, err := q.Normalize()
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	a.authority(w, req, name, core.AuthRequest{Op: core.OpSetQoS, Vol: id, QoS: q, Name: stored}, http.StatusOK)
}

// StatusJSON is a node's view of itself.
type StatusJSON struct {
	Node            uint32         `json:"node"`
	Zone            uint32         `json:"zone"`
	AuthorityMember bool           `json:"authority_member"`
	AuthorityLeader bool           `json:"authority_leader"`
	AuthorityTerm   uint64         `json:"authority_term"`
	GlobalRate      int64          `json:"global_rate_ops"`
	Volumes         []VolumeStatus `json:"volumes"`
}

// VolumeStatus is one volume this node has served as primary.
type VolumeStatus struct {
	ID        uint32 `json:"id"`
	Primary   bool   `json:"primary"`
	Admitted  uint64 `json:"admitted"`
	Throttled uint64 `json:"throttled"`
	Busy      uint64 `json:"busy"`
	WriteP50  int64  `json:"write_p50_us"`
	WriteP99  int64  `json:"write_p99_us"`
	ReadP99   int64  `json:"read_p99_us"`
}

func (a *Admin) status(w http.ResponseWriter, req *http.Request) {
	ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
	defer cancel()
	var s StatusJSON
	var st core.NodeStats
	err := a.r.Do(ctx, func(n *core.Node) {
		st = n.Stats()
		s.AuthorityLeader, s.AuthorityTerm, _, s.AuthorityMember = n.AuthorityStatus()
	})
	if err != nil {
		fail(w, http.StatusServiceUnavailable, "the node did not answer: %v", err)
		return
	}
	s.Node, s.Zone, s.GlobalRate = uint32(a.r.cfg.Params.Self), a.r.cfg.Params.Zone, st.GlobalRate
	for _, v := range st.Volumes {
		vs := VolumeStatus{ID: uint32(v.Volume), Primary: v.Primary, Admitted: v.Admitted, Throttled: v.Throttled, Busy: v.Busy}
		if h := v.Latency[core.ClassWrite]; h != nil {
			vs.WriteP50, vs.WriteP99 = h.Quantile(0.5)/1000, h.Quantile(0.99)/1000
		}
		if h := v.Latency[core.ClassRead]; h != nil {
			vs.ReadP99 = h.Quantile(0.99) / 1000
		}
		s.Volumes = append(s.Volumes, vs)
	}
	writeJSON(w, http.StatusOK, s)
}

// StatsJSON is GET /v1/stats: this node's figures for every volume it serves or served
// as primary (counters since the node started; latencies from arrival to reply).
type StatsJSON struct {
	Node          uint32            `json:"node"`
	Zone          uint32            `json:"zone"`
	GlobalRate    int64             `json:"global_rate_ops"` // the adaptive node-wide admission rate
	GlobalTokens  int64             `json:"global_tokens"`
	DiskLatencyUS int64             `json:"disk_latency_us"` // smoothed storage latency the rate adapts to
	StorageQueue  int               `json:"storage_queue"`
	Volumes       []VolumeStatsJSON `json:"volumes"`
}

// VolumeStatsJSON is one volume's figures on this node.
type VolumeStatsJSON struct {
	ID        uint32        `json:"id"`
	Primary   bool          `json:"primary"` // this node is its primary now
	QoS       core.QoS      `json:"qos"`
	Admitted  uint64        `json:"admitted"`
	Lent      uint64        `json:"lent"`
	Throttled uint64        `json:"throttled"`
	Busy      uint64        `json:"busy"`
	Queued    int           `json:"queued"`
	Credits   int64         `json:"credits"` // burst credits (-1: not throttled)
	Ops       []OpStatsJSON `json:"ops"`     // read, write, flush
}

// OpStatsJSON is one operation class's latency on a volume, in microseconds.
type OpStatsJSON struct {
	Op    string `json:"op"`
	Count uint64 `json:"count"`
	P50   int64  `json:"p50_us"`
	P90   int64  `json:"p90_us"`
	P99   int64  `json:"p99_us"`
	P999  int64  `json:"p999_us"`
}

func (a *Admin) nodeStats(w http.ResponseWriter, req *http.Request) {
	ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
	defer cancel()
	var st core.NodeStats
	if err := a.r.Do(ctx, func(n *core.Node) { st = n.Stats() }); err != nil {
		fail(w, http.StatusServiceUnavailable, "the node did not answer: %v", err)
		return
	}
	out := StatsJSON{Node: uint32(a.r.cfg.Params.Self), Zone: a.r.cfg.Params.Zone, GlobalRate: st.GlobalRate, GlobalTokens: st.GlobalTokens,
		DiskLatencyUS: st.DiskLatency / 1000, StorageQueue: st.StorageQueue, Volumes: []VolumeStatsJSON{}}
	for _, v := range st.Volumes {
		vs := VolumeStatsJSON{ID: uint32(v.Volume), Primary: v.Primary, QoS: v.QoS, Admitted: v.Admitted, Lent: v.Lent,
			Throttled: v.Throttled, Busy: v.Busy, Queued: v.Queued, Credits: v.Credits, Ops: []OpStatsJSON{}}
		for c := core.OpClass(0); c < core.NumOpClasses; c++ {
			o := OpStatsJSON{Op: c.String()}
			if h := v.Latency[c]; h != nil {
				o.Count = h.Count()
				o.P50, o.P90, o.P99, o.P999 = h.Quantile(0.5)/1000, h.Quantile(0.9)/1000, h.Quantile(0.99)/1000, h.Quantile(0.999)/1000
			}
			vs.Ops = append(vs.Ops, o)
		}
		out.Volumes = append(out.Volumes, vs)
	}
	writeJSON(w, http.StatusOK, out)
}

// ParseSize reads 1G, 512M, 4096K, 2GiB or a byte count: a positive multiple of 4 KiB.
func ParseSize(s string) (uint64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(t, "IB")
	mult := uint64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult != 1 {
			t = t[:n-1]
		}
	}
	var n uint64
	if _, err := fmt.Sscanf(t, "%d", &n); err != nil || n == 0 || fmt.Sprint(n) != t {
		return 0, errors.New("size " + fmt.Sprintf("%q", s) + ": want a positive size like 1G, 512M or 4096K")
	}
	if n > (1<<50)/mult {
		return 0, fmt.Errorf("size %q is too large (at most 1 PiB)", s)
	}
	if b := n * mult; b%core.BlockSize != 0 {
		return 0, fmt.Errorf("size %q is not a multiple of 4 KiB", s)
	}
	return n * mult, nil
}
