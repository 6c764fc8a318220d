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

// Admin is a node's HTTP API (JSON): volumes (create, show, delete, change QoS) through
// the authority cell, the node's status, /metrics (Prometheus) and /healthz. Every bad
// input gets a 4xx with a message; a change is one compare-and-set at the authority, so
// nothing is half-applied.
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
	a.mux.HandleFunc("POST /v1/volumes", a.create)
	a.mux.HandleFunc("GET /v1/volumes/{name}", a.show)
	a.mux.HandleFunc("DELETE /v1/volumes/{name}", a.remove)
	a.mux.HandleFunc("PUT /v1/volumes/{name}/qos", a.setQoS)
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
		fail(w, http.StatusServiceUnavailable, "the node's event loop did not answer within 1 s")
		return
	}
	w.Write([]byte("ok\n"))
}

// VolumeJSON is a volume as the API shows it.
type VolumeJSON struct {
	Name     string      `json:"name"`
	ID       uint32      `json:"id"`
	SizeMiB  uint64      `json:"size_mib"`
	RF       uint8       `json:"rf"`
	Epoch    uint64      `json:"epoch"`
	Primary  uint32      `json:"primary"`
	InSync   []core.Addr `json:"in_sync"`
	Replicas []core.Addr `json:"replicas"`
	QoS      core.QoS    `json:"qos"`
}

func volumeJSON(name string, c core.Config) VolumeJSON {
	return VolumeJSON{Name: name, ID: uint32(c.Volume), SizeMiB: c.Blocks * core.BlockSize >> 20, RF: c.RF, Epoch: uint64(c.Epoch),
		Primary: uint32(c.Primary), InSync: c.InSync, Replicas: c.Replicas, QoS: c.QoS}
}

// authority sends r to the cell and maps its answer to HTTP.
func (a *Admin) authority(w http.ResponseWriter, req *http.Request, name string, r core.AuthRequest, okCode int) {
	ctx, cancel := context.WithTimeout(req.Context(), adminTimeout)
	defer cancel()
	rep, err := a.cl.Admin(ctx, r)
	if err != nil {
		fail(w, http.StatusServiceUnavailable, "the authority cell did not answer within %v: %v", adminTimeout, err)
		return
	}
	switch rep.Status {
	case core.StatusOK:
		writeJSON(w, okCode, volumeJSON(name, rep.Config))
	case core.StatusNotFound:
		fail(w, http.StatusNotFound, "no volume %q", name)
	case core.StatusConflict:
		if r.Op == core.OpCreateVolume {
			fail(w, http.StatusConflict, "volume %q already exists", name)
			return
		}
		fail(w, http.StatusConflict, "volume %q changed meanwhile (epoch %d); retry", name, rep.Config.Epoch)
	case core.StatusInvalid:
		fail(w, http.StatusBadRequest, "the authority refused the request for volume %q (not enough zones for its RF, or bad QoS)", name)
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

func (a *Admin) create(w http.ResponseWriter, req *http.Request) {
	var c createRequest
	if !decode(w, req, &c) {
		return
	}
	id, err := VolumeIDOf(c.Name)
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
	a.authority(w, req, c.Name, core.AuthRequest{Op: core.OpCreateVolume, Vol: id, Blocks: size / core.BlockSize, RF: c.RF, QoS: q}, http.StatusCreated)
}

func (a *Admin) nameOf(w http.ResponseWriter, req *http.Request) (string, core.VolumeID, bool) {
	name := req.PathValue("name")
	id, err := VolumeIDOf(name)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return "", 0, false
	}
	return name, id, true
}

func (a *Admin) show(w http.ResponseWriter, req *http.Request) {
	if name, id, ok := a.nameOf(w, req); ok {
		a.authority(w, req, name, core.AuthRequest{Op: core.OpGetConfig, Vol: id}, http.StatusOK)
	}
}

func (a *Admin) remove(w http.ResponseWriter, req *http.Request) {
	if name, id, ok := a.nameOf(w, req); ok {
		a.authority(w, req, name, core.AuthRequest{Op: core.OpDeleteVolume, Vol: id}, http.StatusOK)
	}
}

func (a *Admin) setQoS(w http.ResponseWriter, req *http.Request) {
	name, id, ok := a.nameOf(w, req)
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
	a.authority(w, req, name, core.AuthRequest{Op: core.OpSetQoS, Vol: id, QoS: q}, http.StatusOK)
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
		fail(w, http.StatusServiceUnavailable, "the node's event loop did not answer: %v", err)
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
