package netio

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"

	"github.com/cairnstore/cairn/core"
)

// VolumeIDOf maps a volume argument to its id: a number is the id itself (below 2^31); a
// name is hashed into the upper half of the id space (FNV-1a). The authority stores each
// volume's name with it (AuthRequest.Name), so two names that hash alike (1 in 2^31 per
// pair) never become one volume: the second create is refused as a collision (the admin
// API answers 409 naming the other volume), and a read, delete or QoS change under the
// other name answers not found instead of touching the stored volume.
func VolumeIDOf(s string) (core.VolumeID, error) {
	if s == "" {
		return 0, errors.New("missing volume (a number or a name)")
	}
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		if n == 0 || n >= 1<<31 {
			return 0, fmt.Errorf("volume number %d out of range 1..%d", n, uint32(1<<31-1))
		}
		return core.VolumeID(n), nil
	}
	if err := core.CheckVolumeName(s); err != nil {
		return 0, err
	}
	h := fnv.New32a()
	h.Write([]byte(s))
	return core.VolumeID(h.Sum32() | 1<<31), nil
}
