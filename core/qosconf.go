package core

import (
	"fmt"

	"github.com/cairnstore/cairn/core/qos"
)

// Normalize checks q and fills the defaults: BurstIOPS 0 means no burst (= IOPS). The
// zero QoS (not throttled) is valid.
func (q QoS) Normalize() (QoS, error) {
	if q == (QoS{}) {
		return q, nil
	}
	if q.IOPS <= 0 {
		return q, fmt.Errorf("qos: IOPS must be positive when any other figure is set (%+v)", q)
	}
	if q.BurstIOPS == 0 {
		q.BurstIOPS = q.IOPS
	}
	if q.MBps < 0 || q.MBps > 1<<20 {
		return q, fmt.Errorf("qos: MBps %d outside 0..%d", q.MBps, 1<<20)
	}
	if err := q.limits().Validate(); err != nil {
		return q, err
	}
	return q, nil
}

func (q QoS) limits() qos.Limits {
	return qos.Limits{IOPS: q.IOPS, BurstIOPS: q.BurstIOPS, BurstCredits: q.BurstCredits, BytesPerSec: q.MBps << 20}
}

// CloudDiskQoS is the burstable cloud-disk profile for a volume of sizeGiB: 3 IOPS per
// GiB (at least 100), bursts to 3,000 IOPS on 5.4 million credits.
func CloudDiskQoS(sizeGiB int64) QoS {
	l := qos.CloudDiskLimits(sizeGiB)
	return QoS{IOPS: l.IOPS, BurstIOPS: l.BurstIOPS, BurstCredits: l.BurstCredits}
}
