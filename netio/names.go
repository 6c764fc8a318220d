package netio

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"

	"github.com/cairnstore/cairn/core"
)

// VolumeIDOf maps a volume argument to its id: a number is the id itself (below 2^31); a
// name is hashed into the upper half of the id space (FNV-1a). Names are not stored by
// the authority yet, so two names that hash alike are one volume (1 in 2^31 per pair).
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
	if len(s) > 64 {
		return 0, fmt.Errorf("volume name %q longer than 64 bytes", s)
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return 0, fmt.Errorf("volume name %q: use letters, digits, '-', '_' and '.'", s)
		}
	}
	h := fnv.New32a()
	h.Write([]byte(s))
	return core.VolumeID(h.Sum32() | 1<<31), nil
}
