package netio

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairnstore/cairn/core"
)

// maxListPages bounds one listing (2^20 volumes at 256 a page).
const maxListPages = 4096

// errBadListing marks a listing the authority answered inconsistently (a bug, not an outage).
var errBadListing = errors.New("inconsistent listing")

// listVolumes lists every volume, page by page, in id order. An error wraps
// errBadListing when the pages contradict each other.
func listVolumes(ctx context.Context, cl *Client) ([]core.VolumeEntry, error) {
	var out []core.VolumeEntry
	cursor := core.VolumeID(0)
	for range maxListPages {
		rep, err := cl.Admin(ctx, core.AuthRequest{Op: core.OpListVolumes, Vol: cursor})
		if err != nil {
			return nil, fmt.Errorf("the authority cell did not answer (is a majority of its members up?): %w", err)
		}
		if rep.Status != core.StatusOK {
			return nil, fmt.Errorf("the authority answered %v", rep.Status)
		}
		for _, e := range rep.List {
			if e.Config.Volume <= cursor {
				return nil, fmt.Errorf("%w: volume %d out of order after %d", errBadListing, e.Config.Volume, cursor)
			}
			cursor = e.Config.Volume
			out = append(out, e)
		}
		if !rep.More {
			return out, nil
		}
		if len(rep.List) == 0 {
			return nil, fmt.Errorf("%w: a page without volumes says more follow", errBadListing)
		}
	}
	return nil, fmt.Errorf("%w: more than %d pages", errBadListing, maxListPages)
}
