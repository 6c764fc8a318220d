package netio

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/netio/nbd"
)

// Exports is the NBD catalog of a cluster's volumes: a client asks for a volume by its
// name (or number) and gets it, looked up in the authority cell when it asks, so volumes
// created after the server started are served too (cairn node --nbd).
//
// Every connection to a volume shares one Volume, so that partial-block writes from
// different connections (a multi-connection client) are read-modify-written one at a
// time, as through one cairn attach.
type Exports struct {
	cl      *Client
	timeout time.Duration

	mu   sync.Mutex
	vols map[core.VolumeID]*Volume // the backend of every volume opened, by id
}

// NewExports returns the catalog of the volumes cl reaches; timeout bounds each NBD
// request, as Volume.Timeout does.
func NewExports(cl *Client, timeout time.Duration) *Exports {
	return &Exports{cl: cl, timeout: timeout, vols: map[core.VolumeID]*Volume{}}
}

// volume returns the shared backend of vol, a new one if its size changed (a volume
// deleted and created again under the same name).
func (x *Exports) volume(id core.VolumeID, blocks uint64) *Volume {
	x.mu.Lock()
	defer x.mu.Unlock()
	if v := x.vols[id]; v != nil && v.blocks == blocks {
		return v
	}
	v := NewVolume(x.cl, id, blocks)
	v.Timeout = x.timeout
	x.vols[id] = v
	return v
}

// Export looks the volume called name up; an unknown volume is nbd.ErrUnknownExport.
func (x *Exports) Export(ctx context.Context, name string) (nbd.Export, error) {
	id, err := VolumeIDOf(name)
	if err != nil {
		return nbd.Export{}, fmt.Errorf("%w: %v", nbd.ErrUnknownExport, err)
	}
	r := core.AuthRequest{Op: core.OpGetConfig, Vol: id}
	rep, err := x.cl.Admin(ctx, r)
	if err != nil {
		return nbd.Export{}, fmt.Errorf("volume %s: the authority cell did not answer (is a majority of its members up?): %w", name, err)
	}
	switch {
	case rep.Status == core.StatusNotFound:
		return nbd.Export{}, fmt.Errorf("%w: no volume %q", nbd.ErrUnknownExport, name)
	case rep.Status != core.StatusOK:
		return nbd.Export{}, fmt.Errorf("volume %s: the authority answered %v", name, rep.Status)
	case id >= 1<<31 && rep.Name != name:
		// The id is another volume's, whose name hashes alike.
		return nbd.Export{}, fmt.Errorf("%w: no volume %q", nbd.ErrUnknownExport, name)
	}
	return nbd.Export{Name: name, Description: describe(rep.Name, rep.Config), Backend: x.volume(id, rep.Config.Blocks), MultiConn: true}, nil
}

// List lists every volume by name (by number when it has none).
func (x *Exports) List(ctx context.Context) ([]nbd.Export, error) {
	list, err := listVolumes(ctx, x.cl)
	if err != nil {
		return nil, err
	}
	out := make([]nbd.Export, 0, len(list))
	for _, e := range list {
		out = append(out, nbd.Export{Name: exportName(e.Name, e.Config), Description: describe(e.Name, e.Config)})
	}
	return out, nil
}

// exportName is what a client asks for: the volume's name, or its number when it has none.
func exportName(name string, c core.Config) string {
	if name == "" {
		return fmt.Sprint(uint32(c.Volume))
	}
	return name
}

func describe(name string, c core.Config) string {
	return fmt.Sprintf("cairn volume %s (%d MiB, RF %d)", exportName(name, c), c.Blocks*core.BlockSize>>20, c.RF)
}
